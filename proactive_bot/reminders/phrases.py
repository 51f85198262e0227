"""What every language's reading of a time phrase shares: the parts of a When, how a language
names days (DayWords, read by read_day), and patterns compiled on first use. schedules.py reads
English and picks the grammar; german.py and chinese.py read theirs with these parts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import time, timedelta
from functools import cached_property
from typing import Any

# How far ahead a reminder may be; also keeps "in 99999 weeks" from overflowing a datetime.
HORIZON = timedelta(days=366)
MAX_WHEN = 100  # characters of the time phrase beside the text


def alternatives(words: Iterable[str]) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


class LazyPattern:
    """A regular expression compiled on first use. Only the messages function reads what people
    type; the timer and the report load this module for Recurrence and zones, and compiling these
    patterns at import was a few milliseconds of every such cold start."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._source = (pattern, flags)

    @cached_property
    def _compiled(self) -> re.Pattern[str]:
        return re.compile(*self._source)

    def match(self, text: str) -> re.Match[str] | None:
        return self._compiled.match(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self._compiled.finditer(text)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self._compiled.fullmatch(text)

    def findall(self, text: str) -> list[Any]:
        return self._compiled.findall(text)

    def sub(self, replacement: str | Callable[[re.Match[str]], str], text: str) -> str:
        return self._compiled.sub(replacement, text)


@dataclass(frozen=True)
class When:
    after: timedelta | None = None  # "in 10 minutes"
    before: timedelta | None = None  # "2 hours ago"
    at: time | None = None  # "at 17:00"
    day: str | None = None  # "today" | "tomorrow" | "weekday" | "date" | "yesterday" | "last weekday"
    weekday: int | None = None
    date: tuple[int | None, int, int] | None = None  # (year or None, month, day)
    recurrence_days: frozenset[int] | None = None
    bad_time: bool = False  # "at 25:00": read as a time phrase, so the reply can say what is wrong


def when_of(
    phrase: str, at: time | None, day_part: str, words: DayWords, period_time: time | None = None
) -> When | None:
    """A phrase's When from its time of day (None: none given, or an impossible one) and the rest
    of it (`day_part`, read by `read_day`); `period_time` stands in for a missing time ("tonight")."""
    day = read_day(day_part, words)
    if day is None or (at is None and period_time is None and not day and day_part == phrase):
        return None
    if at is None and period_time is None and day_part != phrase:
        return When(bad_time=True)  # a time phrase was there ("at 25:00") but read as no time
    return When(at=at or period_time, **day)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DayWords:
    """How one language names a day (the patterns `read_day` tries, in its order)."""

    relative: dict[str, str]  # "tomorrow" -> the `When.day` it means
    every: LazyPattern  # a recurrence; `recurrence_days` reads its match
    recurrence_days: Callable[[re.Match[str]], frozenset[int]]
    iso_date: LazyPattern  # year, month, day
    day_month: LazyPattern  # day, month name, year or None ("24 December", "24. Dezember")
    months: dict[str, int]
    weekday: LazyPattern  # a weekday name ("Friday", "next Friday")
    last_weekday: LazyPattern
    weekdays: dict[str, int]
    month_day: LazyPattern | None = None  # month name, day, year ("Dec 24th")
    numeric_date: LazyPattern | None = None  # day, month, year ("24.12.2026")


def read_day(text: str, words: DayWords) -> dict[str, object] | None:
    """The day part of a phrase as When fields ({} when there is none), or None if unreadable."""
    lowered = text.lower()
    if not lowered:
        return {}
    if lowered in words.relative:
        return {"day": words.relative[lowered]}
    if match := words.every.fullmatch(text):
        return {"recurrence_days": words.recurrence_days(match)}
    if words.numeric_date is not None and (match := words.numeric_date.fullmatch(text)):
        return {"day": "date", "date": (int(match[3]) if match[3] else None, int(match[2]), int(match[1]))}
    if match := words.iso_date.fullmatch(text):
        return {"day": "date", "date": (int(match[1]), int(match[2]), int(match[3]))}
    if match := words.day_month.fullmatch(text):
        year = int(match[3]) if match[3] else None
        return {"day": "date", "date": (year, words.months[match[2].lower()], int(match[1]))}
    if words.month_day is not None and (match := words.month_day.fullmatch(text)):
        year = int(match[3]) if match[3] else None
        return {"day": "date", "date": (year, words.months[match[1].lower()], int(match[2]))}
    if match := words.weekday.fullmatch(text):
        return {"day": "weekday", "weekday": words.weekdays[match[1].lower()]}
    if match := words.last_weekday.fullmatch(text):
        return {"day": "last weekday", "weekday": words.weekdays[match[1].lower()]}
    return None
