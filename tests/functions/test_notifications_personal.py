"""A notification with placeholders: each recipient gets their own name (escaped), in sends and edits."""

from __future__ import annotations

import json
import uuid

from tests import activities
from tests.functions import invoke
from tests.functions.test_notifications_api import run_notifications_queue
from tests.functions.test_queue_notify import body, talked_to_bot


async def three_users(channel) -> tuple[str, dict[str, str]]:
    """Three Web Chat users on a channel of their own: conversation id -> the user's display name."""
    channel_id = f"directline-{uuid.uuid4().hex[:8]}"
    names = {}
    for name in ("Anna", "**Bob** <script>alert(1)</script>", ""):
        message = activities.webchat_message("hi", channel.url)
        message["channelId"] = channel_id
        message["from"]["name"] = name
        await talked_to_bot(channel, message)
        names[message["conversation"]["id"]] = name
    return channel_id, names


async def test_a_broadcast_names_each_recipient_safely(app, channel, work):
    channel_id, names = await three_users(channel)
    card = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [{"type": "TextBlock", "text": "For {{name|you}}"}],
            "actions": [{"type": "Action.Submit", "title": "OK", "data": {"x": "{{name}}"}}],
        },
    }
    document = {
        "to": {"all": True, "channelId": channel_id},
        "text": "Dear {{name|colleague}}, we",
        "attachments": [card],
    }

    await invoke.queue("queue_notify", body(document))
    await work.drain()

    got = {r.conversation_id: r.activity for r in channel.delivered()}
    texts = {conversation: activity["text"] for conversation, activity in got.items()}
    assert sorted(texts.values()) == sorted(
        [
            "Dear Anna, we",
            r"Dear \*\*Bob\*\* &lt;script&gt;alert\(1\)&lt;/script&gt;, we",  # data, not markup
            "Dear colleague, we",  # no name known: the default
        ]
    )
    anna = next(c for c, name in names.items() if name == "Anna")
    content = got[anna]["attachments"][0]["content"]
    assert content["body"][0]["text"] == "For Anna"
    assert content["actions"][0]["data"] == {"x": "{{name}}"}  # action data is not shown text: untouched


async def test_an_edit_is_personal_too(app, channel, work):
    message = activities.teams_message("hi", channel.url)
    message["from"]["name"] = "Li Wei"
    await invoke.http("messages", message)
    channel.clear()
    notification_id = f"personal-{uuid.uuid4().hex[:8]}"
    document = {"id": notification_id, "to": {"aadObjectId": message["from"]["aadObjectId"]}, "text": "Hi {{name}}"}
    await invoke.http("notifications_api", document)
    await run_notifications_queue(app)

    await invoke.http(
        "notifications_api", {"text": "Bye {{name|there}}"}, method="PATCH", route_params={"id": notification_id}
    )
    await work.drain()

    [shown] = channel.shown(message["conversation"]["id"])
    assert shown.activity["text"] == "Bye Li Wei"


async def test_an_unknown_placeholder_is_refused_with_the_reason(app, channel, caplog):
    refused = await invoke.http("notifications_api", {"to": {"all": True}, "text": "Hi {{nmae}}"})
    assert refused.status_code == 400
    assert "unknown placeholder {{nmae}}" in json.loads(refused.get_body())["error"]["message"]

    outputs = await invoke.queue("queue_notify", body({"to": {"all": True}, "text": "Hi {{ name | a | b }}"}))
    assert outputs["poison"].value is not None
    assert "malformed placeholder" in caplog.text


async def test_a_broadcast_with_a_text_per_language_gives_each_recipient_theirs(app, channel, work):
    channel_id = f"directline-{uuid.uuid4().hex[:8]}"
    locales = {}
    for locale in ("de-DE", "zh-CN", "fr-FR"):
        message = activities.webchat_message("hi", channel.url)
        message["channelId"], message["locale"] = channel_id, locale
        message["from"]["name"] = "Anna"
        await talked_to_bot(channel, message)
        locales[message["conversation"]["id"]] = locale
    texts = {
        "en": "Maintenance tonight, {{name}}",
        "de": "Wartung heute Nacht, {{name}}",
        "zh-Hans": "{{name}}，今晚维护",
    }

    await invoke.queue("queue_notify", body({"to": {"all": True, "channelId": channel_id}, "text": texts}))
    await work.drain()

    got = {locales[r.conversation_id]: r.text for r in channel.delivered()}
    assert got == {
        "de-DE": "Wartung heute Nacht, Anna",
        "zh-CN": "Anna，今晚维护",
        "fr-FR": "Maintenance tonight, Anna",  # no French text: English
    }
