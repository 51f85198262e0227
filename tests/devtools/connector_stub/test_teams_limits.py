"""Teams rate limits: sliding windows per conversation and app-wide, answered 429 + Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from devtools.connector_stub import TEAMS_GLOBAL, TEAMS_PER_CONVERSATION, ConnectorStub
from devtools.connector_stub.teams_limits import RateLimits, check_windows

from .client import conversation_url, message, post

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    """Rate-limit windows measured on a clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stub_with_clock() -> AsyncIterator[tuple[ConnectorStub, FakeClock]]:
    clock = FakeClock()
    async with ConnectorStub(clock=clock) as started:
        yield started, clock


# ---- through the server --------------------------------------------------------------------


async def test_teams_limits_accept_exactly_seven_of_twenty_quick_sends(
    http: aiohttp.ClientSession,
) -> None:
    clock = FakeClock()  # frozen: all 20 arrive in the same instant, whatever the machine's speed
    async with ConnectorStub(clock=clock) as stub:
        stub.limits(
            per_conversation=[(7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0)],
            global_=[(50, 1.0)],
        )
        url = conversation_url(stub, "19:busy@thread.tacv2", "activities")
        answers = await asyncio.gather(*(post(http, url, message(str(n))) for n in range(20)))

    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 7 and statuses.count(429) == 13
    for status, body, headers in answers:
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
            assert body["error"]["code"] == "Throttled"
    assert stub.throttled_count == 13
    assert len(stub.delivered("19:busy@thread.tacv2")) == 7
    assert [r.status for r in stub.received[:7]] == [200] * 7  # the first seven in arrival order
    assert all(r.throttled and not r.delivered for r in stub.received[7:])


async def test_limits_slide_across_several_windows(
    stub_with_clock: tuple[ConnectorStub, FakeClock], http: aiohttp.ClientSession
) -> None:
    stub, clock = stub_with_clock
    stub.limits(per_conversation=[(7, 1.0), (8, 2.0)], global_=None)
    url = conversation_url(stub, "a:1", "activities")

    async def burst(n: int) -> list[tuple[int, str | None]]:
        answers = [await post(http, url, message("x")) for _ in range(n)]
        return [(status, headers.get("Retry-After")) for status, _, headers in answers]

    at_0 = await burst(8)
    clock.now += 1.0  # the 1 s window is free again, the 2 s window has room for one more
    at_1 = await burst(2)
    clock.now += 0.5
    at_1_5 = await burst(1)
    clock.now += 0.5  # the first seven leave the 2 s window
    at_2 = await burst(8)

    assert at_0 == [(200, None)] * 7 + [(429, "1")]
    assert at_1 == [(200, None), (429, "1")]
    assert at_1_5 == [(429, "1")]  # 0.5 s until the t=0 sends leave the 2 s window: rounded up
    assert at_2 == [(200, None)] * 7 + [(429, "1")]


async def test_global_limit_spans_conversations(
    stub_with_clock: tuple[ConnectorStub, FakeClock], http: aiohttp.ClientSession
) -> None:
    stub, _ = stub_with_clock
    stub.limits(None, global_=[(3, 1.0)])

    statuses = [(await post(http, conversation_url(stub, f"a:{n}", "activities"), message("x")))[0] for n in range(5)]

    assert statuses == [200, 200, 200, 429, 429]


async def test_retry_after_counts_whole_seconds_until_the_window_frees(
    stub_with_clock: tuple[ConnectorStub, FakeClock], http: aiohttp.ClientSession
) -> None:
    stub, clock = stub_with_clock
    stub.limits(per_conversation=[(1, 30.0)], global_=None)
    url = conversation_url(stub, "a:1", "activities")

    await post(http, url, message("x"))
    clock.now += 10.2
    status, _, headers = await post(http, url, message("y"))

    assert (status, headers["Retry-After"]) == (429, "20")


async def test_limits_none_turns_limiting_off(stub: ConnectorStub, http: aiohttp.ClientSession) -> None:
    stub.limits()
    stub.limits(None)
    url = conversation_url(stub, "a:1", "activities")

    answers = await asyncio.gather(*(post(http, url, message("x")) for _ in range(20)))

    assert [status for status, _, _ in answers] == [200] * 20
    assert stub.throttled_count == 0


def test_limits_reject_nonsense_windows() -> None:
    with pytest.raises(ValueError):
        ConnectorStub().limits(per_conversation=[(0, 1.0)])


# ---- the windows alone -----------------------------------------------------------------------


def test_teams_numbers() -> None:
    # Teams: 7 sends/1 s, 8/2 s, 60/30 s, 1800/3600 s per conversation; 50/1 s per app.
    assert TEAMS_PER_CONVERSATION == ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
    assert TEAMS_GLOBAL == ((50, 1.0),)


def test_no_windows_admit_everything() -> None:
    limits = RateLimits()

    assert [limits.try_admit("a:1", 0.0) for _ in range(100)] == [None] * 100


def test_a_throttled_send_takes_no_slot() -> None:
    limits = RateLimits(per_conversation=[(1, 1.0)])

    assert limits.try_admit("a:1", 0.0) is None
    assert limits.try_admit("a:1", 0.5) == 1  # 0.5 s left, rounded up to a whole second
    assert limits.try_admit("a:1", 0.9) == 1
    assert limits.try_admit("a:1", 1.0) is None  # had 0.5 or 0.9 counted, it would wait


def test_per_conversation_windows_are_apart_and_none_counts_app_wide_only() -> None:
    limits = RateLimits(per_conversation=[(1, 10.0)], global_=[(3, 10.0)])

    assert limits.try_admit("a:1", 0.0) is None
    assert limits.try_admit("a:2", 0.0) is None
    assert limits.try_admit("a:1", 0.0) == 10
    assert limits.try_admit(None, 0.0) is None  # no conversation window to fill
    assert limits.try_admit("a:3", 0.0) == 10  # the app-wide window is full


def test_reset_empties_every_window() -> None:
    limits = RateLimits(per_conversation=[(1, 60.0)], global_=[(1, 60.0)])
    assert limits.try_admit("a:1", 0.0) is None
    assert limits.try_admit("a:1", 1.0) == 59

    limits.reset()

    assert limits.try_admit("a:1", 1.0) is None


@pytest.mark.parametrize("spec", [[(0, 1.0)], [(1, 0.0)], [(1, -1.0)]])
def test_check_windows_refuses_windows_that_admit_nothing(spec: list[tuple[int, float]]) -> None:
    with pytest.raises(ValueError):
        check_windows(spec)


def test_check_windows_none_is_no_windows() -> None:
    assert check_windows(None) == ()
    assert check_windows([("2", "1.5")]) == ((2, 1.5),)  # type: ignore[list-item]
