"""messages/: the bot's endpoint, driven through its function.json like the Functions host does."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from proactive_bot import bot, clock
from proactive_bot.reminders import Owner
from tests import activities
from tests.functions import invoke

NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=timezone.utc)  # 11:00:30 in Berlin


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


async def test_remind_me_stores_a_reminder_and_confirms_in_the_users_zone(app, channel, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    message = activities.teams_message("remind me in 10 minutes to stretch", channel.url)  # Teams: Europe/Berlin

    await invoke.http("messages", message)

    [confirmation] = channel.texts(message["conversation"]["id"])
    assert confirmation == "OK, I'll remind you today at 11:10 (Europe/Berlin) to stretch."
    [entry] = (await app.reminders.agenda(Owner("msteams", message["from"]["id"]))).pending
    assert entry.due_at == NOW + timedelta(minutes=10)


async def test_a_reminders_buttons_reach_it_after_an_unrelated_message(app, channel, monkeypatch):
    """The dialog-dependent path: the proactive message opens an exchange; the answer comes back to it."""
    monkeypatch.setattr(clock, "now", lambda: NOW)
    user, conversation_id = activities.teams_user(), "a:1" + uuid.uuid4().hex
    conversation = {"conversationType": "personal", "tenantId": activities.TENANT, "id": conversation_id}

    async def say(text: str, value: dict | None = None) -> str:
        message = activities.teams_message(text, channel.url, user=user, conversation=conversation)
        if value is not None:  # a card click: Teams sends the Action.Submit data as `value`, no text
            message.pop("text")
            message["value"] = value
        before = len(channel.texts(conversation_id))
        await invoke.http("messages", message)
        return channel.texts(conversation_id)[before]

    await say("remind me in 5 minutes to stretch")
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=6))
    await invoke.timer("timer_notify")
    reminder = channel.activities(conversation_id)[-1]
    snooze_hour = reminder["attachments"][0]["content"]["actions"][2]["data"]

    assert await say("what's the weather") == bot.HINT  # the user is busy with something else
    assert await say("", value=snooze_hour) == "😴 Snoozed: I'll remind you again today at 12:06 to stretch."

    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=67))
    await invoke.timer("timer_notify")
    assert channel.texts(conversation_id)[-1] == "⏰ Reminder: stretch"
    assert await say("help") == bot.HELP
    assert await say("done") == "✅ Done: stretch."


async def test_a_card_click_in_a_teams_channel_reaches_its_reminder(app, channel, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    user, conversation = activities.teams_user(), activities.teams_channel_conversation()
    await invoke.http("messages", activities.teams_message("remind me in 1 minute to ship it", channel.url,
                                                           user=user, conversation=conversation))
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=2))
    await invoke.http("messages", activities.teams_message("help", channel.url, conversation=conversation))
    await invoke.timer("timer_notify")
    done = channel.activities(conversation["id"])[-1]["attachments"][0]["content"]["actions"][0]["data"]
    click = activities.teams_message("", channel.url, user=user, conversation=conversation)
    click.pop("text")
    click["value"] = done

    await invoke.http("messages", click)

    assert channel.texts(conversation["id"])[-1] == "✅ Done: ship it."


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
