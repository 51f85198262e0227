"""The reminder commands, as a user types them, against a real table."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from proactive_bot import clock
from proactive_bot.reminders.dialogs import ALREADY_ANSWERED, Asker, ReminderDialogs
from proactive_bot.reminders.rows import Owner, Reminder
from proactive_bot.reminders.store import MAX_PENDING, ReminderStore
from tests.support.present import present

# Thursday 26 November 2026, 11:00:30 in Berlin.
NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)
ASKER = Asker("msteams", "29:1user", "a:1conv", zone_hint="Europe/Berlin")


@pytest.fixture
async def store(new_table) -> ReminderStore:
    return ReminderStore(await new_table())


@pytest.fixture
def dialogs(store, monkeypatch) -> ReminderDialogs:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    return ReminderDialogs(store)


async def say(dialogs: ReminderDialogs, text: str, asker: Asker = ASKER, value=None) -> str:
    """The bot's reply to `text` (a request about reminders: there is one)."""
    return present(await dialogs.handle(asker, text, value))


async def deliver(store: ReminderStore, now: datetime) -> list:
    """Claim and mark what is due at `now`, as the timer does around a successful send."""
    delivered = []
    for due in (await store.due(now)).reminders:
        claimed = present(await store.claim(due, now))
        next_due = claimed.next_due(now)
        assert await store.mark_sending(claimed, now, next_due)
        await store.finish(claimed, next_due)
        delivered.append(claimed)
    return delivered


async def test_confirmation_names_the_absolute_time_and_zone(dialogs):
    assert await say(dialogs, "remind me tomorrow at 9:00 to send the report") == (
        "OK, I'll remind you tomorrow at 09:00 (Europe/Berlin) to send the report."
    )
    assert await say(dialogs, "remind me every weekday at 9am to stand up") == (
        "OK, I'll remind you every weekday at 09:00 (Europe/Berlin) to stand up. The first one is tomorrow at 09:00."
    )


async def test_without_a_zone_utc_is_assumed_and_said(dialogs):
    reply = await say(dialogs, "remind me at 17:00 to leave", Asker("webchat", "dl_1", "c1"))

    assert reply.startswith("OK, I'll remind you today at 17:00 (UTC) to leave.")
    assert "I assumed your time zone is UTC; tell me yours with `timezone Europe/Berlin`." in reply


async def test_a_zone_the_user_sets_wins_over_the_channels(dialogs):
    assert (await say(dialogs, "timezone america/new_york")).startswith(
        "OK, your time zone is America/New_York (it is 05:00 there)."
    )
    assert "(America/New_York)" in await say(dialogs, "remind me at 9am to call home")
    assert await say(dialogs, "timezone") == (
        "Your time zone is America/New_York, as you set it. Change it with `timezone Europe/Berlin`."
    )
    assert "don't know the time zone `Mars/Base`" in await say(dialogs, "timezone Mars/Base")


async def test_list_then_cancel_by_the_number_shown(dialogs, store):
    await say(dialogs, "remind me on Friday at 14:30 to book the room")
    await say(dialogs, "remind me in 10 minutes to stretch")
    await say(dialogs, "remind me every day at 18:00 to log hours")

    listing = await say(dialogs, "reminders")

    assert listing == (
        "Your reminders (times in Europe/Berlin):\n\n"
        "1. today at 11:10: stretch\n"
        "2. today at 18:00, then every day at 18:00: log hours\n"
        "3. tomorrow at 14:30: book the room\n\n"
        "Say `cancel 2` to cancel one, or `cancel all`."
    )
    # Reminder 1 goes off before the user cancels "2": the numbers they saw still hold.
    await deliver(store, NOW + timedelta(minutes=11))
    assert await say(dialogs, "cancel 2") == (
        "Cancelled reminder 2: log hours (today at 18:00, then every day at 18:00)."
    )
    assert "already gone off or been cancelled" in await say(dialogs, "cancel 1")
    assert "There is no reminder 7" in await say(dialogs, "cancel 7")
    assert await say(dialogs, "cancel all") == "Cancelled 1 reminder."
    assert (await say(dialogs, "list reminders")).startswith("You have no reminders.")
    assert (await store.due(NOW + timedelta(days=3))).reminders == []


