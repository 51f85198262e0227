"""Reminders: parsing what users say, and claiming due reminders exactly once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from proactive_bot.reminders import (
    MAX_TEXT,
    Reminder,
    ReminderParseError,
    ReminderStore,
    parse_reminder,
)

NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("said", "after", "what"),
    [
        ("remind me in 10 minutes to stretch", timedelta(minutes=10), "stretch"),
        ("Remind me in 1 minute to drink water", timedelta(minutes=1), "drink water"),
        ("remind me in 2 hours to call Anna", timedelta(hours=2), "call Anna"),
        ("remind me in 5 min to check the oven", timedelta(minutes=5), "check the oven"),
    ],
)
def test_relative_reminders(said, after, what):
    request = parse_reminder(said, NOW)
    assert (request.due_at - NOW, request.text) == (after, what)


@pytest.mark.parametrize(
    "said", ["remind me tomorrow-ish to nap", "remind me in 0 minutes to x", "remind me in ten minutes to x"]
)
def test_unusable_reminders_get_a_reason(said):
    with pytest.raises(ReminderParseError):
        parse_reminder(said, NOW)


def test_overlong_text_is_refused():
    with pytest.raises(ReminderParseError, match=str(MAX_TEXT)):
        parse_reminder("remind me in 1 minute to " + "x" * (MAX_TEXT + 1), NOW)


def reminder(due_at: datetime, text: str = "stretch") -> Reminder:
    return Reminder(channel_id="msteams", conversation_id="a:1conv", user_id="29:1user", text=text, due_at=due_at)


async def test_due_reads_only_what_is_due(new_table):
    store = ReminderStore(await new_table())
    for minutes in (-90, -1, 0):
        await store.add(reminder(NOW + timedelta(minutes=minutes), f"due {minutes}"))
    for days in (1, 7, 30):
        await store.add(reminder(NOW + timedelta(days=days), "future"))
    await store.add(reminder(NOW + timedelta(seconds=20), "later this minute"))

    due = await store.due(NOW)

    assert sorted(r.text for r in due) == ["due -1", "due -90", "due 0"]


async def test_two_runs_claim_a_reminder_once(new_table):
    store = ReminderStore(await new_table())
    await store.add(reminder(NOW - timedelta(minutes=1)))
    run_a, run_b = await asyncio.gather(store.due(NOW), store.due(NOW))

    claims = await asyncio.gather(store.claim(run_a[0], NOW), store.claim(run_b[0], NOW))

    assert sum(c is not None for c in claims) == 1
    # A claimed reminder is invisible to the next run until its lease ends.
    assert await store.due(NOW) == []


async def test_failed_send_backs_off_then_gives_up(new_table):
    store = ReminderStore(await new_table())
    await store.add(reminder(NOW - timedelta(minutes=1)))
    now = NOW
    for attempt in range(1, 5):
        [due] = await store.due(now)
        claimed = await store.claim(due, now)
        assert await store.retry_later(claimed, now) is True
        assert await store.due(now) == []  # backing off
        now += timedelta(minutes=2**attempt)
    [due] = await store.due(now)
    assert due.attempts == 4
    assert await store.retry_later(await store.claim(due, now), now) is False
    assert await store.due(now + timedelta(days=1)) == []
