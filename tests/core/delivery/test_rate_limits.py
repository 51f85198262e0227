"""Rate limits: sends are paced so the channel never has to say 429."""

from __future__ import annotations

import asyncio
import time

import pytest

from proactive_bot import clock
from proactive_bot.activities import message
from proactive_bot.delivery import Outcome
from proactive_bot.delivery.rate_limits import TEAMS_PER_CONVERSATION, ChannelLimits, LimitsConfig, RateLimiter
from proactive_bot.references import StoredReference

PER_CONVERSATION = ((3, 0.4), (4, 0.8))
APP = ((5, 0.4),)


def most_in_any_window(times: list[float], seconds: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + seconds) for start in times), default=0)


async def test_sends_stay_within_every_window_as_the_channel_sees_them(engine_factory):
    limits = LimitsConfig(app=APP, channels={"default": ChannelLimits(PER_CONVERSATION)})
    engine = await engine_factory(limits=limits)
    engine.stub.limits(per_conversation=PER_CONVERSATION, global_=APP)  # the stub enforces the same
    busy, quiet = [StoredReference.from_reference(r, clock.now()) for r in await engine.users(2)]

    results = await asyncio.gather(
        *(engine.delivery.send(busy, [message(f"busy {n}")]) for n in range(10)),
        *(engine.delivery.send(quiet, [message(f"quiet {n}")]) for n in range(4)),
    )

    assert all(r.outcome is Outcome.SENT for r in results)
    assert engine.stub.throttled_count == 0
    arrivals = {conversation: [r.received_monotonic for r in engine.stub.delivered(conversation)] for conversation in (busy.conversation_id, quiet.conversation_id)}
    for times in arrivals.values():
        for count, seconds in PER_CONVERSATION:
            assert most_in_any_window(times, seconds) <= count
    everything = [t for times in arrivals.values() for t in times]
    assert most_in_any_window(everything, APP[0][1]) <= APP[0][0]


async def test_a_429_holds_that_conversation_for_its_retry_after():
    limiter = RateLimiter(LimitsConfig())
    await limiter.acquire("msteams", "a")
    held_at = time.monotonic()
    limiter.hold("msteams", "a", 0.3)

    other = await limiter.acquire("msteams", "b")
    held = await limiter.acquire("msteams", "a")

    assert other.stamp < held_at + 0.3  # only paced behind the app ceiling, not held
    assert held.stamp >= held_at + 0.3


def test_settings_configure_channels_and_the_app_ceiling():
    config = LimitsConfig.parse(20, '{"directline": {"perConversation": [[2, 1]], "channel": [[10, 1]]}}')

    assert config.app == ((20, 1.0),)
    assert config.for_channel("directline") == ChannelLimits(((2, 1.0),), ((10, 1.0),))
    assert config.for_channel("msteams").per_conversation == TEAMS_PER_CONVERSATION
    assert config.for_channel("slack").per_conversation == ((1, 1.0),)


def test_nonsense_windows_are_refused():
    with pytest.raises(ValueError, match="count >= 1"):
        LimitsConfig.parse(50, '{"msteams": {"perConversation": [[0, 1]]}}')


async def test_a_429_widens_the_app_margin_and_quiet_sends_narrow_it_again():
    from proactive_bot.delivery import rate_limits

    limiter = RateLimiter(LimitsConfig(app=((1000, 1.0),)))
    limiter.throttled("msteams", "a", retry_after=None)
    limiter.throttled("msteams", "a", retry_after=None)
    widened = limiter._app.margin
    assert widened == pytest.approx(rate_limits.APP_MARGIN_MIN + 2 * rate_limits.APP_MARGIN_WIDEN)

    for n in range(2000):
        await limiter.acquire("msteams", f"c{n}")

    assert limiter._app.margin == rate_limits.APP_MARGIN_MIN
