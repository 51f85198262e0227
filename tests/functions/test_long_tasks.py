"""long_tasks/: a command that takes longer than a turn answers at once and delivers later."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.queue.aio import QueueClient

from proactive_bot import bot, clock
from proactive_bot.tasks import TaskIncomplete
from tests import activities
from tests.functions import invoke

NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)  # 11:00:30 in Berlin


async def enqueued_task(storage_connection: str, conversation_id: str) -> bytes:
    """Take this conversation's task off the real tasks queue, as the queue trigger would."""
    async with QueueClient.from_connection_string(storage_connection, "tasks") as queue:
        async for message in queue.receive_messages(max_messages=32, visibility_timeout=5):
            if json.loads(message.content)["conversationId"] == conversation_id:
                await queue.delete_message(message)
                return message.content.encode()
    raise AssertionError("no task was enqueued for the conversation")


async def test_report_answers_at_once_then_arrives_proactively(app, channel, storage_connection, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    user = activities.teams_user()
    ask = activities.teams_message("remind me tomorrow at 9:00 to send the report", channel.url, user=user)
    conversation = ask["conversation"]
    await invoke.http("messages", ask)

    await invoke.http("messages", activities.teams_message("report", channel.url, user=user, conversation=conversation))

    turn = channel.activities(conversation["id"], type=None)[1:]
    assert [(a["type"], a.get("text")) for a in turn] == [("typing", None), ("message", bot.WORKING)]

    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=1))
    outputs = await invoke.queue("long_tasks", await enqueued_task(storage_connection, conversation["id"]))

    assert outputs["poison"].value is None
    report = channel.texts(conversation["id"])[-1]
    assert report.startswith("📋 **Your reminders** (times in Europe/Berlin)")
    assert "- Upcoming: 1. Next: tomorrow at 09:00: send the report" in report


async def test_a_result_that_cannot_be_delivered_now_is_retried_by_the_queue(app, channel, storage_connection):
    message = activities.webchat_message("report", channel.url)
    conversation_id = message["conversation"]["id"]
    await invoke.http("messages", message)
    task = await enqueued_task(storage_connection, conversation_id)
    channel.fail(conversation_id, [503])

    with pytest.raises(TaskIncomplete):
        await invoke.queue("long_tasks", task)
    await invoke.queue("long_tasks", task, dequeue_count=2)

    assert channel.texts(conversation_id)[-1].startswith("📋 **Your reminders** (times in America/New_York)")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"v": 1, "kind": "report"}',
        b'{"v": 1, "id": "x", "kind": "mine", '
        b'"channelId": "webchat", "conversationId": "c", "userId": "u", "zone": null, '
        b'"requestedAt": "2026-11-26T10:00:00+00:00"}',
    ],
)
async def test_malformed_tasks_go_to_the_poison_queue_unchanged(app, channel, body, caplog):
    outputs = await invoke.queue("long_tasks", body)

    assert outputs["poison"].value == body.decode()
    assert "moved to the poison queue" in caplog.text
