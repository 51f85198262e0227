"""Fan-out: broadcasts walk their audience through the queue, and nobody gets a message twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta

import pytest

from proactive_bot import clock, work
from proactive_bot.app import status_body
from proactive_bot.notifications import Notification, walk
from proactive_bot.references import StoredReference
from proactive_bot.work import PageWork
from tests.support.polling import eventually


@pytest.fixture
def small_pages(monkeypatch):
    """Several pages and batches from a handful of users."""
    monkeypatch.setattr(walk, "PAGE_SIZE", 5)
    monkeypatch.setattr(walk, "PAGES_PER_WALK", 2)
    monkeypatch.setattr(work, "BATCH_BYTES", 900)  # about two references a batch


def broadcast(text: str = "Maintenance at 22:00", **to) -> Notification:
    return Notification(id=f"b-{text[:4]}-{id(to)}", to={"all": True, **to}, text=text)


def deliveries_per_conversation(engine) -> Counter:
    return Counter(r.conversation_id for r in engine.stub.delivered())


async def test_broadcast_reaches_everyone_once_through_pages_and_batches(engine_factory, small_pages):
    engine = await engine_factory()
    users = await engine.users(23)
    notification = broadcast()

    await engine.fanout.start(notification, source="test")
    handled = await engine.drain()

    assert handled > 10  # 3 walks of 2 pages and a dozen batches: no invocation walked everyone
    assert deliveries_per_conversation(engine) == Counter({u["conversation"]["id"]: 1 for u in users})
    status = status_body(await engine.records.status(notification.id))
    assert status["state"] == "done"
    assert status["counts"] == {
        "recipients": 23,
        "sent": 23,
        "failed": 0,
        "gone": 0,
        "skipped": 0,
        "unconfirmed": 0,
        "recalled": 0,
        "expired": 0,
        "cancelled": 0,
        "read": 0,
        "updated": 0,
        "unsupported": 0,
        "changeFailed": 0,
        "pending": 0,
        "throttledRetries": 0,
        "resent": 0,
    }


async def test_the_first_batch_goes_out_before_any_queue_hop(engine_factory, small_pages):
    """The invocation that takes a broadcast walks its first pages and delivers the first batch
    itself: the first users hear from it before the work queue is polled at all."""
    engine = await engine_factory()
    users = await engine.users(12)
    notification = broadcast()

    await engine.fanout.start(notification, source="test")

    assert 0 < len(engine.stub.delivered()) < 12
    await engine.drain()
    assert deliveries_per_conversation(engine) == Counter({u["conversation"]["id"]: 1 for u in users})


async def test_a_first_batch_whose_walker_died_comes_back_from_the_queue(engine_factory, small_pages, monkeypatch):
    monkeypatch.setattr(walk, "FIRST_BATCH_NET", 1.0)
    engine = await engine_factory()
    users = await engine.users(12)
    notification = broadcast()
    await engine.records.create(notification, clock.now(), "test")

    # The walk happens; the invocation dies before delivering the batch it was handed.
    kept: list = []
    await engine.fanout.walk.next_page(notification.id, first_batch=lambda batch, net: kept.append(batch))
    await engine.drain(wait_for_delayed=3)

    assert kept
    assert deliveries_per_conversation(engine) == Counter({u["conversation"]["id"]: 1 for u in users})
    assert status_body(await engine.records.status(notification.id))["state"] == "done"


async def test_a_first_batch_delivered_by_its_walker_leaves_no_copy_on_the_queue(engine_factory, small_pages):
    """The copy kept on the queue for a walker that dies is withdrawn once the walker has
    delivered the batch: left there, it would come back at the end of the broadcast and take a
    rate slot for every one of its (settled) recipients before finding them done."""
    engine = await engine_factory()
    await engine.users(12)

    await engine.fanout.start(broadcast(), source="test")
    await engine.drain()  # the visible messages: the other batches

    assert (await engine.work_queue.get_queue_properties()).approximate_message_count == 0  # hidden ones too


async def test_a_duplicated_page_message_does_not_duplicate_anything(engine_factory, small_pages):
    engine = await engine_factory()
    users = await engine.users(12)
    notification = broadcast()
    await engine.fanout.start(notification, source="test")
    await engine.fanout.work.put(PageWork(notification=notification.id))  # the queue said it twice

    await engine.drain()

    assert deliveries_per_conversation(engine) == Counter({u["conversation"]["id"]: 1 for u in users})
    assert (status_body(await engine.records.status(notification.id)))["counts"]["recipients"] == 12


async def test_every_failure_is_counted_and_throttled_recipients_come_back_later(engine_factory):
    engine = await engine_factory(retry_budget=0.5)
    blocked, gone, flaky, throttled, *_fine = await engine.users(8)
    engine.stub.block(blocked["conversation"]["id"], 403)
    engine.stub.block(gone["conversation"]["id"], 404)
    engine.stub.fail(flaky["conversation"]["id"], [500])
    engine.stub.fail(throttled["conversation"]["id"], [429], retry_after=2)  # more than the budget
    notification = broadcast()

    await engine.fanout.start(notification, source="test")
    await engine.drain()
    midway = status_body(await engine.records.status(notification.id))
    await engine.drain(wait_for_delayed=3)  # the throttled one went back on the queue, delayed
    final = status_body(await engine.records.status(notification.id, detail=True))

    assert midway["counts"]["pending"] == 1 and midway["state"] == "delivering"
    assert final["state"] == "done"
    assert final["counts"] == {
        "recipients": 8,
        "sent": 6,
        "failed": 0,
        "gone": 2,
        "skipped": 0,
        "unconfirmed": 0,
        "recalled": 0,
        "expired": 0,
        "cancelled": 0,
        "read": 0,
        "updated": 0,
        "unsupported": 0,
        "changeFailed": 0,
        "pending": 0,
        "throttledRetries": 1,
        "resent": 0,
    }
    by_conversation = {r["conversationId"]: r for r in final["recipients"]}
    assert by_conversation[blocked["conversation"]["id"]]["status"] == 403
    assert by_conversation[throttled["conversation"]["id"]]["attempts"] == 2
    # Gone users are left out of the next broadcast.
    assert len([r async for r in engine.references.all_active()]) == 6


async def test_a_recipient_waiting_on_retry_after_is_not_held(engine_factory):
    engine = await engine_factory(retry_budget=10)
    [user] = await engine.users(1)
    engine.stub.fail(user["conversation"]["id"], [429], retry_after=1)
    notification = broadcast()
    await engine.records.create(notification, clock.now(), source="test")
    batch = {"kind": "batch", "notification": notification.id, "recipients": [user]}

    delivering = asyncio.create_task(engine.handle(batch))
    await engine.stub.wait_for(lambda r: r.status == 429)

    async def given_back() -> list[dict] | None:  # the claim is given back before the wait starts
        rows = status_body(await engine.records.status(notification.id, detail=True))["recipients"]
        return rows if rows and rows[0]["state"] == "retrying" else None

    waiting = await eventually(given_back, timeout=5)
    await delivering

    # While it waits, its row is anyone's to take (a crash now strands nobody)...
    assert [(r["state"], r["attempts"], r["throttled"]) for r in waiting] == [("retrying", 1, 1)]
    # ...and the same invocation takes it back and delivers it, counting both attempts.
    [done] = status_body(await engine.records.status(notification.id, detail=True))["recipients"]
    assert (done["state"], done["attempts"], done["throttled"]) == ("sent", 2, 1)
    assert len(engine.stub.delivered(user["conversation"]["id"])) == 1


async def test_an_interrupted_broadcast_resumes_with_everyone_exactly_once(engine_factory):
    engine = await engine_factory(concurrency=4)
    engine.stub.latency = 0.05
    users = await engine.users(40)
    notification = broadcast()
    await engine.records.create(notification, clock.now(), "test")
    batch = {"kind": "batch", "notification": notification.id, "recipients": users}

    first_run = asyncio.create_task(engine.handle(batch))
    await engine.stub.wait_for(10, timeout=10)
    first_run.cancel()  # the host stopped the invocation mid-broadcast
    with pytest.raises(asyncio.CancelledError):
        await first_run
    delivered_before = len(engine.stub.delivered())
    await engine.handle(json.loads(json.dumps(batch)))  # the queue delivers it again

    assert 10 <= delivered_before < 40
    assert deliveries_per_conversation(engine) == Counter({u["conversation"]["id"]: 1 for u in users})
    assert (status_body(await engine.records.status(notification.id)))["counts"]["sent"] == 40


async def test_a_sender_that_died_mid_send_is_reported_not_repeated(engine_factory, monkeypatch):
    engine = await engine_factory()
    users = await engine.users(5)
    notification = broadcast()
    await engine.records.create(notification, clock.now(), "test")
    # A process claimed two recipients and was killed before it could say how the sends went.
    for reference in users[:2]:
        await engine.records.claim(notification.id, StoredReference.from_reference(reference, clock.now()), clock.now())
    later = clock.now() + timedelta(minutes=5)
    monkeypatch.setattr(clock, "now", lambda: later)

    await engine.handle({"kind": "batch", "notification": notification.id, "recipients": users})

    assert sorted(deliveries_per_conversation(engine)) == sorted(u["conversation"]["id"] for u in users[2:])
    counts = (status_body(await engine.records.status(notification.id)))["counts"]
    assert (counts["sent"], counts["unconfirmed"]) == (3, 2)


async def test_broadcast_filters_and_opt_outs(engine_factory):
    engine = await engine_factory()
    teams = await engine.users(3, channel_id="msteams")
    await engine.users(2, channel_id="slack")
    stopped = teams[0]["conversation"]["id"]
    await engine.references.set_opted_out("msteams", stopped, True)
    notification = broadcast(channelId="msteams")

    await engine.fanout.start(notification, source="test")
    await engine.drain()

    assert sorted(deliveries_per_conversation(engine)) == sorted(u["conversation"]["id"] for u in teams[1:])


async def test_a_copy_that_cannot_be_withdrawn_is_left_to_run(engine_factory):
    """Withdrawing is a saving, not a duty: a copy a worker has taken meanwhile (its pop receipt
    has changed) stays, and it finds its recipients done."""
    from proactive_bot.work import PageWork, Posted

    engine = await engine_factory()
    posted = await engine.fanout.work.put(PageWork(notification="nobody"))
    taken = Posted(posted.id, "a-receipt-from-before-a-worker-took-it")

    await engine.fanout.work.withdraw(taken)

    assert (await engine.work_queue.get_queue_properties()).approximate_message_count == 1
