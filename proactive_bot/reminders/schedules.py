"""When a reminder is due: reading "remind me ..." in the user's time zone, and recurrences.

A small parser, no NLP library. It understands a time phrase before or after the text:

    remind me in 10 minutes to stretch          remind me to stretch in 10 minutes
    remind me at 5pm to call Anna               remind me tomorrow at 9:00 to send the report
    remind me on Friday at 14:30 to ...         remind me on 24 December to ...
    remind me every weekday at 9am to stand up  remind me every day at 18:00 to ...
    remind me every Monday and Thursday at 8 to ...

A time in the past ("yesterday at 5pm", "last Friday", "2 hours ago") is read only to say so.

Wall-clock times are read in the user's zone and stored as UTC instants. A recurrence keeps its
local time ("09:00 in Europe/Berlin"), and each next occurrence is computed from the local
calendar, so a daily 09:00 stays at 09:00 local across daylight-saving changes. A local time that
does not exist (the spring-forward gap) moves forward by the gap; an ambiguous one (fall-back)
is the first of the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from .. import i18n
from ..i18n import DEFAULT, dates
from .english import MONTHS, UNITS, WEEKDAYS
from .phrases import HORIZON, MAX_WHEN, DayWords, LazyPattern, When, alternatives, when_of
from .times import Recurrence, describe_moment, local_instant

MAX_TEXT = 1000
# When the user names a day but no time ("remind me tomorrow to ...").
DEFAULT_TIME = time(9, 0)


_DAY = alternatives(WEEKDAYS)
_MONTH = alternatives(MONTHS)
_UNIT = alternatives(UNITS)
_AMOUNT = r"\d{1,6}|(?:an?|one)(?=\s)"
# Possessive `*+`: each space belongs to one place, so a near-miss fails in linear time instead of
# trying every split of the spaces between parts (exponential backtracking).
_DURATION = LazyPattern(rf"(?:(?:{_AMOUNT})\s*+(?:{_UNIT})(?![a-z])\s*+(?:(?:,\s*+and|,|and)\s*+)?)+", re.IGNORECASE)
_DURATION_PART = LazyPattern(rf"({_AMOUNT})\s*({_UNIT})(?![a-z])", re.IGNORECASE)
_TIME = r"noon|midnight|\d{1,2}(?:[:.]\d{2})?\s*(?:[ap]\.?m\.?)?"
_CLOCK = LazyPattern(r"(\d{1,2})(?:[:.](\d{2}))?\s*(?:([ap])\.?m\.?)?", re.IGNORECASE)
_TIME_FIRST = LazyPattern(rf"at\s+({_TIME})(?:\s+(.*))?", re.IGNORECASE | re.DOTALL)
_TIME_LAST = LazyPattern(rf"(.*?)\s*\bat\s+({_TIME})", re.IGNORECASE | re.DOTALL)
_DAY_LIST = rf"(?:{_DAY})s?(?:\s*(?:,\s*and|,|and|&)\s*(?:{_DAY})s?)*"
_EVERY = LazyPattern(
    rf"(?:every\s+(?P<any>day|weekday|working\s+day|week\s*day|(?:week\s+on\s+)?(?P<days>{_DAY_LIST}))"
    rf"|(?P<daily>daily)|(?:on\s+)?(?P<weekdays>weekdays))",
    re.IGNORECASE,
)
_ISO_DATE = LazyPattern(r"(?:on\s+)?(\d{4})-(\d{1,2})-(\d{1,2})", re.IGNORECASE)
_DAY_MONTH = LazyPattern(
    rf"(?:on\s+)?(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+({_MONTH})\.?(?:,?\s+(\d{{4}}))?",
    re.IGNORECASE,
)
_MONTH_DAY = LazyPattern(rf"(?:on\s+)?({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?", re.IGNORECASE)
_WEEKDAY = LazyPattern(rf"(?:on\s+|next\s+|this\s+)?({_DAY})", re.IGNORECASE)
_LAST_WEEKDAY = LazyPattern(rf"last\s+({_DAY})", re.IGNORECASE)
_SPACES = LazyPattern(r"\s+")


class ScheduleError(ValueError):
    """What the user said cannot be a reminder; the message says why, for the user to read (in
    the language the parse was asked to answer in)."""

    def __init__(self, language: str, key: str, **fields: Any) -> None:
        super().__init__(i18n.text(language, key, **fields))
        self.key = key  # the catalog key: which refusal, whatever the language


@dataclass(frozen=True)
class ReminderRequest:
    """What "remind me ..." asked for: the first due time (UTC) and, if it repeats, how."""

    text: str
    due_at: datetime
    recurrence: Recurrence | None = None


def is_reminder_request(text: str) -> bool:
    return _grammar_of(text) is not None


def parse_request(text: str, now: datetime, zone: ZoneInfo, language: str = DEFAULT) -> ReminderRequest:
    """Read "remind me <when> to <what>" (or "remind me to <what> <when>") said at `now`, or its
    German or Chinese form; a ScheduleError says what is wrong in `language`."""
    said = _normalize(text)
    grammar = _grammar_of(said) or _ENGLISH
    rest = grammar.rest(said)
    if len(rest) > MAX_TEXT + MAX_WHEN:
        # Refused before the search for the time phrase, which is quadratic in the length.
        raise ScheduleError(language, "schedule.too_long", length=len(rest), limit=MAX_TEXT)
    split = grammar.split(rest)
    if split is None:
        raise ScheduleError(language, "schedule.no_when", examples=i18n.text(language, "examples"))
    what, when = split
    if not what:
        raise ScheduleError(language, "schedule.no_what")
    if len(what) > MAX_TEXT:
        raise ScheduleError(language, "schedule.too_long", length=len(what), limit=MAX_TEXT)
    due_at, recurrence = _resolve(when, now, zone, language)
    return ReminderRequest(text=what, due_at=due_at, recurrence=recurrence)


class Grammar(Protocol):
    """How one language says "remind me": whether a message asks it, and its what and when."""

    def asks(self, said: str) -> bool: ...

    def rest(self, said: str) -> str:
        """The message without its "remind me"."""

    def split(self, rest: str) -> tuple[str, When] | None:
        """The reminder's text and its time phrase, or None if no time phrase reads."""


