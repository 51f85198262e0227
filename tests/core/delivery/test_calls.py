"""A Connector call's answer classified, paced and retried: pure, no storage, no stub.

What the channel answers (a status, an error body, a Retry-After) becomes a `Result`; the limiter
hears of a 429 from `Calls.make` alone; `patiently` retries what is worth it until its deadline.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import aiohttp
import pytest

from proactive_bot.channel.connector import ConnectorError, _connector_error
from proactive_bot.channel.service_urls import ServiceUrlNotAllowed
from proactive_bot.delivery.calls import Calls, Reply, classify, classify_status, patiently
from proactive_bot.delivery.limits import LimitsConfig
from proactive_bot.delivery.outcome import Outcome, Result
from proactive_bot.delivery.rate_limits import APP_MARGIN_MIN, RateLimiter
from proactive_bot.delivery.retries import RetryPolicy

QUICK = RetryPolicy(max_attempts=3, first_delay=0.0, max_delay=0.0)


class Answered:
    """What `_connector_error` reads of an aiohttp response: status, headers, JSON body."""

    def __init__(self, status: int, body: Any, retry_after: str | None = None) -> None:
        self.status = status
        self.headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._body = body

    async def json(self, content_type: str | None = None) -> Any:
        if isinstance(self._body, Exception):
            raise self._body
        return self._body


async def answered(status: int, body: Any = None, retry_after: str | None = None, *, change: bool = False) -> Result:
    return classify(await _connector_error(Answered(status, body, retry_after)), change=change)  # type: ignore[arg-type]


def error_body(code: str, message: str = "") -> dict:
    return {"error": {"code": code, "message": message or code}}


@pytest.mark.parametrize(
    ("status", "code", "outcome", "retryable"),
    [
        (429, "Throttled", Outcome.THROTTLED, True),
        (403, "ConversationBlockedByUser", Outcome.GONE, False),
        (404, "ConversationNotFound", Outcome.GONE, False),
        (412, "PreconditionFailed", Outcome.FAILED, True),
        (500, "ServiceError", Outcome.FAILED, True),
        (502, "BadGateway", Outcome.FAILED, True),
        (503, "ServiceUnavailable", Outcome.FAILED, True),
        (504, "GatewayTimeout", Outcome.FAILED, True),
        (400, "BadArgument", Outcome.FAILED, False),
        (401, "Unauthorized", Outcome.FAILED, False),
        (405, "MethodNotAllowed", Outcome.FAILED, False),
        (501, "NotImplemented", Outcome.FAILED, False),
    ],
)
async def test_a_status_and_its_error_body_are_one_verdict_for_every_caller(status, code, outcome, retryable) -> None:
    result = await answered(status, error_body(code, "why"))

    assert (result.outcome, result.status, result.code, result.retryable) == (outcome, status, code, retryable)
    assert result.detail == f"channel answered {status} {code}: why"  # the channel's reason, kept
    assert not result.unsupported  # a send answered 405/501 is only a failure


@pytest.mark.parametrize(
    ("status", "code"), [(405, "MethodNotAllowed"), (501, "DeleteActivityAPINotImplemented")], ids=["405", "501"]
)
async def test_an_edit_or_recall_answered_405_or_501_is_unsupported_and_not_retried(status, code) -> None:
    result = await answered(status, error_body(code, "Not implemented"), change=True)

    assert result.unsupported and not result.retryable and result.outcome is Outcome.FAILED
    assert (result.status, result.code) == (status, code) and code in result.detail


async def test_an_error_body_that_is_not_json_or_names_nothing_still_classifies_by_status() -> None:
    for body in (ValueError("not JSON"), None, {"error": None}, {"unexpected": 1}):
        result = await answered(503, body)
        assert (result.outcome, result.status, result.code, result.retryable) == (Outcome.FAILED, 503, "", True)


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("0", 0.0), ("soon", None), (None, None)])
async def test_a_429_carries_its_retry_after_in_seconds_or_none(header, seconds) -> None:
    result = await answered(429, error_body("Throttled"), header)

    assert result.outcome is Outcome.THROTTLED and result.retry_after == seconds


def test_what_is_not_the_channels_answer_is_classified_too() -> None:
    network = classify(aiohttp.ClientConnectionError("connection reset"))
    assert (network.outcome, network.status, network.retryable) == (Outcome.FAILED, None, True)
    assert network.detail == "ClientConnectionError: connection reset"
    assert classify(TimeoutError()).retryable
    refused = classify(ServiceUrlNotAllowed("evil.example is not an allowed host"))
    assert refused.permanent and not refused.retryable and "serviceUrl not allowed" in refused.detail


def test_a_status_alone_is_classified_the_same_way() -> None:
    assert classify_status(429, "slow down", 2.0) == Result(Outcome.THROTTLED, 429, "slow down", 2.0)
    assert classify_status(404, "gone").outcome is Outcome.GONE
    assert classify_status(501, "no", change=True).unsupported


def test_the_backoff_never_comes_sooner_than_the_retry_after() -> None:
    policy = RetryPolicy(max_attempts=8, first_delay=0.5, max_delay=30.0, jitter=True)
    assert all(policy.delay(attempt, 12.0) >= 12.0 for attempt in range(1, 9))
    assert all(policy.delay(attempt) <= 30.0 for attempt in range(1, 20))
    assert RetryPolicy(8, 0.5, 30.0).delay(3) == 2.0  # exponential without jitter


# ---- Calls.make: pacing, claims, and the limiter told of a 429 --------------------------------


def limiter() -> RateLimiter:
    return RateLimiter(LimitsConfig(enabled=False))


async def refuse(status: int, retry_after: float | None = None) -> None:
    raise ConnectorError(status, "Throttled" if status == 429 else "", "", retry_after)


async def test_a_429_widens_the_apps_margin_and_holds_that_conversation() -> None:
    limits = RateLimiter(LimitsConfig())  # limits on: a hold only matters where there is pacing
    calls = Calls(limits)

    reply = await calls.make("msteams", "a", lambda: refuse(429, 30.0))

    assert reply.result.outcome is Outcome.THROTTLED and reply.value is None
    assert limits.app_margin > APP_MARGIN_MIN
    other = await asyncio.wait_for(limits.acquire("msteams", "b"), 1)  # another conversation goes on
    assert other is not None
    with pytest.raises(TimeoutError):  # the throttled one waits for its Retry-After
        await asyncio.wait_for(limits.acquire("msteams", "a"), 0.2)


async def test_no_other_answer_tells_the_limiter() -> None:
    limits = limiter()
    for status in (403, 404, 500, 503):
        await Calls(limits).make("msteams", "a", functools.partial(refuse, status))
    assert limits.app_margin == APP_MARGIN_MIN


async def test_a_call_answers_the_channels_value_within_a_slot() -> None:
    slots = asyncio.Semaphore(1)
    seen: list[bool] = []

    async def request() -> dict:
        seen.append(slots.locked())
        return {"id": "a1"}

    reply = await Calls(limiter(), slots).make("msteams", "a", request)

    assert reply == Reply(Result(Outcome.SENT, 200), {"id": "a1"}) and seen == [True] and not slots.locked()


async def test_a_claim_that_went_elsewhere_sends_nothing() -> None:
    sent: list[str] = []

    async def request() -> None:
        sent.append("sent")

    async def taken() -> bool:
        return False

    reply = await Calls(limiter()).make("msteams", "a", request, claim=taken)

    assert reply.result.outcome is Outcome.SKIPPED and reply.result.attempts == 0 and sent == []


# ---- patiently: the one retry loop -------------------------------------------------------------


def scripted(*results: Result) -> tuple[list[int], Any]:
    """An attempt that answers `results` in turn; the attempt numbers it saw."""
    numbers: list[int] = []

    async def attempt(number: int) -> Reply[str]:
        numbers.append(number)
        result = results[number - 1]
        return Reply(result, "value" if result.outcome is Outcome.SENT else None)

    return numbers, attempt


async def test_what_is_worth_it_is_tried_again_and_the_429s_are_counted() -> None:
    numbers, attempt = scripted(
        Result(Outcome.THROTTLED, 429, retry_after=0.0), Result(Outcome.FAILED, 503), Result(Outcome.SENT, 200)
    )
    released: list[Result] = []

    async def release(failed: Result) -> None:
        released.append(failed)

    reply = await patiently(attempt, QUICK, deadline=time.monotonic() + 10, release=release)

    assert (reply.value, reply.result.attempts, reply.result.throttled) == ("value", 3, 1)
    assert numbers == [1, 2, 3] and [r.status for r in released] == [429, 503]  # released before each wait


async def test_what_is_not_worth_it_stops_at_once() -> None:
    numbers, attempt = scripted(Result(Outcome.GONE, 403))

    reply = await patiently(attempt, QUICK, deadline=time.monotonic() + 10)

    assert (reply.result.outcome, reply.result.attempts, numbers) == (Outcome.GONE, 1, [1])


async def test_a_wait_past_the_deadline_hands_back_with_when_to_come_again() -> None:
    numbers, attempt = scripted(Result(Outcome.THROTTLED, 429, retry_after=60.0))

    reply = await patiently(attempt, QUICK, deadline=time.monotonic() + 1)

    assert (reply.result.retry_after, reply.result.throttled, numbers) == (60.0, 1, [1])


async def test_a_bounded_loop_stops_after_the_policys_attempts_an_unbounded_one_goes_on() -> None:
    failing = [Result(Outcome.FAILED, 500)] * 5 + [Result(Outcome.SENT, 200)]
    numbers, attempt = scripted(*failing)
    bounded = await patiently(attempt, QUICK, deadline=time.monotonic() + 10, bounded=True)
    assert (bounded.result.outcome, bounded.result.attempts, numbers) == (Outcome.FAILED, 3, [1, 2, 3])

    numbers, attempt = scripted(*failing)
    unbounded = await patiently(attempt, QUICK, deadline=time.monotonic() + 10)
    assert (unbounded.result.outcome, unbounded.result.attempts) == (Outcome.SENT, 6)


async def test_a_skipped_attempt_is_not_counted() -> None:
    numbers, attempt = scripted(Result(Outcome.FAILED, 500), Result(Outcome.SKIPPED, attempts=0))

    reply = await patiently(attempt, QUICK, deadline=time.monotonic() + 10)

    assert (reply.result.outcome, reply.result.attempts, numbers) == (Outcome.SKIPPED, 1, [1, 2])
