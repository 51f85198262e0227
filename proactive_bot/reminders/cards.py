"""What a delivered reminder looks like, and how the user's answer to it is read back.

A reminder goes out as text (what every channel shows, and notifications preview) plus an
Adaptive Card whose Action.Submit buttons carry the reminder's id and occurrence. Clicking one
sends a message activity whose `value` is that data, in Teams (any conversation type) and Web
Chat alike, so the answer finds its reminder whatever the user was doing in between. Typed
answers (`done`, `snooze 1h`) go to the reminder delivered last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import i18n
from ..activities import adaptive_card, message
from .phrases import LazyPattern
from .rows import Reminder
from .schedules import parse_duration
from .times import describe_moment

# A reminder this much past due is marked late ("was due at ...") when it finally goes out.
LATE_AFTER = timedelta(minutes=2)
DEFAULT_SNOOZE = timedelta(minutes=10)
SNOOZES = (("card.snooze.10", timedelta(minutes=10)), ("card.snooze.60", timedelta(hours=1)))  # catalog keys
_ACTION_KEY = "reminderAction"

# Typed answers in English, German and Chinese, whatever the language the bot answers in.
_DONE = LazyPattern(
    r"(?:done|did it|mark (?:it )?done|ok,? done|erledigt|fertig|gemacht|ok,? erledigt|完成|已完成|完成了|做完了|好了|搞定了?)"
    r"[.!。！]?",
    re.IGNORECASE,
)
_SNOOZE = LazyPattern(
    r"(?:snooze|später|schlummern|稍后(?:提醒)?|推迟|延后|等会儿?再?提醒)(?:\s*(?:for\s+|für\s+|in\s+)?(?P<for>.+?))?[.!。！]?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Answer:
    """The user's answer to a delivered reminder: done, or snooze for `snooze`."""

    snooze: timedelta | None  # None: done
    reminder_id: str | None = None  # None: typed, so "the reminder delivered last"
    occurrence: int | None = None  # which delivery the clicked card belonged to


def reminder_activity(reminder: Reminder, now: datetime, language: str = i18n.DEFAULT) -> dict[str, Any]:
    text = i18n.text(language, "card.text", text=reminder.text)
    if now - reminder.due_at > LATE_AFTER:
        text += i18n.text(language, "card.late", when=describe_moment(reminder.due_at, reminder.tz, now, language))
    return message(text, attachments=[adaptive_card(_card(reminder, language))])


def _card(reminder: Reminder, language: str) -> dict[str, Any]:
    occurrence = reminder.occurrence + 1

    def submit(title: str, action: str, minutes: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {_ACTION_KEY: action, "reminderId": reminder.id, "occurrence": occurrence}
        if minutes is not None:
            data["minutes"] = minutes
        return {"type": "Action.Submit", "title": title, "data": data}

    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.2",
        "body": [{"type": "TextBlock", "text": i18n.text(language, "card.prompt"), "wrap": True, "isSubtle": True}],
        "actions": [
            submit(i18n.text(language, "card.done"), "done"),
            *(
                submit(i18n.text(language, title), "snooze", int(delay.total_seconds() // 60))
                for title, delay in SNOOZES
            ),
        ],
    }


def read_answer(text: str, value: Any) -> Answer | None:
    """The answer in a message activity (card click or typed), or None if it is not one."""
    if isinstance(value, dict) and value.get(_ACTION_KEY) in ("done", "snooze"):
        return _clicked(value)
    text = " ".join(text.split())
    if _DONE.fullmatch(text):
        return Answer(snooze=None)
    if match := _SNOOZE.fullmatch(text):
        if not match["for"]:
            return Answer(snooze=DEFAULT_SNOOZE)
        delay = _duration(match["for"])
        return Answer(snooze=delay) if delay else None
    return None


def _clicked(value: dict[str, Any]) -> Answer | None:
    reminder_id = value.get("reminderId")
    if not isinstance(reminder_id, str) or not reminder_id:
        return None
    occurrence = value.get("occurrence")
    occurrence = occurrence if isinstance(occurrence, int) else None
    if value[_ACTION_KEY] == "done":
        return Answer(None, reminder_id, occurrence)
    minutes = value.get("minutes")
    minutes = minutes if isinstance(minutes, int) and 0 < minutes <= 7 * 24 * 60 else 10
    return Answer(timedelta(minutes=minutes), reminder_id, occurrence)


def _duration(text: str) -> timedelta | None:
    """A snooze's length in any of the languages; a bare number is minutes."""
    from . import chinese, german  # only a typed snooze needs them

    for read in (parse_duration, german.parse_duration, chinese.parse_duration):
        if delay := read(text) or read(text + " min"):
            return delay
    return None
