"""Timer-trigger schedules: NCRONTAB expressions and TimeSpan intervals.

The Functions host reads `schedule` with the NCrontab library: six fields, seconds first
(`sec min hour day month day-of-week`). It also accepts the classic five-field form (seconds
fixed at 0) and a TimeSpan ("hh:mm:ss") meaning "every interval". Like NCrontab, and unlike
Vixie cron, a restricted day-of-month AND a restricted day-of-week must both match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class ScheduleError(ValueError):
    """A schedule expression the real host would also reject."""


class Schedule(Protocol):
    expression: str

    def next_occurrence(self, after: datetime) -> datetime: ...


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# The longest each month can be, so that "30 FEB" is rejected up front instead of looping forever.
_MAX_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 6, _DAYS),
)


def _value(text: str, field: _Field) -> int:
    if text.isdigit():
        number = int(text)
    else:
        # Three-letter names (JAN, MON), any case, as NCrontab documents them.
        if text.upper() not in field.names:
            raise ScheduleError(f"{text!r} is not a valid {field.name}")
        number = field.low + field.names.index(text.upper())
    if not field.low <= number <= field.high:
        raise ScheduleError(f"{field.name} {number} is outside {field.low}-{field.high}")
    return number


def _parse_part(part: str, field: _Field) -> range:
    span, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ScheduleError(f"invalid step {step_text!r} in {field.name} {part!r}")
        step = int(step_text)
    if span == "*":
        low, high = field.low, field.high
    elif "-" in span:
        first, _, last = span.partition("-")
        low, high = _value(first, field), _value(last, field)
        if low > high:
            raise ScheduleError(f"range {span!r} in {field.name} runs backwards")
    else:
        low = _value(span, field)
        # "5/15" means "from 5 on, every 15" as in cron; a bare "5" is just 5.
        high = field.high if slash else low
    return range(low, high + 1, step)


def _parse_field(text: str, field: _Field) -> tuple[int, ...]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"empty list item in {field.name} {text!r}")
        values.update(_parse_part(part, field))
    return tuple(sorted(values))


def _first_at_least(values: tuple[int, ...], current: int) -> int | None:
    return next((value for value in values if value >= current), None)


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]  # 0 = Sunday

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise ScheduleError(
                f"{expression!r} has {len(fields)} fields; NCRONTAB needs 6 (second minute hour day month day-of-week)"
            )
        parsed = [_parse_field(text, field) for text, field in zip(fields, _FIELDS, strict=False)]
        schedule = cls(expression, *parsed)
        if not any(day <= _MAX_MONTH_DAYS[month - 1] for month in schedule.months for day in schedule.days):
            raise ScheduleError(f"{expression!r} names no day that exists in its months")
        return schedule

    def next_occurrence(self, after: datetime) -> datetime:
        """The first matching instant strictly after `after`.

        Fields are matched on the wall clock of `after`'s time zone (naive stays naive).
        A wall time that a DST change repeats fires once; one it skips fires at the shifted
        instant, which is what the Functions host does with WEBSITE_TIME_ZONE.
        """
        if after.tzinfo is None:
            return self._next_wall_time(after)
        wall = after.replace(tzinfo=None)
        # Compare in UTC: Python compares two datetimes sharing a tzinfo by wall clock only.
        after_utc = after.astimezone(UTC)
        while True:
            wall = self._next_wall_time(wall)
            candidate = wall.replace(tzinfo=after.tzinfo)
            if candidate.astimezone(UTC) > after_utc:
                return candidate

    def _next_wall_time(self, after: datetime) -> datetime:
        moment = after.replace(microsecond=0) + timedelta(seconds=1)
        # 400 years is one full Gregorian cycle: any satisfiable schedule occurs within it.
        give_up = moment.year + 400
        while moment.year <= give_up:
            adjusted = self._advance(moment)
            if adjusted is None:
                return moment
            moment = adjusted
        raise ScheduleError(f"{self.expression!r} never occurs")

    def _advance(self, moment: datetime) -> datetime | None:
        """None when `moment` matches; else the earliest later instant that may match."""
        if moment.month not in self.months:
            return _start_of_next_month(moment)
        if moment.day not in self.days or (moment.weekday() + 1) % 7 not in self.days_of_week:
            return _start_of_day(moment) + timedelta(days=1)
        if moment.hour not in self.hours:
            hour = _first_at_least(self.hours, moment.hour)
            if hour is None:
                return _start_of_day(moment) + timedelta(days=1)
            return moment.replace(hour=hour, minute=0, second=0)
        if moment.minute not in self.minutes:
            minute = _first_at_least(self.minutes, moment.minute)
            if minute is None:
                return moment.replace(minute=0, second=0) + timedelta(hours=1)
            return moment.replace(minute=minute, second=0)
        if moment.second not in self.seconds:
            second = _first_at_least(self.seconds, moment.second)
            if second is None:
                return moment.replace(second=0) + timedelta(minutes=1)
            return moment.replace(second=second)
        return None


def _start_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _start_of_next_month(moment: datetime) -> datetime:
    first = _start_of_day(moment).replace(day=1)
    if first.month == 12:
        return first.replace(year=first.year + 1, month=1)
    return first.replace(month=first.month + 1)


_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})"
    r"(?::(?P<seconds>\d{1,2})(?:\.(?P<fraction>\d{1,7}))?)?$"
)


def parse_timespan(text: str) -> timedelta:
    """A .NET TimeSpan as host.json and timer schedules write it: [d.]hh:mm[:ss[.fffffff]]."""
    match = _TIMESPAN.match(text.strip())
    if not match:
        raise ScheduleError(f"{text!r} is not a TimeSpan ([d.]hh:mm:ss)")
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = int(match["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ScheduleError(f"{text!r} is not a TimeSpan: a component is out of range")
    fraction = float(f"0.{match['fraction']}") if match["fraction"] else 0.0
    return timedelta(days=int(match["days"] or 0), hours=hours, minutes=minutes, seconds=seconds + fraction)


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: fires every `interval` counted from the previous occurrence."""

    expression: str
    interval: timedelta

    def next_occurrence(self, after: datetime) -> datetime:
        return after + self.interval


def parse_schedule(expression: str) -> CronSchedule | IntervalSchedule:
    """Whitespace means NCRONTAB; a single token must be a TimeSpan, as the host decides."""
    text = expression.strip()
    if len(text.split()) > 1:
        return CronSchedule.parse(text)
    interval = parse_timespan(text)
    if interval <= timedelta(0):
        raise ScheduleError(f"TimeSpan schedule {expression!r} must be positive")
    return IntervalSchedule(text, interval)
