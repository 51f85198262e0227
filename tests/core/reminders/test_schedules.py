"""Reading "remind me ..." in the user's zone, across daylight-saving changes, and recurrences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proactive_bot.reminders.schedules import MAX_TEXT, ScheduleError, parse_duration, parse_request
from proactive_bot.reminders.times import Recurrence, describe_moment, zone_named
from tests.support.present import present

BERLIN = present(zone_named("Europe/Berlin"))
NEW_YORK = present(zone_named("America/New_York"))
# Thursday 26 November 2026, 11:00:30 in Berlin.
NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("said", "text", "local_due", "repeats"),
    [
        ("remind me in 10 minutes to stretch", "stretch", "2026-11-26 11:10:30", None),
        ("Remind me in 1 minute to drink water", "drink water", "2026-11-26 11:01:30", None),
        ("remind me in 2 hours to call Anna", "call Anna", "2026-11-26 13:00:30", None),
        ("remind me in an hour and 30 min to leave", "leave", "2026-11-26 12:30:30", None),
        ("remind me to stretch in 1h30m", "stretch", "2026-11-26 12:30:30", None),
        ("remind me at 5pm to call Anna", "call Anna", "2026-11-26 17:00:00", None),
        ("remind me at 10:30 to check the oven", "check the oven", "2026-11-27 10:30:00", None),  # gone by today
        ("remind me at noon to eat", "eat", "2026-11-26 12:00:00", None),
        ("remind me tomorrow at 9:00 to send the report", "send the report", "2026-11-27 09:00:00", None),
        ("remind me at 9:00 tomorrow to send the report", "send the report", "2026-11-27 09:00:00", None),
        ("remind me tomorrow to water the plants", "water the plants", "2026-11-27 09:00:00", None),
        ("remind me on Friday at 14:30 to book the room", "book the room", "2026-11-27 14:30:00", None),
        ("remind me on thursday at 10 to ring Bob", "ring Bob", "2026-12-03 10:00:00", None),  # today's is gone
        ("remind me on 24 December to buy a tree", "buy a tree", "2026-12-24 09:00:00", None),
        ("remind me on Dec 24th at 6pm to light candles", "light candles", "2026-12-24 18:00:00", None),
        ("remind me on 2027-01-15 at 8:15 to renew", "renew", "2027-01-15 08:15:00", None),
        ("remind me to meet Anna at the station at 5:30pm", "meet Anna at the station", "2026-11-26 17:30:00", None),
        ("remind me every weekday at 9am to stand up", "stand up", "2026-11-27 09:00:00", "every weekday at 09:00"),
        ("remind me every day at 18:00 to log hours", "log hours", "2026-11-26 18:00:00", "every day at 18:00"),
        ("remind me daily at 7:45 to take pills", "take pills", "2026-11-27 07:45:00", "every day at 07:45"),
        (
            "remind me every Monday and Thursday at 8 to run",
            "run",
            "2026-11-30 08:00:00",
            "every Monday and Thursday at 08:00",
        ),
        (
            "remind me to water plants every week on sunday",
            "water plants",
            "2026-11-29 09:00:00",
            "every Sunday at 09:00",
        ),
    ],
)
def test_what_users_say(said, text, local_due, repeats):
    request = parse_request(said, NOW, BERLIN)

    assert request.text == text
    assert request.due_at.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S") == local_due
    assert (request.recurrence.describe() if request.recurrence else None) == repeats


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("remind me sometime to nap", "did not understand when"),
        ("remind me in ten minutes to x", "did not understand when"),
        ("remind me in 10 minutes stretch", "did not understand when"),
        ("remind me in 10 minutes to ", "What should I remind you of"),
        ("remind me in 0 minutes to x", "at least a minute"),
        ("remind me today at 9:00 to x", "That time has passed: today at 09:00 (it is now 11:00 in Europe/Berlin)"),
        ("remind me on 2025-06-01 to x", "That time has passed"),
        ("remind me at 25:00 to x", "not a time of day"),
        ("remind me at 13pm to x", "not a time of day"),
        ("remind me on 30 February to x", "There is no 30 February"),
        ("remind me in 60 weeks to x", "too far ahead"),
        ("remind me on 2028-01-01 to x", "too far ahead"),
    ],
)
def test_unusable_requests_say_why(said, reason):
    with pytest.raises(ScheduleError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_request(said, NOW, BERLIN)


@pytest.mark.parametrize(
    ("said", "reads"),
    [
        ("remind me yesterday at 5pm to buy milk", "yesterday at 17:00"),
        ("remind me to buy milk yesterday at 5pm", "yesterday at 17:00"),
        ("remind me at 5pm yesterday to buy milk", "yesterday at 17:00"),
        ("remind me yesterday to buy milk", "yesterday at 09:00"),
        ("remind me last friday at 9 to x", "on Fri 20 Nov at 09:00"),
        ("remind me last monday to x", "on Mon 23 Nov at 09:00"),
        ("remind me last Thursday at 18:00 to x", "on Thu 19 Nov at 18:00"),  # said on a Thursday: a week ago
        ("remind me last wednesday at 8pm to x", "yesterday at 20:00"),
        ("remind me 2 hours ago to x", "today at 09:00"),
        ("remind me an hour ago to x", "today at 10:00"),
        ("remind me to call Anna an hour ago", "today at 10:00"),
        ("remind me 3 days ago to x", "on Mon 23 Nov at 11:00"),
        ("remind me 99999 weeks ago to x", "more than a year ago"),
    ],
)
def test_a_time_in_the_past_is_read_back(said, reads):
    with pytest.raises(ScheduleError) as refused:
        parse_request(said, NOW, BERLIN)
    assert str(refused.value) == f"That time is in the past: {reads} (it is now 11:00 in Europe/Berlin)."


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("remind me 0 minutes ago to x", "That is now. Give me at least a minute."),
        ("remind me yesterday at 25:00 to x", "That is not a time of day I know."),
        ("remind me in 2 hours ago to x", "I did not understand when."),
        ("remind me last at 5pm to x", "I did not understand when."),
    ],
)
def test_past_phrases_that_are_not_a_time(said, reason):
    with pytest.raises(ScheduleError) as refused:
        parse_request(said, NOW, BERLIN)
    assert str(refused.value).startswith(reason)


def test_text_longer_than_the_limit_is_refused_with_the_limit():
    parse_request("remind me in 1 minute to " + "x" * MAX_TEXT, NOW, BERLIN)
    with pytest.raises(ScheduleError, match=f"{MAX_TEXT + 1} characters long; the limit is {MAX_TEXT}"):
        parse_request("remind me in 1 minute to " + "x" * (MAX_TEXT + 1), NOW, BERLIN)
    with pytest.raises(ScheduleError, match=f"the limit is {MAX_TEXT}"):  # refused before any search
        parse_request("remind me to " + "to at in " * 50_000, NOW, BERLIN)


@pytest.mark.parametrize(
    ("zone", "now", "said", "due"),
    [
        # Europe/Berlin springs forward on Sunday 29 March 2026 (02:00 CET -> 03:00 CEST).
        (BERLIN, utc(2026, 3, 28, 10), "remind me tomorrow at 9:00 to x", utc(2026, 3, 29, 7)),
        (BERLIN, utc(2026, 3, 28, 10), "remind me in 24 hours to x", utc(2026, 3, 29, 10)),
        (BERLIN, utc(2026, 3, 28, 22), "remind me at 2:30 to x", utc(2026, 3, 29, 1, 30)),  # no 02:30: 03:30 CEST
        # ... and falls back on Sunday 25 October 2026 (03:00 CEST -> 02:00 CET).
        (BERLIN, utc(2026, 10, 24, 10), "remind me tomorrow at 9:00 to x", utc(2026, 10, 25, 8)),
        (BERLIN, utc(2026, 10, 24, 20), "remind me at 2:30 to x", utc(2026, 10, 25, 0, 30)),  # the first 02:30
        # America/New_York springs forward on Sunday 8 March 2026 and falls back on 1 November.
        (NEW_YORK, utc(2026, 3, 7, 15), "remind me tomorrow at 9am to x", utc(2026, 3, 8, 13)),
        (NEW_YORK, utc(2026, 3, 7, 15), "remind me on Sunday at 2:30am to x", utc(2026, 3, 8, 7, 30)),
        (NEW_YORK, utc(2026, 10, 31, 15), "remind me tomorrow at 9am to x", utc(2026, 11, 1, 14)),
        (NEW_YORK, utc(2026, 10, 31, 15), "remind me every day at 9am to x", utc(2026, 11, 1, 14)),
    ],
)
def test_daylight_saving_changes(zone, now, said, due):
    assert parse_request(said, now, zone).due_at == due


@pytest.mark.parametrize(
    ("zone", "recurrence", "start", "occurrences"),
    [
        (
            BERLIN,
            "0,1,2,3,4,5,6@09:00",
            utc(2026, 3, 27, 8, 30),
            [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)],
        ),
        (BERLIN, "0,1,2,3,4,5,6@09:00", utc(2026, 10, 24, 8, 30), [utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]),
        (
            NEW_YORK,
            "0,1,2,3,4@09:00",
            utc(2026, 3, 6, 14),  # Friday, on the dot: the next is Monday
            [utc(2026, 3, 9, 13), utc(2026, 3, 10, 13)],
        ),
        (NEW_YORK, "6@02:30", utc(2026, 3, 1, 12), [utc(2026, 3, 8, 7, 30), utc(2026, 3, 15, 6, 30)]),
    ],
)
def test_recurrences_keep_their_local_time(zone, recurrence, start, occurrences):
    rule = Recurrence.decode(recurrence)
    found, moment = [], start
    for _ in occurrences:
        moment = rule.next_after(moment, zone)
        found.append(moment)
    assert found == occurrences
    assert Recurrence.decode(rule.encode()) == rule


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("10 minutes", timedelta(minutes=10)),
        ("1h", timedelta(hours=1)),
        ("an hour", timedelta(hours=1)),
        ("1 hour and 30 min", timedelta(minutes=90)),
        ("2 days", timedelta(days=2)),
        ("10 monkeys", None),
        ("and", None),
        ("1m " * 5000 + "x", None),
    ],  # a near miss fails fast (no exponential backtracking)
)
def test_durations(text, duration):
    assert parse_duration(text) == duration


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("UTC", "UTC"),
        ("Mars/Olympus", None),
        ("../etc/passwd", None),
        ("/etc/localtime", None),
        ("", None),
        (None, None),
    ],
)
def test_zone_names(name, key):
    zone = zone_named(name)
    assert (zone.key if zone else None) == key


@pytest.mark.parametrize(
    ("moment", "reads"),
    [
        (utc(2026, 11, 26, 16), "today at 17:00"),
        (utc(2026, 11, 27, 8), "tomorrow at 09:00"),
        (utc(2026, 11, 25, 8), "yesterday at 09:00"),
        (utc(2026, 11, 28, 13, 30), "on Sat 28 Nov at 14:30"),
        (utc(2027, 1, 2, 8), "on Sat 2 Jan 2027 at 09:00"),
    ],
)
def test_moments_read_in_the_users_zone(moment, reads):
    assert describe_moment(moment, BERLIN, NOW) == reads
