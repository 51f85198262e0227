"""Rate limits: sends are paced so the channel never has to say 429."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import pytest

from proactive_bot import clock
from proactive_bot.activities import message
from proactive_bot.delivery import Outcome
from proactive_bot.delivery.lanes import Lane
from proactive_bot.delivery.limits import TEAMS_PER_CONVERSATION, ChannelLimits, LimitsConfig
from proactive_bot.delivery.rate_limits import RateLimiter
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
    arrivals = {
        conversation: [r.received_monotonic for r in engine.stub.delivered(conversation)]
        for conversation in (busy.conversation_id, quiet.conversation_id)
    }
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


async def test_a_429_widens_the_app_margin_once_a_window_and_quiet_sends_narrow_it_again():
    from proactive_bot.delivery import rate_limits

    later = [0.0]  # the clock runs, and can be moved on
    limiter = RateLimiter(LimitsConfig(app=((1000, 1.0),)), clock=lambda: time.monotonic() + later[0])
    limiter.throttled("msteams", "a", retry_after=None)
    limiter.throttled("msteams", "b", retry_after=None)  # the same crowding: no second step
    later[0] += 1.0
    limiter.throttled("msteams", "c", retry_after=None)  # a window later: another step
    widened = limiter.app_margin
    assert widened == pytest.approx(rate_limits.APP_MARGIN_MIN + 2 * rate_limits.APP_MARGIN_WIDEN)

    for n in range(2000):
        await limiter.acquire("msteams", f"c{n}")

    assert limiter.app_margin == rate_limits.APP_MARGIN_MIN


async def test_two_instances_sending_to_one_conversation_lose_nothing(engine_factory):
    """Per-conversation windows are per process: two instances that send to one conversation at
    once (a reminder and a notification to one user) can together exceed Teams' 7 per second.
    The channel's 429 + Retry-After holds that conversation and the send is retried: nothing
    is lost, nothing arrives twice, and the channel's windows are respected."""
    from proactive_bot.delivery import Delivery

    engine = await engine_factory(limits=LimitsConfig())
    engine.stub.limits()  # Teams' windows, enforced by the channel
    [reference] = await engine.users(1)
    user = StoredReference.from_reference(reference, clock.now())
    # A second instance: its own limiter, which knows nothing of the first one's sends.
    other = Delivery(engine.delivery._adapter, engine.references, RateLimiter(LimitsConfig()))
    deadline = time.monotonic() + 30

    results = await asyncio.gather(
        *(engine.delivery.send_patiently(user, [message(f"first {n}")], deadline=deadline) for n in range(6)),
        *(other.send_patiently(user, [message(f"second {n}")], deadline=deadline) for n in range(6)),
    )

    assert all(r.outcome is Outcome.SENT for r in results)
    assert sum(r.throttled for r in results) == engine.stub.throttled_count > 0  # it did happen
    texts = engine.stub.texts(user.conversation_id)
    assert sorted(texts) == sorted([f"first {n}" for n in range(6)] + [f"second {n}" for n in range(6)])
    arrivals = [r.received_monotonic for r in engine.stub.delivered(user.conversation_id)]
    for count, seconds in TEAMS_PER_CONVERSATION[:2]:
        assert most_in_any_window(arrivals, seconds) <= count


UNLIMITED_CONVERSATIONS = {"default": ChannelLimits(())}


async def test_a_send_that_leaves_late_is_counted_from_when_it_left():
    """A send whose sleep ended late (a busy loop, a garbage collection) reached the channel
    late; the send a window after it is paced from when it left, not from its slot."""
    later = [0.0]  # the clock runs, and can be moved on
    limiter = RateLimiter(
        LimitsConfig(app=((2, 1.0),), channels=UNLIMITED_CONVERSATIONS), clock=lambda: time.monotonic() + later[0]
    )
    await limiter.acquire("msteams", "a")
    second = await limiter.acquire("msteams", "b", lead=10)  # its slot is half a second on
    leaving = asyncio.create_task(limiter.wait_for_slot(second))
    await asyncio.sleep(0.05)
    later[0] += 0.3  # while it sleeps, the loop is held up
    await leaving

    await limiter.acquire("msteams", "c", lead=10)
    fourth = await limiter.acquire("msteams", "d", lead=10)  # two to a window: after the second

    assert fourth.stamp >= second.stamp + 0.3 + 1.0


