"""A delivered reminder (text + card with Done/Snooze) and reading the user's answer back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proactive_bot.activities import ADAPTIVE_CARD
from proactive_bot.reminders.cards import Answer, read_answer, reminder_activity
from proactive_bot.reminders.rows import Reminder

NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)


def reminder(due_at: datetime) -> Reminder:
    return Reminder(
        channel_id="msteams",
        conversation_id="a:1conv",
        user_id="29:1user",
        text="stretch",
        due_at=due_at,
        zone="Europe/Berlin",
        id="r1",
        occurrence=2,
    )


def test_a_reminder_is_text_plus_a_card_whose_buttons_name_it():
    activity = reminder_activity(reminder(NOW - timedelta(seconds=30)), NOW)

    assert activity["text"] == "⏰ Reminder: stretch"
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD
    actions = attachment["content"]["actions"]
    assert [a["title"] for a in actions] == ["Done", "Snooze 10 min", "Snooze 1 h"]
    assert {a["type"] for a in actions} == {"Action.Submit"}
    assert actions[2]["data"] == {"reminderAction": "snooze", "reminderId": "r1", "occurrence": 3, "minutes": 60}


def test_a_late_reminder_says_when_it_was_due_in_the_users_zone():
    activity = reminder_activity(reminder(datetime(2026, 11, 26, 8, tzinfo=UTC)), NOW)

    assert activity["text"] == "⏰ Reminder: stretch (was due today at 09:00)"


@pytest.mark.parametrize(
    ("text", "value", "answer"),
    [
        ("done", None, Answer(None)),
        ("Done!", None, Answer(None)),
        ("snooze", None, Answer(timedelta(minutes=10))),
        ("snooze 1h", None, Answer(timedelta(hours=1))),
        ("snooze for 30 minutes", None, Answer(timedelta(minutes=30))),
        ("snooze 15", None, Answer(timedelta(minutes=15))),
        ("snooze whenever", None, None),
        ("done and dusted", None, None),
        # A card click: Teams and Web Chat both send the Action.Submit data as `value`, no text.
        (None, {"reminderAction": "done", "reminderId": "r1", "occurrence": 3}, Answer(None, "r1", 3)),
        (
            "",
            {"reminderAction": "snooze", "reminderId": "r1", "occurrence": 3, "minutes": 60},
            Answer(timedelta(hours=1), "r1", 3),
        ),
        (
            "",
            {"reminderAction": "snooze", "reminderId": "r1", "minutes": -5},
            Answer(timedelta(minutes=10), "r1", None),
        ),
        ("", {"reminderAction": "done"}, None),
        ("", {"someOtherCard": True}, None),
    ],
)
def test_reading_answers(text, value, answer):
    assert read_answer(text or "", value) == answer
