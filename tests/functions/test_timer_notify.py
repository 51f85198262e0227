"""timer_notify/: sends what is due, once, and leaves the rest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from proactive_bot.reminders import Reminder
from tests import activities
from tests.functions import invoke


async def known_conversation(channel) -> dict:
    """A user who talked to the bot, so their address is stored."""
    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    channel.clear()
    return message


def reminder_for(message: dict, text: str, due_at: datetime) -> Reminder:
    return Reminder(
        channel_id=message["channelId"],
        conversation_id=message["conversation"]["id"],
        user_id=message["from"]["id"],
        text=text,
        due_at=due_at,
    )


async def test_due_reminders_are_sent_once_and_future_ones_wait(app, channel):
    message = await known_conversation(channel)
    conversation_id = message["conversation"]["id"]
    now = datetime.now(timezone.utc)
    await app.reminders.add(reminder_for(message, "stretch", now - timedelta(seconds=30)))
    await app.reminders.add(reminder_for(message, "call Anna", now - timedelta(hours=3)))
    await app.reminders.add(reminder_for(message, "tomorrow's thing", now + timedelta(days=1)))

    await invoke.timer("timer_notify")
    await invoke.timer("timer_notify")  # a second run finds nothing left to send

    texts = sorted(channel.texts(conversation_id))
    assert len(texts) == 2
    assert texts[0].startswith("⏰ Reminder: call Anna (was due at ")  # late after downtime
    assert texts[1] == "⏰ Reminder: stretch"


async def test_reminder_for_a_blocked_user_is_dropped_and_the_address_marked_gone(app, channel):
    message = await known_conversation(channel)
    conversation_id = message["conversation"]["id"]
    await app.reminders.add(reminder_for(message, "stretch", datetime.now(timezone.utc) - timedelta(minutes=1)))
    channel.block(conversation_id, 403)

    await invoke.timer("timer_notify")
    channel.unblock(conversation_id)
    await invoke.timer("timer_notify")

    assert channel.delivered(conversation_id) == []
    stored = await app.references.get("msteams", conversation_id)
    assert not stored.active and stored.inactive_reason.startswith("403")