async def test_the_sends_after_a_late_one_catch_up_with_the_pace():
    from proactive_bot.delivery import rate_limits

    now = [1000.0]
    limiter = RateLimiter(LimitsConfig(app=((5, 1.0),), channels=UNLIMITED_CONVERSATIONS), clock=lambda: now[0])
    permits = [await limiter.acquire("msteams", f"c{n}", lead=100) for n in range(5)]
    start, spacing = permits[0].stamp, (1.0 + rate_limits.APP_MARGIN_MIN) / 5
    now[0] = start + 0.1
    limiter.restamp(permits[0])  # the first left 0.1 s late

    sixth, seventh, eighth = [(await limiter.acquire("msteams", f"d{n}", lead=100)).stamp for n in range(3)]

    assert sixth == pytest.approx(start + 0.1 + 1.0 + rate_limits.APP_MARGIN_MIN)  # a window after it left
    assert seventh == pytest.approx(start + 6 * spacing)  # closer than the pace, back on it: no slot lost
    assert eighth == pytest.approx(start + 7 * spacing)


async def test_a_slot_handed_back_is_used_by_the_sends_after_it():
    now = [1000.0]
    limiter = RateLimiter(LimitsConfig(app=((50, 1.0),), channels=UNLIMITED_CONVERSATIONS), clock=lambda: now[0])
    first, second, third = [await limiter.acquire("msteams", f"c{n}", lead=100) for n in range(3)]
    spacing = third.stamp - second.stamp

    limiter.hand_back(second)  # its recipient was someone else's to send to
    fourth = await limiter.acquire("msteams", "d", lead=100)
    fifth = await limiter.acquire("msteams", "e", lead=100)

    assert fourth.stamp == pytest.approx(third.stamp + spacing / 2)
    assert fifth.stamp == pytest.approx(first.stamp + 3 * spacing)  # on the pace again: nothing lost


async def test_a_slot_handed_back_gives_back_its_own_place_only():
    """A send whose slot started the pace afresh (after a pause) handed back moves the pace
    back by nothing: only the places it took are given back."""
    now = [1000.0]
    limiter = RateLimiter(LimitsConfig(app=((50, 1.0),), channels=UNLIMITED_CONVERSATIONS), clock=lambda: now[0])
    first = await limiter.acquire("msteams", "a", lead=100)  # starts the pace
    second = await limiter.acquire("msteams", "b", lead=100)
    spacing = second.stamp - first.stamp

    limiter.hand_back(first)
    limiter.hand_back(first)  # twice, by mistake: still nothing more than its own place
    third = await limiter.acquire("msteams", "c", lead=100)

    assert third.stamp == pytest.approx(second.stamp + spacing)


class NoShare:
    """A send budget that grants this process nothing (yet), as SharedBudget does while its
    siblings hold the whole ceiling."""

    period = 0.05
    demand: Callable[[], Mapping[str, float]]  # set by the limiter

    def rate(self, scope: str) -> int:
        return 0

    def wake(self, scope: str) -> None:
        pass

    async def changed(self, timeout: float) -> None:
        await asyncio.sleep(timeout)


async def test_demand_counts_the_sends_waiting_for_the_apps_pace_until_they_stop():
    limiter = RateLimiter(LimitsConfig(app=((50, 1.0),), channels={"default": ChannelLimits(())}), budget=NoShare())
    waiting = [asyncio.create_task(limiter.acquire("msteams", f"c{n}")) for n in range(7)]
    await asyncio.sleep(0.1)

    assert limiter.app_demand() == 7.0  # each holds a place in the scope's line
    assert limiter.demands() == {"msteams:": 7.0}  # Teams, tenant unknown
    for task in waiting[:3]:
        task.cancel()
    await asyncio.gather(*waiting[:3], return_exceptions=True)
    assert limiter.app_demand() == 4.0  # those who gave up hand their place on

    for task in waiting[3:]:
        task.cancel()
    await asyncio.gather(*waiting[3:], return_exceptions=True)
    assert limiter.app_demand() == 0.0


