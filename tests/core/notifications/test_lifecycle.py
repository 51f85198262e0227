"""The lifecycle: scheduled sends, cancel, recall, edit, expiry and read receipts, on Azurite and
the Connector stub."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.queue.aio import QueueClient

from devtools.azurite import ACCOUNT, ACCOUNT_KEY, free_port
from devtools.connector_stub import DELETE, UPDATE
from proactive_bot import clock
from proactive_bot.app import status_body
from proactive_bot.notifications import Notification
from proactive_bot.notifications.receipts import ordered_id
from proactive_bot.work import PageWork, WorkQueue
from tests.conftest import clock_at
from tests.support.polling import eventually
from tests.support.present import present

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 12, 24, 7, 59, 10, tzinfo=UTC)


at = clock_at(NOW)


def to_everyone(nid: str, text: str = "Maintenance at 22:00", **extra) -> Notification:
    return Notification(id=nid, to={"all": True}, text=text, **extra)


async def status(engine, nid: str, detail: bool = False) -> dict:
    return status_body(await engine.records.status(nid, detail=detail))


async def duplicate_queued(engine) -> int:
    """Put every visible work message on the queue a second time (a redelivery)."""
    messages = [m async for m in engine.work_queue.receive_messages(max_messages=32, visibility_timeout=1)]
    for message in messages:
        await engine.work_queue.send_message(message.content)
    # Until the originals are visible again (their 1 s is up): each message twice on the queue.
    await eventually(lambda: _visible_at_least(engine, 2 * len(messages)), timeout=10)
    return len(messages)


async def _visible_at_least(engine, n: int) -> bool:
    return len(await engine.work_queue.peek_messages(max_messages=32)) >= n


# ---- scheduled ------------------------------------------------------------------------------


async def test_scheduled_is_not_sent_before_its_time_and_sent_exactly_once_after(engine_factory, at):
    engine = await engine_factory()
    users = await engine.users(3)
    # 09:00 in Berlin is 08:00 UTC; the clock says 07:59:10.
    notification = to_everyone("xmas", not_before=datetime.fromisoformat("2026-12-24T09:00:00+01:00"))

    await engine.fanout.start(notification, source="test")
    await engine.fanout.start(notification, source="test")  # a redelivered queue message
    assert (await status(engine, "xmas"))["state"] == "scheduled"
    assert await engine.timetable.start_due(engine.work, NOW) == 0
    at(NOW + timedelta(seconds=40))  # 07:59:50: the same minute's run is still early
    assert await engine.timetable.start_due(engine.work, clock.now()) == 0
    await engine.drain()
    assert engine.stub.delivered() == []

    at(datetime(2026, 12, 24, 8, 0, 5, tzinfo=UTC))
    released = await engine.timetable.start_due(engine.work, clock.now())
    again = await engine.timetable.start_due(engine.work, clock.now())  # an overlapping run finds nothing left
    await engine.drain()
    await engine.fanout.start_scheduled(notification.id)  # a duplicated release message
    await engine.drain()

    assert (released, again) == (1, 0)
    assert Counter(r.conversation_id for r in engine.stub.delivered()) == {u["conversation"]["id"]: 1 for u in users}
    assert (await status(engine, "xmas"))["state"] == "done"


async def test_cancelled_before_its_time_is_never_sent(engine_factory, at):
    engine = await engine_factory()
    await engine.users(2)
    notification = to_everyone("cancelled-early", not_before=NOW + timedelta(minutes=5))
    await engine.fanout.start(notification, source="test")

    answer = await engine.lifecycle.cancel("cancelled-early")
    at(NOW + timedelta(minutes=6))
    released = await engine.timetable.start_due(engine.work, clock.now())
    await engine.fanout.start_scheduled("cancelled-early")  # even if a release message was already out
    await engine.drain()

    assert answer.refusal is None and released == 0
    assert engine.stub.received == []
    assert (await status(engine, "cancelled-early"))["state"] == "cancelled"


# ---- cancel and recall ----------------------------------------------------------------------


async def test_cancel_mid_broadcast_sends_nothing_after_its_answer_and_recalls_the_rest(engine_factory):
    engine = await engine_factory(concurrency=4)
    await engine.users(40)
    engine.stub.latency = 0.05
    await engine.fanout.start(to_everyone("mid"), source="test")
    delivering = asyncio.create_task(engine.drain(wait_for_delayed=1.0))
    await engine.stub.wait_for(5, timeout=30)

    await engine.lifecycle.cancel("mid")
    answered = len(engine.stub.received)
    await delivering
    await engine.drain()

    sent = engine.stub.delivered()
    assert 5 <= len(sent) < 40
    assert all(r.route == DELETE for r in engine.stub.received[answered:]), "a send after the DELETE answered"
    deleted = Counter(r.activity_id for r in engine.stub.changes(DELETE))
    assert deleted == {r.response_id: 1 for r in sent}
    body = await status(engine, "mid")
    assert body["state"] == "cancelled"
    assert body["counts"]["recalled"] == len(sent)
    assert body["counts"]["sent"] == 0 and body["counts"]["pending"] == 0
    assert body["counts"]["cancelled"] == body["counts"]["recipients"] - len(sent)


async def test_recall_and_edit_reach_everyone_once_under_redelivered_work(engine_factory):
    engine = await engine_factory()
    users = await engine.users(12)
    await engine.fanout.start(to_everyone("twice", "v0"), source="test")
    await engine.drain()
    sent = {r.response_id: r.conversation_id for r in engine.stub.delivered()}
    assert len(sent) == 12

    await engine.lifecycle.edit("twice", "v1", None)
    assert await duplicate_queued(engine) == 8
    await engine.drain()
    await engine.lifecycle.edit("twice", "v2", None)
    await engine.drain()

    updates = Counter((r.activity_id, r.text) for r in engine.stub.changes(UPDATE))
    assert updates == {**{(a, "v1"): 1 for a in sent}, **{(a, "v2"): 1 for a in sent}}
    for user in users:
        [shown] = engine.stub.shown(user["conversation"]["id"])
        assert shown.activity["text"] == "v2" and shown.edits == 2
    body = await status(engine, "twice", detail=True)
    assert body["counts"]["updated"] == 12 and body["counts"]["pending"] == 0 and body["version"] == 2
    assert {row["activityId"] for row in body["recipients"]} == set(sent)

    await engine.lifecycle.cancel("twice")
    await duplicate_queued(engine)
    await engine.drain()

    assert Counter(r.activity_id for r in engine.stub.changes(DELETE)) == {a: 1 for a in sent}
    assert all(engine.stub.shown(u["conversation"]["id"]) == [] for u in users)
    counts = (await status(engine, "twice"))["counts"]
    assert counts["recalled"] == 12 and counts["sent"] == 0 and counts["pending"] == 0


async def test_an_older_edit_never_overwrites_a_newer_one(engine_factory):
    engine = await engine_factory()
    await engine.users(3)
    await engine.fanout.start(to_everyone("order", "v0"), source="test")
    await engine.drain()
    await engine.lifecycle.edit("order", "v1", None)
    old = [
        json.loads(m.content) async for m in engine.work_queue.receive_messages(max_messages=32, visibility_timeout=60)
    ]
    await engine.lifecycle.edit("order", "v2", None)
    await engine.drain()

    for work in old:  # the v1 messages, redelivered after v2 went out
        await engine.handle(work)

    assert [r.text for r in engine.stub.changes(UPDATE)] == ["v2"] * 3


async def test_edit_reaches_those_not_sent_yet_with_their_send(engine_factory):
    engine = await engine_factory()
    users = await engine.users(4)
    # Recorded, its walk queued, nothing sent yet (as a queue_notify that has not reached its
    # first batch; start() itself delivers the first batch at once).
    await engine.records.create(to_everyone("early-edit", "v0"), clock.now(), "test")
    await engine.fanout.work.put(PageWork(notification="early-edit"))
    await engine.lifecycle.edit("early-edit", "v1", None)  # before any batch ran
    await engine.drain()

    assert sorted(engine.stub.texts()) == ["v1"] * len(users)
    assert engine.stub.changes(UPDATE) == []


async def test_a_channel_that_cannot_change_messages_leaves_them_unsupported_untried_again(engine_factory):
    engine = await engine_factory()
    await engine.users(3)
    await engine.fanout.start(to_everyone("dl"), source="test")
    await engine.drain()
    engine.stub.refuse_changes()

    await engine.lifecycle.edit("dl", "edited", None)
    await engine.drain()
    await engine.lifecycle.cancel("dl")
    await engine.drain()
    await duplicate_queued(engine)
    await engine.drain()

    refused = [r for r in engine.stub.received if r.status == 405]
    assert Counter(r.route for r in refused) == {UPDATE: 3, DELETE: 3}
    body = await status(engine, "dl", detail=True)
    assert body["counts"]["unsupported"] == 3 and body["counts"]["pending"] == 0
    assert all(row["change"] == "unsupported" for row in body["recipients"])


async def test_recall_waits_out_429_and_retries_5xx(engine_factory):
    engine = await engine_factory()
    [user] = await engine.users(1)
    conversation = user["conversation"]["id"]
    await engine.fanout.start(to_everyone("bumpy"), source="test")
    await engine.drain()

    engine.stub.fail(conversation, [429, 503], retry_after=1)
    await engine.lifecycle.cancel("bumpy")
    await engine.drain(wait_for_delayed=2.0)

    assert [r.status for r in engine.stub.received if r.route == DELETE] == [429, 503, 200]
    assert (await status(engine, "bumpy"))["counts"]["recalled"] == 1


async def test_a_403_leaves_the_message_failed_to_change_and_a_404_recall_finds_it_gone(engine_factory):
    engine = await engine_factory()
    blocked, deleted, fine = (u["conversation"]["id"] for u in await engine.users(3))
    await engine.fanout.start(to_everyone("refused", "v0"), source="test")
    await engine.drain()

    engine.stub.block(blocked, 403)  # the user blocked the bot since: the message stays where it is
    engine.stub.refuse_changes(deleted, 404)  # no longer there (deleted by its reader, say)
    await engine.lifecycle.edit("refused", "v1", None)
    await engine.drain()
    await engine.lifecycle.cancel("refused")
    await engine.drain()

    changes = Counter((r.route, r.conversation_id) for r in engine.stub.received if r.route in (UPDATE, DELETE))
    assert changes == {(route, c): 1 for route in (UPDATE, DELETE) for c in (blocked, deleted, fine)}  # none retried
    body = await status(engine, "refused", detail=True)
    assert body["counts"]["recalled"] == 2 and body["counts"]["sent"] == 1 and body["counts"]["pending"] == 0
    rows = {r["conversationId"]: r for r in body["recipients"]}
    assert rows[blocked]["state"] == "sent" and rows[blocked]["change"] == "failed"
    assert rows[blocked]["detail"].startswith("recall:") and rows[blocked]["recalledAt"] is None
    assert rows[deleted]["state"] == rows[fine]["state"] == "recalled"


# ---- expiry ---------------------------------------------------------------------------------


async def test_recipients_not_reached_before_expiry_are_expired_not_sent_late(engine_factory, at):
    engine = await engine_factory(retry_budget=0.5)
    users = await engine.users(2)
    throttled = users[0]["conversation"]["id"]
    engine.stub.fail(throttled, [429], retry_after=5)
    notification = to_everyone("meeting", "Starts in 5 minutes", expires_at=NOW + timedelta(minutes=5))

    await engine.fanout.start(notification, source="test")
    await engine.drain()  # one sent, the other handed back for later
    at(NOW + timedelta(minutes=6))
    await engine.drain(wait_for_delayed=6.0)

    assert [r.conversation_id for r in engine.stub.delivered()] == [users[1]["conversation"]["id"]]
    counts = (await status(engine, "meeting"))["counts"]
    assert counts["expired"] == 1 and counts["sent"] == 1 and counts["pending"] == 0


# ---- read receipts --------------------------------------------------------------------------


async def test_a_read_receipt_marks_every_delivery_up_to_it_and_repeats_cost_nothing(engine_factory):
    engine = await engine_factory()
    users = await engine.users(9)  # more than the 8 shards: some conversations share an index partition
    conversation = users[0]["conversation"]["id"]
    for n in range(3):
        await engine.fanout.start(Notification(id=f"rr-{n}", to={"all": True}, text=f"#{n}"), source="test")
        await engine.drain()
    ids = [r.response_id for r in engine.stub.delivered(conversation)]
    keys = [present(ordered_id(i)) for i in ids]
    assert keys == sorted(keys)

    first = await engine.receipts.record("msteams", conversation, ids[1], clock.now())
    repeated = await engine.receipts.record("msteams", conversation, ids[1], clock.now())
    elsewhere = await engine.receipts.record("msteams", "a:someone-else", ids[2], clock.now())

    assert (first, repeated, elsewhere) == (2, 0, 0)
    read = [(await status(engine, f"rr-{n}"))["counts"]["read"] for n in range(3)]
    assert read == [1, 1, 0]
    rows = (await status(engine, "rr-0", detail=True))["recipients"]
    [row] = [r for r in rows if r["readAt"] is not None]
    assert row["conversationId"] == conversation and row["activityId"] == ids[0]


# ---- refusals -------------------------------------------------------------------------------


async def test_unknown_ids_are_not_found_and_a_cancelled_one_cannot_be_edited(engine_factory):
    engine = await engine_factory()
    await engine.users(1)
    await engine.fanout.start(to_everyone("gone-soon"), source="test")
    await engine.drain()
    await engine.lifecycle.cancel("gone-soon")

    assert (await engine.lifecycle.cancel("never")).refusal.value == 404
    assert (await engine.lifecycle.edit("never", "x", None)).refusal.value == 404
    assert (await engine.lifecycle.edit("gone-soon", "x", None)).refusal.value == 409
    assert (await engine.lifecycle.cancel("gone-soon")).refusal is None  # DELETE again: the same answer


async def test_a_sender_that_died_mid_send_neither_holds_up_a_delete_nor_its_recall(engine_factory, at):
    from proactive_bot.references import StoredReference

    engine = await engine_factory()
    users = await engine.users(3)
    notification = to_everyone("died")
    # A process claimed one recipient and was killed before it could say how the send went.
    # (Claimed before the start: start() delivers the first batch itself, at once.)
    await engine.records.claim("died", StoredReference.from_reference(users[0], NOW), NOW)
    await engine.fanout.start(notification, source="test")
    await engine.drain()
    at(NOW + timedelta(minutes=5))

    answer = await engine.lifecycle.cancel("died")
    assert await engine.drain() == 8  # one recall message per shard, none handed back

    assert answer.refusal is None
    counts = (await status(engine, "died"))["counts"]
    assert (counts["recalled"], counts["unconfirmed"], counts["pending"]) == (2, 1, 0)


async def test_a_failed_cancel_check_hands_the_recipient_back_instead_of_sending_blind(engine_factory, monkeypatch):
    engine = await engine_factory()
    await engine.users(1)
    real_cancelled, real_claim = engine.records.stopped, engine.records.claim
    failures = {"armed": False, "raised": 0}

    async def claim(*args, **kwargs):
        failures["armed"] = failures["raised"] == 0  # the first claim's cancel check will fail
        return await real_claim(*args, **kwargs)

    async def flaky_cancelled(notification_id):
        if failures["armed"]:
            failures["armed"], failures["raised"] = False, 1
            raise ConnectionError("storage hiccup")
        return await real_cancelled(notification_id)

    monkeypatch.setattr(engine.records, "claim", claim)
    monkeypatch.setattr(engine.records, "stopped", flaky_cancelled)
    await engine.fanout.start(to_everyone("flaky"), source="test")
    assert engine.stub.delivered() == []
    await engine.drain(wait_for_delayed=2.5)

    assert failures["raised"] == 1
    assert len(engine.stub.delivered()) == 1
    assert (await status(engine, "flaky"))["counts"]["sent"] == 1


async def test_a_cancel_whose_recall_cannot_be_queued_fails_loudly_and_repeating_it_recalls(engine_factory):
    engine = await engine_factory()
    await engine.users(1)
    await engine.fanout.start(to_everyone("unqueued"), source="test")
    await engine.drain()
    # The queue service does not answer (nothing listens on the port); the table does.
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"QueueEndpoint=http://127.0.0.1:{free_port()}/{ACCOUNT};"
    )
    async with QueueClient.from_connection_string(connection, "work", retry_total=0) as nowhere:
        offline = dataclasses.replace(engine.lifecycle, work=WorkQueue(nowhere))
        with pytest.raises(ServiceRequestError):
            await asyncio.wait_for(offline.cancel("unqueued"), timeout=20)  # the DELETE fails: no 202

    cancelled = await status(engine, "unqueued")
    assert cancelled["state"] == "cancelled" and cancelled["counts"]["recalled"] == 0  # marked: nothing more sent
    assert (await engine.lifecycle.cancel("unqueued")).refusal is None  # its caller repeats the DELETE
    await engine.drain()

    assert [r.status for r in engine.stub.received if r.route == DELETE] == [200]
    assert (await status(engine, "unqueued"))["counts"]["recalled"] == 1


async def test_an_edit_in_the_middle_of_a_walk_does_not_stop_it(engine_factory, monkeypatch):
    from proactive_bot.notifications import walk

    monkeypatch.setattr(walk, "PAGE_SIZE", 3)
    engine = await engine_factory()
    users = await engine.users(7)
    real_page = engine.references.broadcast_page
    edited: list[int] = []

    async def page_then_edit(**kwargs):
        found = await real_page(**kwargs)
        if not edited:  # the record changes between the walk's read and its advance
            edited.append((await engine.lifecycle.edit("walk", "v1", None)).header.version)
        return found

    monkeypatch.setattr(engine.references, "broadcast_page", page_then_edit)
    await engine.fanout.start(to_everyone("walk", "v0"), source="test")
    await engine.drain()

    assert edited == [1]
    assert sorted(r.conversation_id for r in engine.stub.delivered()) == sorted(u["conversation"]["id"] for u in users)
    body = await status(engine, "walk")
    assert body["state"] == "done" and body["counts"]["recipients"] == 7 and body["counts"]["pending"] == 0
