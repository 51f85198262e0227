"""The front door's start: one recipient is sent by the request itself, with a hidden queue
message behind it in case the request never finishes."""

from __future__ import annotations

import uuid

import pytest
from azure.storage.queue.aio import QueueClient

from proactive_bot.app import status_body
from proactive_bot.notifications import Notification, front_door
from proactive_bot.notifications.contract import parse_queue_message
from proactive_bot.notifications.front_door import FrontDoor


@pytest.fixture
async def notifications_queue(storage_connection):
    queue = QueueClient.from_connection_string(storage_connection, f"notifications-{uuid.uuid4().hex[:12]}")
    await queue.create_queue()
    yield queue
    await queue.delete_queue()
    await queue.close()


def door(engine, queue: QueueClient) -> FrontDoor:
    return FrontDoor(records=engine.records, fanout=engine.fanout, work=engine.work, queue=queue)


async def messages_on(queue: QueueClient) -> int:
    """Every message, hidden ones too."""
    return (await queue.get_queue_properties()).approximate_message_count or 0


async def to_one_user(engine) -> tuple[Notification, str]:
    [user] = await engine.users(1)
    conversation = user["conversation"]["id"]
    notification = Notification(
        id=f"alert-{uuid.uuid4().hex[:8]}",
        to={"conversationId": conversation, "channelId": "msteams"},
        text="Disk full",
    )
    return notification, conversation


async def test_the_request_sends_it_and_deletes_its_fallback(engine_factory, notifications_queue):
    engine = await engine_factory()
    notification, conversation = await to_one_user(engine)

    await door(engine, notifications_queue).accept(notification)

    assert [r.text for r in engine.stub.delivered(conversation)] == ["Disk full"]
    assert status_body(await engine.records.status(notification.id))["state"] == "done"
    assert await messages_on(notifications_queue) == 0


async def test_a_request_whose_delivery_fails_leaves_it_to_the_queue_at_once(
    engine_factory, notifications_queue, monkeypatch
):
    engine = await engine_factory()
    notification, conversation = await to_one_user(engine)

    async def broken(*args, **kwargs) -> None:
        raise RuntimeError("this process lost its storage")

    monkeypatch.setattr(engine.fanout, "start_recorded", broken)
    await door(engine, notifications_queue).accept(notification)
    monkeypatch.undo()

    assert engine.stub.delivered(conversation) == []
    [fallback] = [m async for m in notifications_queue.receive_messages()]  # shown now, not in a minute
    await engine.fanout.start(parse_queue_message(fallback.content.encode()), source="queue")  # as queue_notify
    assert [r.text for r in engine.stub.delivered(conversation)] == ["Disk full"]


async def test_retries_past_the_requests_budget_go_on_the_work_queue(engine_factory, notifications_queue, monkeypatch):
    engine = await engine_factory()
    notification, conversation = await to_one_user(engine)
    engine.stub.fail(conversation, statuses=(503, 503))
    monkeypatch.setattr(front_door, "REQUEST_RETRY_BUDGET", 0.0)  # no retry inside the request

    await door(engine, notifications_queue).accept(notification)

    assert engine.stub.delivered(conversation) == []
    assert await messages_on(notifications_queue) == 0  # the request finished: what is left is on the work queue
    await engine.drain(wait_for_delayed=5.0)
    assert [r.text for r in engine.stub.delivered(conversation)] == ["Disk full"]
    status = status_body(await engine.records.status(notification.id))
    assert status["state"] == "done" and status["counts"]["sent"] == 1


async def test_a_recipient_who_blocked_the_bot_is_settled_by_the_request(engine_factory, notifications_queue):
    engine = await engine_factory()
    notification, conversation = await to_one_user(engine)
    engine.stub.fail(conversation, statuses=(403,))  # the user blocked the bot

    await door(engine, notifications_queue).accept(notification)

    status = status_body(await engine.records.status(notification.id))
    assert status["state"] == "done" and status["counts"]["gone"] == 1
    assert await messages_on(notifications_queue) == 0  # nothing left for the queue to try again
    assert await engine.drain() == 0