async def test_a_list_of_one_offers_only_the_number_shown(dialogs):
    await say(dialogs, "remind me in 10 minutes to stretch")

    assert await say(dialogs, "reminders") == (
        "Your reminders (times in Europe/Berlin):\n\n1. today at 11:10: stretch\n\nSay `cancel 1` to cancel it."
    )
    assert await say(dialogs, "cancel 1") == "Cancelled reminder 1: stretch (today at 11:10)."


async def test_a_time_in_the_past_is_refused_and_read_back(dialogs, store):
    assert await say(dialogs, "remind me yesterday at 5pm to buy milk") == (
        "That time is in the past: yesterday at 17:00 (it is now 11:00 in Europe/Berlin)."
    )
    assert (await store.agenda(ASKER.owner)).pending == []


async def test_at_most_a_hundred_pending_reminders(dialogs, store):
    await asyncio.gather(*(store.add(_reminder(NOW + timedelta(hours=1), f"r{n}")) for n in range(MAX_PENDING)))

    assert "You have 100 pending reminders, the most I keep." in await say(dialogs, "remind me in 1 hour to x")
    assert "did not understand when" in await say(dialogs, "remind me whenever to x")  # the parse error comes first


async def test_done_typed_after_an_unrelated_message_goes_to_the_last_delivered(dialogs, store):
    await say(dialogs, "remind me in 5 minutes to stretch")
    await say(dialogs, "remind me in 10 minutes to drink water")
    await deliver(store, NOW + timedelta(minutes=6))
    await deliver(store, NOW + timedelta(minutes=11))

    assert await dialogs.handle(ASKER, "what's the weather", None) is None  # not ours: the bot's hint
    assert await say(dialogs, "done") == "✅ Done: drink water."
    assert await say(dialogs, "done") == "✅ Done: stretch."
    assert await say(dialogs, "done") == "There is no reminder waiting for an answer."


async def test_a_clicked_snooze_finds_its_reminder_and_a_second_click_is_stale(dialogs, store):
    await say(dialogs, "remind me in 5 minutes to stretch")
    [sent] = await deliver(store, NOW + timedelta(minutes=6))
    click = {"reminderAction": "snooze", "reminderId": sent.id, "occurrence": 1, "minutes": 60}

    assert await say(dialogs, "", value=click) == "😴 Snoozed: I'll remind you again today at 12:00 to stretch."
    assert await say(dialogs, "", value=click) == ALREADY_ANSWERED
    [again] = await deliver(store, NOW + timedelta(minutes=61))
    assert again.id == sent.id and again.occurrence == 1
    assert await say(dialogs, "", value={**click, "reminderAction": "done"}) == ALREADY_ANSWERED  # old card
    assert await say(dialogs, "", value={**click, "reminderAction": "done", "occurrence": 2}) == "✅ Done: stretch."


async def test_snoozing_a_recurring_reminder_leaves_the_series_alone(dialogs, store):
    await say(dialogs, "remind me every day at 11:05 to stand up")
    [_sent] = await deliver(store, NOW + timedelta(minutes=5))

    assert (await say(dialogs, "snooze 1h")).startswith("😴 Snoozed: I'll remind you again today at 12:00")

    pending = (await store.agenda(ASKER.owner)).pending
    assert [(e.text, e.recurrence is not None) for e in pending] == [("stand up", False), ("stand up", True)]
    assert pending[1].due_at == datetime(2026, 11, 27, 10, 5, tzinfo=UTC)


async def test_someone_elses_reminder_cannot_be_answered(dialogs, store):
    await say(dialogs, "remind me in 5 minutes to stretch")
    [sent] = await deliver(store, NOW + timedelta(minutes=6))
    colleague = Asker("msteams", "29:1colleague", "a:1conv")

    reply = await say(dialogs, "", colleague, value={"reminderAction": "done", "reminderId": sent.id, "occurrence": 1})

    assert reply == "I can't find that reminder among yours; it may have been cancelled."


def _reminder(due_at: datetime, text: str) -> Reminder:
    return Reminder(
        channel_id=ASKER.channel_id,
        conversation_id=ASKER.conversation_id,
        user_id=ASKER.user_id,
        text=text,
        due_at=due_at,
        created_at=NOW,
    )


def test_owner_partition_keys_are_table_safe():
    assert Owner("msteams", "29:1a/b#c").partition == "user|msteams|29:1a%2Fb%23c"
