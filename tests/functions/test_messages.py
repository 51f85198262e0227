"""messages/: the bot's endpoint, driven through its function.json like the Functions host does."""

from __future__ import annotations

import json

from proactive_bot import bot
from tests import activities
from tests.functions import invoke


async def test_teams_install_gets_a_welcome_and_the_address_is_stored(app, channel):
    user = activities.teams_user()
    update = activities.teams_members_added(channel.url, user=user)

    response = await invoke.http("messages", update)

    assert response.status_code == 200
    conversation_id = update["conversation"]["id"]
    [welcome] = channel.activities(conversation_id)
    assert "Hi!" in welcome["text"] and "stop" in welcome["text"]
    assert welcome["recipient"]["id"] == user["id"]
    stored = await app.references.find_user("msteams", user["id"])
    assert stored.conversation_id == conversation_id
    assert stored.tenant_id == activities.TENANT  # Teams needs it for proactive sends


async def test_webchat_welcome_skips_the_bot_itself(app, channel):
    update = activities.webchat_members_added(channel.url)

    await invoke.http("messages", update)

    assert len(channel.activities(update["conversation"]["id"])) == 1


async def test_help_in_a_teams_channel_with_an_at_mention(app, channel):
    conversation = activities.teams_channel_conversation()
    message = activities.teams_message("help", channel.url, conversation=conversation)

    await invoke.http("messages", message)

    [reply] = channel.activities(conversation["id"])
    assert reply["text"] == bot.HELP
    assert reply["replyToId"] == message["id"]
    assert (await app.references.get("msteams", conversation["id"])).is_group


async def test_unknown_text_gets_a_hint(app, channel):
    message = activities.webchat_message("what's the weather", channel.url)

    await invoke.http("messages", message)

    assert channel.texts(message["conversation"]["id"]) == [bot.HINT]


async def test_remind_me_stores_a_reminder_and_confirms(app, channel):
    message = activities.teams_message("remind me in 10 minutes to stretch", channel.url)

    await invoke.http("messages", message)

    [confirmation] = channel.texts(message["conversation"]["id"])
    assert confirmation.startswith("OK, I will remind you at ") and "to stretch" in confirmation


async def test_unparseable_reminder_gets_an_explanation(app, channel):
    message = activities.teams_message("remind me sometime to nap", channel.url)

    await invoke.http("messages", message)

    assert "did not understand when" in channel.texts(message["conversation"]["id"])[0]


async def test_bad_requests_are_4xx_and_run_no_turn(app, channel):
    not_json = await invoke.http("messages", b"{nope")
    not_an_object = await invoke.http("messages", [1, 2])
    no_conversation = await invoke.http("messages", {"type": "message", "channelId": "webchat", "serviceUrl": channel.url})
    too_big = await invoke.http("messages", b"{" + b" " * 600_000 + b"}")

    assert [r.status_code for r in (not_json, not_an_object, no_conversation, too_big)] == [400, 400, 400, 413]
    assert "conversation.id" in json.loads(no_conversation.get_body())["error"]["message"]
    assert channel.received == []
