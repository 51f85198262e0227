"""The reminders table: due partitions read by the timer, each user's entries, and their races."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from proactive_bot.reminders.rows import EntryState, Owner, Reminder, due_row
from proactive_bot.reminders.store import ReminderStore
from proactive_bot.reminders.times import Recurrence
from tests.support.present import present

NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)
OWNER = Owner("msteams", "29:1user")


def reminder(due_at: datetime, text: str = "stretch", **extra) -> Reminder:
    return Reminder(
        channel_id="msteams",
        conversation_id="a:1conv",
        user_id="29:1user",
        text=text,
        due_at=due_at,
        zone="Europe/Berlin",
        created_at=NOW - timedelta(hours=1),
        **extra,
    )


@pytest.fixture
async def table(new_table):
    return await new_table()


@pytest.fixture
def store(table) -> ReminderStore:
    return ReminderStore(table)


async def sent(store: ReminderStore, r: Reminder, now: datetime = NOW) -> Reminder:
    """What a timer run does before the channel call: claim and mark the entry."""
    [due] = [d for d in (await store.due(now)).reminders if d.id == r.id]
    claimed = present(await store.claim(due, now))
    assert await store.mark_sending(claimed, now, claimed.next_due(now))
    return claimed


async def test_due_reads_only_what_is_due(store):
    for minutes in (-90, -1, 0):
        await store.add(reminder(NOW + timedelta(minutes=minutes), f"due {minutes}"))
    for days in (1, 7, 30):
        await store.add(reminder(NOW + timedelta(days=days), "future"))
    await store.add(reminder(NOW + timedelta(seconds=20), "later this minute"))

    batch = await store.due(NOW)

    assert sorted(r.text for r in batch.reminders) == ["due -1", "due -90", "due 0"]
    assert batch.read == 4  # the due ones and the one later in this minute; no user entries, no future


async def test_two_runs_claim_a_reminder_once(store):
    await store.add(reminder(NOW - timedelta(minutes=1)))
    run_a, run_b = await asyncio.gather(store.due(NOW), store.due(NOW))

    claims = await asyncio.gather(store.claim(run_a.reminders[0], NOW), store.claim(run_b.reminders[0], NOW))

    assert sum(c is not None for c in claims) == 1
    # A claimed reminder is invisible to the next run until its lease ends.
    assert (await store.due(NOW)).reminders == []
    assert len((await store.due(NOW + timedelta(minutes=3))).reminders) == 1


async def test_the_agenda_lists_pending_soonest_first_with_settings(store):
    await store.add(reminder(NOW + timedelta(days=2), "later"))
    await store.add(reminder(NOW + timedelta(hours=1), "sooner"))
    await store.set_zone(OWNER, "America/New_York")

    agenda = await store.agenda(OWNER)

    assert [e.text for e in agenda.pending] == ["sooner", "later"]
    assert agenda.zone == "America/New_York"
    assert (await store.agenda(Owner("msteams", "someone else"))).entries == []


async def test_a_one_off_goes_out_then_waits_for_an_answer(store):
    r = reminder(NOW - timedelta(minutes=1))
    await store.add(r)

    claimed = await sent(store, r)
    await store.finish(claimed, None)

    [entry] = (await store.agenda(OWNER)).entries
    assert (entry.state, entry.occurrence, entry.sent_at, entry.awaiting_answer) == (EntryState.SENT, 1, NOW, True)
    assert (await store.due(NOW + timedelta(days=1))).reminders == []
    assert await store.answer(OWNER, entry, done=True)
    [entry] = (await store.agenda(OWNER)).entries
    assert (entry.state, entry.awaiting_answer) == (EntryState.DONE, False)


async def test_a_recurring_reminder_moves_to_its_next_occurrence(store):
    daily = reminder(NOW - timedelta(minutes=1), recurrence=Recurrence.decode("0,1,2,3,4,5,6@10:59"))
    await store.add(daily)

    claimed = await sent(store, daily)
    await store.finish(claimed, claimed.next_due(NOW))

    tomorrow = NOW + timedelta(days=1)
    [following] = (await store.due(tomorrow)).reminders
    assert following.id == daily.id and following.occurrence == 1
    assert following.due_at == datetime(2026, 11, 27, 9, 59, tzinfo=UTC)  # 10:59 in Berlin
    [entry] = (await store.agenda(OWNER)).pending
    assert (entry.due_at, entry.occurrence, entry.state) == (following.due_at, 1, EntryState.SCHEDULED)


async def test_a_cancelled_reminder_is_not_sent_even_if_its_due_row_survived(store, table):
    r = reminder(NOW - timedelta(minutes=1))
    await store.add(r)
    [entry] = (await store.agenda(OWNER)).entries
    [due] = (await store.due(NOW)).reminders

    assert await store.cancel(OWNER, entry)
    await table.create_entity(due_row(due))  # as if a crash or a race had left it behind

    [orphan] = (await store.due(NOW)).reminders
    claimed = await store.claim(orphan, NOW)
    assert await store.mark_sending(claimed, NOW, None) is False
    await store.drop(claimed)
    assert (await store.due(NOW)).reminders == []
    assert (await store.agenda(OWNER)).entries == []


async def test_cancel_loses_to_a_run_that_moved_the_entry_on(store):
    daily = reminder(NOW - timedelta(minutes=1), recurrence=Recurrence.decode("0,1,2,3,4,5,6@10:59"))
    await store.add(daily)
    [stale] = (await store.agenda(OWNER)).entries

    await sent(store, daily)

    assert await store.cancel(OWNER, stale) is False  # the caller reads again and retries
    [fresh] = (await store.agenda(OWNER)).entries
    assert await store.cancel(OWNER, fresh)


async def test_snooze_brings_a_one_off_back_once(store):
    r = reminder(NOW - timedelta(minutes=1))
    await store.add(r)
    await store.finish(await sent(store, r), None)
    [entry] = (await store.agenda(OWNER)).entries
    later = NOW + timedelta(minutes=10)

    first, second = await asyncio.gather(store.snooze(OWNER, entry, later), store.snooze(OWNER, entry, later))

    assert sorted([first, second]) == [False, True]  # a double click snoozes once
    [entry] = (await store.agenda(OWNER)).pending
    assert (entry.due_at, entry.awaiting_answer) == (later, False)
    assert [d.id for d in (await store.due(later)).reminders] == [r.id]


async def test_retry_holds_a_reminder_back_and_give_up_marks_it_failed(store):
    r = reminder(NOW - timedelta(minutes=1))
    await store.add(r)
    claimed = await sent(store, r)

    await store.retry_later(claimed, NOW + timedelta(minutes=2))

    assert (await store.due(NOW + timedelta(minutes=1))).reminders == []
    [again] = (await store.due(NOW + timedelta(minutes=2))).reminders
    assert again.attempts == 1
    await store.give_up(await store.claim(again, NOW + timedelta(minutes=2)), "503 ServiceError")
    assert (await store.due(NOW + timedelta(days=1))).reminders == []
    [entry] = (await store.agenda(OWNER)).entries
    assert entry.state == EntryState.FAILED


async def test_prune_forgets_old_finished_entries_only(store):
    old = reminder(NOW - timedelta(days=40), "old")
    await store.add(old)
    await store.finish(await sent(store, old, old.due_at), None)
    await store.add(reminder(NOW + timedelta(days=1), "upcoming"))

    await store.prune(await store.agenda(OWNER), NOW)

    assert [e.text for e in (await store.agenda(OWNER)).entries] == ["upcoming"]


def test_a_missed_recurrence_resumes_after_now_not_in_the_past():
    daily = replace(reminder(NOW - timedelta(days=3)), recurrence=Recurrence.decode("0,1,2,3,4,5,6@09:00"))

    assert daily.next_due(NOW) == datetime(2026, 11, 27, 8, tzinfo=UTC)