async def test_once_nothing_waits_the_demand_is_only_the_slots_ahead():
    """Work run out in a scope: its share goes to a sibling at the next heartbeat, rather than
    a second later when the sends just made leave the window."""
    now = [10_000.0]
    limiter = RateLimiter(LimitsConfig(app=((50, 1.0),), channels=UNLIMITED_CONVERSATIONS), clock=lambda: now[0])
    for n in range(3):
        await limiter.acquire("msteams", f"c{n}", tenant_id="contoso", lead=100)  # paced: 20 ms apart

    assert limiter.demands() == {"msteams:contoso": 2.0}  # the two slots not reached yet
    now[0] += 0.5
    assert limiter.demands() == {"msteams:contoso": 0.0}  # made, and nothing waits: nothing wanted


async def test_conversations_no_window_remembers_are_forgotten_as_sends_go_on():
    """A worker lives for hours and sends to many conversations; the limiter keeps a log only
    for those whose sends are still inside a window (Teams: the hour), swept as sends go on."""
    from proactive_bot.delivery.rate_limits import SWEEP_EVERY

    now = [10_000.0]
    limiter = RateLimiter(LimitsConfig(app=((1000, 1.0),)), clock=lambda: now[0])
    await limiter.acquire("msteams", "an hour ago")
    now[0] += 60
    limiter.hold("msteams", "held", 7200)  # a Retry-After longer than the windows: kept
    now[0] += 3600
    await limiter.acquire("msteams", "recent")
    now[0] += SWEEP_EVERY

    await limiter.acquire("msteams", "now")

    assert set(limiter._conversations) == {("msteams", "recent"), ("msteams", "held"), ("msteams", "now")}


# ---- lanes: who goes next in a scope's line -----------------------------------------------------

FAST = LimitsConfig(app=((50, 1.0),), channels=UNLIMITED_CONVERSATIONS)  # a slot every ~20 ms


