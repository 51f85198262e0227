"""Bulk intake: a process takes on a few seconds of bulk sends per budget scope; a batch beyond
that waits at the door for room, and is given back to the queue if none comes in time."""

from __future__ import annotations

import asyncio

from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.intake import BulkIntake, scope_of_recipient
from proactive_bot.teams.rows import RosterMember
from tests import activities


def member(n: int, tenant: str = activities.TENANT) -> RosterMember:
    return RosterMember(f"29:m{n}", f"aad-{n}", f"Member {n}", tenant, "https://smba.example/")


async def test_a_scope_takes_on_a_few_seconds_of_its_pace_and_no_more():
    intake = BulkIntake(per_second=2, seconds=3, patience=0)  # 6 recipients per scope
    first, second = [member(n) for n in range(5)], [member(n) for n in range(5, 10)]

    async with intake.take(first) as taken:
        assert taken and intake.held(scope_of_recipient(first[0])) == 5
        async with intake.take(second) as again:
            assert not again  # 5 + 5 > 6, and no patience: given back
        async with intake.take([member(20, tenant="other")]) as elsewhere:
            assert elsewhere  # another tenant's budget: room of its own
    async with intake.take(second) as taken:
        assert taken  # the first batch is done


async def test_a_batch_waits_for_room_and_starts_when_the_one_before_it_ends():
    intake = BulkIntake(per_second=2, seconds=3)
    started: list[str] = []

    async def batch(name: str, size: int, hold: asyncio.Event) -> None:
        async with intake.take([member(n) for n in range(size)]) as taken:
            assert taken
            started.append(name)
            await hold.wait()

    first_done, second_done = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(batch("first", 5, first_done))
    second = asyncio.create_task(batch("second", 5, second_done))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == ["first"]  # the second waits at the door

    first_done.set()
    await first
    second_done.set()
    await second
    assert started == ["first", "second"]


async def test_an_idle_scope_takes_a_batch_larger_than_its_bound():
    intake = BulkIntake(per_second=1, seconds=1, patience=0)

    async with intake.take([member(n) for n in range(60)]) as taken:
        assert taken


async def test_a_broadcast_batch_without_room_goes_back_on_the_queue_and_an_alert_passes(engine_factory):
    engine = await engine_factory()
    users = await engine.users(3)
    intake = engine.fanout.deliveries.intake
    intake.patience = 0  # give back at once rather than wait for room
    busy = [member(n) for n in range(intake.bound)]  # this process's room in the tenant, taken

    async with intake.take(busy) as taken:
        assert taken
        await engine.fanout.start(validate({"id": "all", "to": {"all": True}, "text": "townhall"}), "test")
        to = {"conversationId": users[0]["conversation"]["id"], "channelId": "msteams"}
        await engine.fanout.start(validate({"id": "alert", "to": to, "text": "disk full"}), "test")

        assert [r.activity["text"] for r in engine.stub.delivered()] == ["disk full"]
        await engine.drain()  # what is visible now: the broadcast's batches come back later

    assert [r.activity["text"] for r in engine.stub.delivered()] == ["disk full"]
    await engine.drain(wait_for_delayed=5)

    assert sorted(r.activity["text"] for r in engine.stub.delivered()) == ["disk full"] + ["townhall"] * 3


async def test_without_rate_limits_nothing_is_bounded():
    intake = BulkIntake(per_second=None, patience=0)

    async with intake.take([member(n) for n in range(5000)]) as first, intake.take([member(1)]) as second:
        assert first and second


async def test_a_broadcasts_first_batch_never_waits_for_room_in_the_invocation_that_took_it(engine_factory):
    engine = await engine_factory()
    await engine.users(1)
    intake = engine.fanout.deliveries.intake
    intake.patience = 3600  # a queued batch would wait; the front door's first batch must not

    async with intake.take([member(n) for n in range(intake.bound)]):
        await engine.fanout.start(validate({"id": "all", "to": {"all": True}, "text": "townhall"}), "test")
        assert engine.stub.delivered() == []

    await engine.drain(wait_for_delayed=5)
    assert [r.activity["text"] for r in engine.stub.delivered()] == ["townhall"]


async def test_each_recipient_done_frees_its_room_before_its_batch_ends():
    # A batch whose last sends wait (a 429's Retry-After) must not hold room for those it sent.
    intake = BulkIntake(per_second=2, seconds=3, patience=0)  # 6 recipients per scope
    first = [member(n) for n in range(5)]

    async with intake.take(first) as taken:
        assert taken is not None
        for recipient in first[:4]:
            taken.done(recipient)
        assert intake.held(scope_of_recipient(first[0])) == 1
        async with intake.take([member(n) for n in range(5, 10)]) as next_batch:
            assert next_batch  # 1 + 5 <= 6
    assert intake.held(scope_of_recipient(first[0])) == 0