class _English:
    def asks(self, said: str) -> bool:
        return said.lower().startswith("remind me")

    def rest(self, said: str) -> str:
        return said[len("remind me") :].strip() if self.asks(said) else said

    def split(self, rest: str) -> tuple[str, When] | None:
        return _split_text_and_when(rest)


_ENGLISH = _English()


def _grammar_of(said: str) -> Grammar | None:
    from . import chinese, german  # their patterns compile on first use, like this module's

    said = _normalize(said)
    for grammar in (_ENGLISH, german.GRAMMAR, chinese.GRAMMAR):
        if grammar.asks(said):
            return grammar
    return None


def parse_duration(text: str) -> timedelta | None:
    """ "10 minutes", "1h", "an hour and 30 min" -> a timedelta; None if it is not a duration."""
    text = text.strip()
    if not _DURATION.fullmatch(text):
        return None
    total = timedelta()
    for amount, unit in _DURATION_PART.findall(text):
        count = int(amount) if amount.isdigit() else 1
        total += count * UNITS[unit.lower()]
        if total > HORIZON:
            return HORIZON + timedelta(minutes=1)  # callers refuse it with the horizon's message
    return total


def _normalize(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _split_text_and_when(rest: str) -> tuple[str, When] | None:
    lowered = rest.lower()
    if lowered.startswith("to "):
        # "to <what> <when>": the longest trailing phrase that reads as a time.
        words = [m.start() for m in re.finditer(r"\S+", rest)][2:]
        for start in words:
            when = _read_when(rest[start:])
            if when is not None:
                return rest[3:start].strip(), when
        return None
    # "<when> to <what>": the first " to " after which the rest is the text.
    for match in re.finditer(r"\s+to\b\s*", rest, re.IGNORECASE):
        when = _read_when(rest[: match.start()])
        if when is not None:
            return rest[match.end() :].strip(), when
    return None


# --- the time phrase ---------------------------------------------------------------------------


def _read_when(phrase: str) -> When | None:
    phrase = phrase.strip().rstrip(",:")
    if not phrase:
        return None
    if phrase.lower().startswith("in "):
        after = parse_duration(phrase[3:])
        return When(after=after) if after is not None else None
    if phrase.lower().endswith(" ago"):
        before = parse_duration(phrase[:-4])
        return When(before=before) if before is not None else None
    at: time | Literal[False] | None = None
    day_part = phrase
    if match := _TIME_FIRST.fullmatch(phrase):
        at, day_part = _clock(match[1]), match[2] or ""
    elif match := _TIME_LAST.fullmatch(phrase):
        day_part, at = match[1], _clock(match[2])
    if at is False:
        return None
    return when_of(phrase, at, day_part.strip().rstrip(","), _DAY_WORDS)


def _clock(text: str) -> time | Literal[False] | None:
    """A time of day; None for an impossible one (25:00, read to explain); False if not a time."""
    text = text.strip().lower()
    if text == "noon":
        return time(12, 0)
    if text == "midnight":
        return time(0, 0)
    match = _CLOCK.fullmatch(text)
    if not match:
        return False
    hour, minute, half = int(match[1]), int(match[2] or 0), match[3]
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "p" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _recurrence_days(match: re.Match[str]) -> frozenset[int]:
    if match["daily"] or (match["any"] or "").lower() == "day":
        return frozenset(range(7))
    if match["days"]:
        names = re.findall(_DAY, match["days"], re.IGNORECASE)
        return frozenset(WEEKDAYS[name.lower()] for name in names)
    return frozenset(range(5))  # weekday(s), working day


_DAY_WORDS = DayWords(
    relative={"today": "today", "tomorrow": "tomorrow", "yesterday": "yesterday"},
    every=_EVERY,
    recurrence_days=_recurrence_days,
    iso_date=_ISO_DATE,
    day_month=_DAY_MONTH,
    months=MONTHS,
    weekday=_WEEKDAY,
    last_weekday=_LAST_WEEKDAY,
    weekdays=WEEKDAYS,
    month_day=_MONTH_DAY,
)


# --- from phrase to instant --------------------------------------------------------------------


def _resolve(when: When, now: datetime, zone: ZoneInfo, language: str) -> tuple[datetime, Recurrence | None]:
    if when.bad_time:
        raise ScheduleError(language, "schedule.bad_time")
    if when.before is not None:
        if when.before < timedelta(minutes=1):
            raise ScheduleError(language, "schedule.now")
        # parse_duration caps what it reads at just over the horizon, so beyond it the exact moment is unknown.
        ago = (
            i18n.text(language, "schedule.long_ago")
            if when.before > HORIZON
            else describe_moment(now - when.before, zone, now, language)
        )
        raise _in_the_past(ago, now, zone, language)
    if when.after is not None:
        if when.after > HORIZON:
            raise ScheduleError(language, "schedule.too_far")
        if when.after < timedelta(minutes=1):
            raise ScheduleError(language, "schedule.now")
        return now + when.after, None
    at = when.at or DEFAULT_TIME
    if when.recurrence_days is not None:
        recurrence = Recurrence(when.recurrence_days, at)
        return recurrence.next_after(now, zone), recurrence
    today = now.astimezone(zone).date()
    if when.day is None:  # "at 17:00": the next 17:00, today or tomorrow
        due = local_instant(today, at, zone)
        return (due if due > now else local_instant(today + timedelta(days=1), at, zone)), None
    if when.day == "weekday":
        ahead = (when.weekday - today.weekday()) % 7  # type: ignore[operator]
        due = local_instant(today + timedelta(days=ahead), at, zone)
        # "on Friday" said on a Friday after that time: next week's.
        return (due if due > now else local_instant(today + timedelta(days=ahead + 7), at, zone)), None
    day = _calendar_day(when, today, language)
    due = local_instant(day, at, zone)
    if when.day in _PAST_DAYS:
        raise _in_the_past(describe_moment(due, zone, now, language), now, zone, language)
    if due <= now:
        raise ScheduleError(
            language,
            "schedule.passed",
            moment=describe_moment(due, zone, now, language),
            now=_now_in(now, zone, language),
        )
    if due - now > HORIZON:
        raise ScheduleError(language, "schedule.too_far")
    return due, None


# Days that are gone whatever the hour: "yesterday", "last Friday".
_PAST_DAYS = frozenset({"yesterday", "last weekday"})


def _in_the_past(moment: str, now: datetime, zone: ZoneInfo, language: str) -> ScheduleError:
    """For a phrase that names the past (not a time that has gone by today): the moment read back."""
    return ScheduleError(language, "schedule.past", moment=moment, now=_now_in(now, zone, language))


def _now_in(now: datetime, zone: ZoneInfo, language: str) -> str:
    return i18n.text(language, "schedule.now_in", time=f"{now.astimezone(zone):%H:%M}", zone=zone.key)


def _calendar_day(when: When, today: date, language: str) -> date:
    if when.day == "today":
        return today
    if when.day == "tomorrow":
        return today + timedelta(days=1)
    if when.day == "day after tomorrow":
        return today + timedelta(days=2)
    weekday = when.weekday or 0  # set for the kinds of day that name a weekday
    if when.day == "next week":  # "下周五": that weekday in the next calendar week
        return today + timedelta(days=7 - today.weekday() + weekday)
    if when.day == "yesterday":
        return today - timedelta(days=1)
    if when.day == "last weekday":  # the latest one before today: on a Friday, "last Friday" is a week ago
        return today - timedelta(days=(today.weekday() - weekday - 1) % 7 + 1)
    year, month, day = when.date  # type: ignore[misc]
    try:
        if year is not None:
            return date(year, month, day)
        # "on 24 December" is the next one: this year's if it has not gone by.
        this_year = date(today.year, month, day) if _exists(today.year, month, day) else None
        if this_year is not None and this_year >= today:
            return this_year
        return date(today.year + 1, month, day)
    except ValueError:
        raise ScheduleError(
            language,
            "schedule.no_such_day",
            day=day,
            month=dates.month_name(month, language) if 1 <= month <= 12 else f"{month}",
            year=f" {year}" if year else "",
        ) from None


def _exists(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


# --- zones and how times read ------------------------------------------------------------------
