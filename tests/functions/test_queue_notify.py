"""queue_notify/: what other systems enqueue reaches the right people; bad input is poisoned."""

from __future__ import annotations

import base64
import json
import logging
import uuid

import pytest

from tests import activities
from tests.functions import invoke


async def talked_to_bot(channel, message: dict) -> dict:
    await invoke.http("messages", message)
    channel.clear()
    return message


def body(document: dict, *, base64_encoded: bool = False) -> bytes:
    raw = json.dumps(document).encode()
    return base64.b64encode(raw) if base64_encoded else raw


@pytest.mark.parametrize("base64_encoded", [False, True], ids=["plain", "base64"])
async def test_notification_to_a_teams_user_by_user_id_and_by_aad_id(app, channel, base64_encoded):
    message = await talked_to_bot(channel, activities.teams_message("hi", channel.url))
    user = message["from"]
    conversation_id = message["conversation"]["id"]

    by_user = {"to": {"userId": user["id"], "channelId": "msteams"}, "text": "Build 42 passed"}
    by_aad = {"to": {"aadObjectId": user["aadObjectId"]}, "text": "Deploy finished"}
    for document in (by_user, by_aad):
        outputs = await invoke.queue("queue_notify", body(document, base64_encoded=base64_encoded))
        assert outputs["poison"].value is None

    assert channel.texts(conversation_id) == ["Build 42 passed", "Deploy finished"]
    sent = channel.activities(conversation_id)[0]
    assert sent["conversation"]["id"] == conversation_id
    assert sent["recipient"]["id"] == user["id"]


async def test_adaptive_card_to_a_conversation(app, channel):
    message = await talked_to_bot(channel, activities.webchat_message("hi", channel.url))
    conversation_id = message["conversation"]["id"]
    card = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": "1.5", "body": []},
    }

    await invoke.queue(
        "queue_notify", body({"to": {"conversationId": conversation_id, "channelId": "webchat"}, "attachments": [card]})
    )

    [sent] = channel.activities(conversation_id)
    assert sent["attachments"] == [card]


async def test_the_same_notification_id_is_delivered_once(app, channel):
    message = await talked_to_bot(channel, activities.teams_message("hi", channel.url))
    document = {
        "id": f"alert-{uuid.uuid4().hex[:6]}",
        "to": {"conversationId": message["conversation"]["id"], "channelId": "msteams"},
        "text": "Disk full",
    }

    for _ in range(3):  # the producer retried, or the queue delivered it again
        await invoke.queue("queue_notify", body(document))

    assert channel.texts() == ["Disk full"]


async def test_broadcast_goes_through_the_work_queue_to_every_active_conversation(app, channel, work):
    channel_id = f"directline-{uuid.uuid4().hex[:8]}"
    conversations = []
    for _ in range(3):
        message = activities.webchat_message("hi", channel.url)
        message["channelId"] = channel_id
        await talked_to_bot(channel, message)
        conversations.append(message["conversation"]["id"])

    await invoke.queue(
        "queue_notify", body({"to": {"all": True, "channelId": channel_id}, "text": "Maintenance at 22:00"})
    )
    await work.drain()

    assert sorted(r.conversation_id for r in channel.delivered()) == sorted(conversations)


async def test_user_who_said_stop_gets_no_notifications(app, channel):
    message = await talked_to_bot(channel, activities.teams_message("hi", channel.url))
    conversation = message["conversation"]
    await invoke.http(
        "messages", activities.teams_message("stop", channel.url, user=message["from"], conversation=conversation)
    )
    channel.clear()

    await invoke.queue(
        "queue_notify", body({"to": {"conversationId": conversation["id"], "channelId": "msteams"}, "text": "x"})
    )

    assert channel.received == []


async def test_unknown_recipient_completes_without_sending(app, channel, caplog):
    caplog.set_level(logging.WARNING)

    outputs = await invoke.queue(
        "queue_notify", body({"to": {"userId": "29:nobody", "channelId": "msteams"}, "text": "x"})
    )

    assert outputs["poison"].value is None
    assert channel.received == []
    assert "is not known" in caplog.text


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"hello", "neither JSON nor base64"),
        (b'{"to": {"all": true}}', "is not valid under any of the given schemas"),
        (
            b'{"to": {"userId": "u", "channelId": "msteams"}, "text": "x", "serviceUrl": "https://evil.example/"}',
            "Additional properties",
        ),
        (
            b'{"to": {"all": true}, "text": "x", "notBefore": "2026-12-24T09:00:00"}',
            "an RFC 3339 time with an offset is needed",
        ),
    ],
)
async def test_malformed_message_goes_to_the_poison_queue_with_a_logged_reason(app, channel, caplog, raw, reason):
    caplog.set_level(logging.ERROR)

    outputs = await invoke.queue("queue_notify", raw)

    assert outputs["poison"].value == raw.decode()  # unchanged, so it can be fixed and replayed
    assert reason in caplog.text
    assert channel.received == []


async def test_a_failing_channel_is_retried_until_it_answers(app, channel):
    message = await talked_to_bot(channel, activities.teams_message("hi", channel.url))
    conversation_id = message["conversation"]["id"]
    channel.fail(conversation_id, statuses=[503, 500])
    document = {"to": {"conversationId": conversation_id, "channelId": "msteams"}, "text": "retry me"}

    await invoke.queue("queue_notify", body(document))

    assert channel.texts(conversation_id) == ["retry me"]
    assert [r.status for r in channel.received] == [503, 500, 200]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"to": {"all": true}, "text": "x", "text": "y"}',
        b'{"to": {"all": true}, "text": "\\ud83d"}',
        b'{"to": {"all": true}, "attachments": [{"contentType": "a", "content": NaN}]}',
        b'{"to": {"all": true}, "attachments": [{"contentType": "a", "content": ' + b"[" * 3000 + b"]" * 3000 + b"}]}",
        b'{"to": {"all": true}, "text": ' + b"9" * 5000 + b"}",
        b'{"to": {"userId": "u", "channelId": "msteams", "serviceUrl": "https://evil.example/"}, "text": "x"}',
        base64.b64encode(b"\xff\xfe not utf-8"),
        b"",
    ],
)
async def test_hostile_messages_are_poisoned_with_one_log_line_each(app, channel, caplog, raw):
    caplog.set_level(logging.INFO, logger="proactive_bot")

    outputs = await invoke.queue("queue_notify", raw)

    assert outputs["poison"].value == raw.decode()
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "moved to the poison queue" in line.getMessage() and "Traceback" not in caplog.text
    assert channel.received == []