class Recorded:
    """Sends through one limiter, and the order in which their slots came (by slot time)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.slots: list[tuple[float, str]] = []

    async def send(self, name: str, lane: Lane, tenant: str = "contoso", retry: bool = False) -> None:
        permit = await self.limiter.acquire("msteams", name, lane=lane, tenant_id=tenant, retry=retry)
        self.slots.append((permit.stamp, name))

    def start(
        self, names: list[str], lane: Lane, tenant: str = "contoso", retry: bool = False
    ) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.send(name, lane, tenant, retry)) for name in names]

    def order(self) -> list[str]:
        return [name for _, name in sorted(self.slots)]


async def test_an_urgent_send_overtakes_the_bulk_sends_waiting_before_it():
    sends = Recorded(RateLimiter(FAST))
    broadcast = sends.start([f"bulk {n}" for n in range(5)], Lane.BULK)
    await asyncio.sleep(0)  # the broadcast waits in the tenant's line (its first send has a slot)

    alert = sends.start(["alert"], Lane.URGENT)
    await asyncio.gather(*broadcast, *alert)

    assert sends.order() == ["bulk 0", "alert", "bulk 1", "bulk 2", "bulk 3", "bulk 4"]


async def test_a_retry_goes_first_in_its_lane_having_waited_its_turn_once():
    sends = Recorded(RateLimiter(FAST))
    broadcast = sends.start([f"bulk {n}" for n in range(4)], Lane.BULK)
    await asyncio.sleep(0)

    again = sends.start(["bulk retried"], Lane.BULK, retry=True)
    await asyncio.gather(*broadcast, *again)

    assert sends.order() == ["bulk 0", "bulk retried", "bulk 1", "bulk 2", "bulk 3"]


async def test_bulk_keeps_every_other_slot_while_urgent_sends_last():
    """The floor: a storm of urgent sends slows a broadcast down to half its pace, never to a stop."""
    sends = Recorded(RateLimiter(FAST))
    broadcast = sends.start([f"bulk {n}" for n in range(4)], Lane.BULK)
    await asyncio.sleep(0)

    storm = sends.start([f"urgent {n}" for n in range(5)], Lane.URGENT)
    await asyncio.gather(*broadcast, *storm)

    assert sends.order() == [
        "bulk 0",
        "urgent 0",
        "bulk 1",
        "urgent 1",
        "bulk 2",
        "urgent 2",
        "bulk 3",
        "urgent 3",  # the broadcast is done: nothing is owed to it any more
        "urgent 4",
    ]


async def test_a_reply_within_a_turn_goes_before_an_urgent_send_and_both_before_bulk():
    sends = Recorded(RateLimiter(FAST))
    broadcast = sends.start([f"bulk {n}" for n in range(3)], Lane.BULK)
    await asyncio.sleep(0)

    alert = sends.start(["alert"], Lane.URGENT)
    reply = sends.start(["reply"], Lane.INTERACTIVE)
    await asyncio.gather(*broadcast, *alert, *reply)

    assert sends.order() == ["bulk 0", "reply", "bulk 1", "alert", "bulk 2"]


async def test_lanes_order_sends_within_a_tenant_not_across_tenants():
    """Each tenant has its own pace and its own line: a broadcast in one tenant does not make
    another tenant's sends wait, whatever their lane."""
    sends = Recorded(RateLimiter(FAST))
    broadcast = sends.start([f"contoso {n}" for n in range(6)], Lane.BULK, tenant="contoso")
    await asyncio.sleep(0)

    other = sends.start(["fabrikam 0", "fabrikam 1"], Lane.BULK, tenant="fabrikam")
    await asyncio.gather(*broadcast, *other)

    slots = dict((name, stamp) for stamp, name in sends.slots)
    assert slots["fabrikam 1"] < slots["contoso 2"]  # its second slot came before contoso's third


async def test_a_send_held_by_its_own_conversation_does_not_hold_up_the_line():
    """The first in line whose conversation is held (a Retry-After) lets the others by; it
    goes when its conversation may again."""
    limiter = RateLimiter(FAST)
    sends = Recorded(limiter)
    await limiter.acquire("msteams", "held", tenant_id="contoso")
    held_at = time.monotonic()
    limiter.hold("msteams", "held", 0.3)

    alert = sends.start(["held"], Lane.URGENT)
    await asyncio.sleep(0)
    broadcast = sends.start([f"bulk {n}" for n in range(3)], Lane.BULK)
    await asyncio.gather(*alert, *broadcast)

    assert sends.order() == ["bulk 0", "bulk 1", "bulk 2", "held"]
    assert dict((name, stamp) for stamp, name in sends.slots)["held"] >= held_at + 0.3


async def test_a_send_that_stops_waiting_hands_its_place_on():
    sends = Recorded(RateLimiter(FAST))
    first = sends.start(["bulk 0"], Lane.BULK)
    await asyncio.sleep(0)
    [gone] = sends.start(["alert"], Lane.URGENT)
    rest = sends.start(["bulk 1", "bulk 2"], Lane.BULK)
    await asyncio.sleep(0)

    gone.cancel()
    await asyncio.gather(*first, *rest, gone, return_exceptions=True)

    assert sends.order() == ["bulk 0", "bulk 1", "bulk 2"]


async def test_a_429_widens_only_its_own_tenants_margin():
    limiter = RateLimiter(LimitsConfig())
    limiter.throttled("msteams", "a", retry_after=None, tenant_id="contoso")

    assert limiter.margin("msteams", "contoso") > limiter.margin("msteams", "fabrikam")
    assert limiter.margin("msteams", "fabrikam") == limiter.margin("slack")
