"""NCRONTAB and TimeSpan schedules, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devtools.funchost.ncrontab import (
    CronSchedule,
    IntervalSchedule,
    ScheduleError,
    parse_schedule,
    parse_timespan,
)

UTC = UTC


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


NEXT_OCCURRENCES = [
    # expression, after, expected next occurrence
    ("*/1 * * * * *", utc(2024, 6, 1, 12, 0, 0), utc(2024, 6, 1, 12, 0, 1)),
    ("* * * * * *", datetime(2024, 6, 1, 12, 0, 0, 500_000, UTC), utc(2024, 6, 1, 12, 0, 1)),
    ("0 */5 * * * *", utc(2024, 6, 1, 12, 3, 10), utc(2024, 6, 1, 12, 5, 0)),
    ("0 */5 * * * *", utc(2024, 6, 1, 12, 55, 0), utc(2024, 6, 1, 13, 0, 0)),
    ("5,10,15 * * * * *", utc(2024, 6, 1, 12, 0, 15), utc(2024, 6, 1, 12, 1, 5)),
    ("5/15 * * * * *", utc(2024, 6, 1, 12, 0, 6), utc(2024, 6, 1, 12, 0, 20)),
    ("0 0 10-14/2 * * *", utc(2024, 6, 1, 11, 0, 0), utc(2024, 6, 1, 12, 0, 0)),
    ("0 0 10-14/2 * * *", utc(2024, 6, 1, 14, 0, 0), utc(2024, 6, 2, 10, 0, 0)),
    # 2024-06-01 is a Saturday.
    ("0 0 9 * * MON-FRI", utc(2024, 6, 1, 10, 0, 0), utc(2024, 6, 3, 9, 0, 0)),
    ("0 30 9 * * 1-5", utc(2024, 6, 3, 9, 30, 0), utc(2024, 6, 4, 9, 30, 0)),
    ("0 0 0 * * SUN", utc(2024, 6, 1, 0, 0, 0), utc(2024, 6, 2, 0, 0, 0)),
    ("0 0 0 * * 0", utc(2024, 6, 1, 0, 0, 0), utc(2024, 6, 2, 0, 0, 0)),
    ("0 0 0 * * sat,sun", utc(2024, 6, 3, 0, 0, 0), utc(2024, 6, 8, 0, 0, 0)),
    ("0 0 0 1 JAN *", utc(2024, 6, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)),
    ("0 0 0 1 jan-mar *", utc(2024, 3, 2, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)),
    ("0 0 12 29 FEB *", utc(2023, 3, 1, 0, 0, 0), utc(2024, 2, 29, 12, 0, 0)),
    ("0 0 0 31 * *", utc(2024, 4, 15, 0, 0, 0), utc(2024, 5, 31, 0, 0, 0)),
    # Day-of-month AND day-of-week, as NCrontab does: only Friday the 13th.
    ("0 0 0 13 * FRI", utc(2024, 1, 1, 0, 0, 0), utc(2024, 9, 13, 0, 0, 0)),
    # Strictly after: an exact match moves on to the next one.
    ("30 59 23 31 DEC *", utc(2024, 12, 31, 23, 59, 30), utc(2025, 12, 31, 23, 59, 30)),
    # Five fields: the classic cron form, seconds fixed at 0.
    ("*/15 * * * *", utc(2024, 6, 1, 12, 7, 42), utc(2024, 6, 1, 12, 15, 0)),
    # Naive in, naive out.
    ("0 0 * * * *", datetime(2024, 6, 1, 12, 30), datetime(2024, 6, 1, 13, 0)),
]


@pytest.mark.parametrize(("expression", "after", "expected"), NEXT_OCCURRENCES)
def test_next_occurrence(expression: str, after: datetime, expected: datetime) -> None:
    assert CronSchedule.parse(expression).next_occurrence(after) == expected


BERLIN = ZoneInfo("Europe/Berlin")

TIME_ZONE_CASES = [
    # A daily 09:00 stays 09:00 local across the spring DST change (07:00Z after it).
    ("0 0 9 * * *", datetime(2024, 3, 30, 10, 0, tzinfo=BERLIN), utc(2024, 3, 31, 7, 0, 0)),
    # 02:30 does not exist on 2024-03-31 in Berlin: it fires at the shifted instant.
    ("0 30 2 * * *", datetime(2024, 3, 31, 0, 0, tzinfo=BERLIN), utc(2024, 3, 31, 1, 30, 0)),
    # 02:30 happens twice on 2024-10-27: it fires once, not again an hour later.
    ("0 30 2 * * *", datetime(2024, 10, 27, 2, 45, tzinfo=BERLIN), utc(2024, 10, 28, 1, 30, 0)),
]


@pytest.mark.parametrize(("expression", "after", "expected_utc"), TIME_ZONE_CASES)
def test_next_occurrence_in_a_time_zone(expression: str, after: datetime, expected_utc: datetime) -> None:
    assert CronSchedule.parse(expression).next_occurrence(after).astimezone(UTC) == expected_utc


INVALID = [
    "",
    "* * * *",
    "* * * * * * *",
    "60 * * * * *",
    "* 60 * * * *",
    "* * 24 * * *",
    "* * * 0 * *",
    "* * * 32 * *",
    "* * * * 13 *",
    "* * * * * 7",
    "*/0 * * * * *",
    "5-1 * * * * *",
    "x * * * * *",
    "1,,2 * * * * *",
    "* * * * FOO *",
    "* * * * * FU",
    "0 0 0 30 FEB *",
]


@pytest.mark.parametrize("expression", INVALID)
def test_invalid_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError):
        CronSchedule.parse(expression)


TIMESPANS = [
    ("00:00:01", timedelta(seconds=1)),
    ("01:30:00", timedelta(hours=1, minutes=30)),
    ("00:05", timedelta(minutes=5)),
    ("1.00:00:00", timedelta(days=1)),
    ("00:00:00.5", timedelta(milliseconds=500)),
    ("00:00:00", timedelta(0)),
]


@pytest.mark.parametrize(("text", "expected"), TIMESPANS)
def test_parse_timespan(text: str, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "24:00:00", "00:60:00", "00:00:60", "1:2:3:4"])
def test_invalid_timespans_are_rejected(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_timespan(text)


def test_parse_schedule_tells_cron_from_timespan() -> None:
    assert isinstance(parse_schedule("0 */5 * * * *"), CronSchedule)
    interval = parse_schedule("00:05:00")
    assert interval == IntervalSchedule("00:05:00", timedelta(minutes=5))
    assert interval.next_occurrence(utc(2024, 6, 1, 12, 0, 0)) == utc(2024, 6, 1, 12, 5, 0)
    with pytest.raises(ScheduleError):
        parse_schedule("00:00:00")
