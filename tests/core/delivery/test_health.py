"""A scope's channel health: most answers failing opens the breaker, the first success closes it,
and while it is open the limiter only probes. Pure: a hand-driven clock, no storage, no stub."""

from __future__ import annotations

from proactive_bot.channel.connector import ConnectorError
from proactive_bot.delivery.calls import Calls, classify
from proactive_bot.delivery.health import ChannelHealth, Health
from proactive_bot.delivery.limits import LimitsConfig
from proactive_bot.delivery.outcome import Outcome, Result
from proactive_bot.delivery.rate_limits import RateLimiter
from proactive_bot.delivery.retries import OUTAGE, OutagePolicy

TENANT = "msteams:t1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_most_answers_failing_is_an_outage_and_one_success_ends_it() -> None:
    clock = Clock()
    health = ChannelHealth(OUTAGE, clock)

    for _ in range(OUTAGE.min_failures - 1):
        assert health.answered(TENANT, ok=False) is Health.ANSWERING  # a few failures are recipients'
    assert health.answered(TENANT, ok=False) is Health.DOWN
    assert health.state("msteams:t2") is Health.ANSWERING  # another tenant's budget is not affected

    clock.now += 30
    assert health.answered(TENANT, ok=False) is Health.DOWN  # still down: nothing answered since
    assert health.answered(TENANT, ok=True) is Health.ANSWERING
    assert health.answered(TENANT, ok=False) is Health.ANSWERING  # the outage's failures are forgotten


def test_failures_among_successes_are_not_an_outage() -> None:
    """A recipient whose requests fail while the channel serves everyone else: not down, so its
    attempts count and it ends `failed` as before."""
    health = ChannelHealth(OUTAGE, Clock())

    for _ in range(50):
        health.answered(TENANT, ok=True)
        assert health.answered(TENANT, ok=False) is Health.ANSWERING
        health.answered(TENANT, ok=True)


def test_old_failures_leave_the_window() -> None:
    clock = Clock()
    health = ChannelHealth(OutagePolicy(window=5.0, min_failures=3), clock)

    for _ in range(2):
        health.answered(TENANT, ok=False)
        clock.now += 4
    assert health.answered(TENANT, ok=False) is Health.ANSWERING  # the first one is 8 s old


def test_a_down_scope_is_paced_at_the_probe_rate() -> None:
    clock = Clock()
    health = ChannelHealth(OUTAGE, clock)
    for _ in range(OUTAGE.min_failures):
        health.answered(TENANT, ok=False)

    assert health.paced(TENANT, ((50, 1.0), (1000, 60.0))) == ((OUTAGE.probe_rate, 1.0), (1000, 60.0))
    assert health.paced("msteams:t2", ((50, 1.0),)) == ((50, 1.0),)
    assert health.paced(TENANT, ()) == ((OUTAGE.probe_rate, 1.0),)  # even with no pace configured


async def test_calls_during_an_outage_are_probes_and_not_the_recipients_failures() -> None:
    """Through `Calls.make`: once the scope is down its failures say `channel_down` (not counted
    against the recipient), and the limiter hands out slots at the probe rate."""
    limiter = RateLimiter(LimitsConfig())
    calls = Calls(limiter)

    async def unavailable() -> None:
        raise ConnectorError(503, "ServiceUnavailable", "incident")

    first = [await calls.make("msteams", f"c{n}", unavailable, tenant_id="t1") for n in range(OUTAGE.min_failures)]
    assert [r.result.channel_down for r in first] == [False] * (OUTAGE.min_failures - 1) + [True]
    assert limiter.health.down(TENANT)

    probes = [await calls.make("msteams", f"d{n}", unavailable, tenant_id="t1") for n in range(2)]
    assert all(r.result.channel_down and r.result.retryable for r in probes)
    slots = [await limiter.acquire("msteams", f"p{n}", tenant_id="t1") for n in range(3)]
    assert slots[2].stamp - slots[0].stamp >= 2 / OUTAGE.probe_rate  # the planned slots: probes

    async def fine() -> str:
        return "ok"

    assert (await calls.make("msteams", "e", fine, tenant_id="t1")).result.outcome is Outcome.SENT
    assert not limiter.health.down(TENANT)


def test_a_failed_token_fetch_is_never_the_recipients_failure() -> None:
    result = classify(ConnectorError(503, "TokenRequestFailed", "could not get a bot token"))

    assert result.channel_down and result.retryable
    refused = classify(ConnectorError(401, "TokenRequestFailed", "invalid_client"))
    assert not refused.retryable  # a configuration problem: no retry fixes it
    assert Result(Outcome.FAILED, 503).channel_down is False
