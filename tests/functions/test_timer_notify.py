"""timer_notify/: sends what is due, exactly once, late if need be, and retries what failed."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from proactive_bot import app as app_entry
from proactive_bot.delivery.retries import REMINDERS
from proactive_bot.reminders import timer as reminder_timer
from proactive_bot.reminders.rows import EntryState, Owner, Reminder, due_row
from proactive_bot.reminders.times import Recurrence
from tests import activities
from tests.conftest import clock_at
from tests.functions import invoke

# Thursday 26 November 2026, 11:00:30 in Berlin.
NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)


at = clock_at(NOW)


async def known_conversation(channel) -> dict:
    """A user who talked to the bot, so their address is stored."""
    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    channel.clear()
    return message


async def app_run() -> reminder_timer.RunSummary:
    """A timer run through the app's entry point (the function returns nothing to look at)."""
    return await app_entry.send_due_reminders()


def statuses(channel, conversation_id: str) -> list[int]:
    return [r.status for r in channel.received if r.conversation_id == conversation_id]


def reminder_for(message: dict, text: str, due_at: datetime, **extra) -> Reminder:
    return Reminder(
        channel_id=message["channelId"],
        conversation_id=message["conversation"]["id"],
        user_id=message["from"]["id"],
        text=text,
        due_at=due_at,
        zone="Europe/Berlin",
        created_at=due_at - timedelta(hours=1),
        **extra,
    )


async def test_due_reminders_are_sent_once_with_their_buttons_and_future_ones_wait(app, channel, at):
    message = await known_conversation(channel)
    conversation_id = message["conversation"]["id"]
    await app.reminders.add(reminder_for(message, "stretch", NOW - timedelta(seconds=30)))
    await app.reminders.add(reminder_for(message, "tomorrow's thing", NOW + timedelta(days=1)))

    await invoke.timer("timer_notify")
    await invoke.timer("timer_notify")  # a second run finds nothing left to send

    [sent] = channel.activities(conversation_id)
    assert sent["text"] == "⏰ Reminder: stretch"
    assert [a["title"] for a in sent["attachments"][0]["content"]["actions"]] == ["Done", "Snooze 10 min", "Snooze 1 h"]
    assert sent["recipient"]["id"] == message["from"]["id"]


async def test_two_overlapping_runs_send_each_reminder_exactly_once(app, channel, at, caplog):
    conversations = [await known_conversation(channel) for _ in range(4)]
    for n in range(40):
        message = conversations[n % 4]
        await app.reminders.add(reminder_for(message, f"r{n}", NOW - timedelta(minutes=n % 3)))

    with caplog.at_level(logging.INFO, logger="proactive_bot.app"):
        await asyncio.gather(invoke.timer("timer_notify"), invoke.timer("timer_notify"))

    texts = [text for m in conversations for text in channel.texts(m["conversation"]["id"])]
    assert sorted(texts) == sorted(f"⏰ Reminder: r{n}" for n in range(40))
    runs = [r.args[0] for r in caplog.records if r.msg == "timer run: %s"]
    assert len(runs) == 2 and sum(run.skipped for run in runs) > 0  # they really did compete


async def test_a_run_out_of_time_leaves_the_rest_to_the_next_run(app, channel, at, monkeypatch):
    message = await known_conversation(channel)
    for n in range(5):
        await app.reminders.add(reminder_for(message, f"r{n}", NOW - timedelta(minutes=1)))
    monkeypatch.setattr(reminder_timer, "PAGE_SIZE", 2)
    monkeypatch.setattr(reminder_timer, "RUN_BUDGET", timedelta(0))  # out of time after a page

    first = await app_run()
    second = await app_run()
    third = await app_run()

    assert [(r.sent, r.deferred) for r in (first, second, third)] == [(2, True), (2, True), (1, False)]
    assert len(channel.texts(message["conversation"]["id"])) == 5


async def test_missed_reminders_go_out_after_an_outage_marked_late(app, channel, at):
    message = await known_conversation(channel)
    nine = datetime(2026, 11, 26, 8, tzinfo=UTC)  # 09:00 in Berlin
    await app.reminders.add(reminder_for(message, "stand up", nine, recurrence=Recurrence.decode("0,1,2,3,4@09:00")))
    await app.reminders.add(reminder_for(message, "call Anna", nine + timedelta(minutes=30)))

    at(datetime(2026, 11, 26, 11, tzinfo=UTC))  # the timer was down from 09:00 to 12:00
    await invoke.timer("timer_notify")

    assert sorted(channel.texts(message["conversation"]["id"])) == [
        "⏰ Reminder: call Anna (was due today at 09:30)",
        "⏰ Reminder: stand up (was due today at 09:00)",
    ]
    [series] = (await app.reminders.agenda(Owner("msteams", message["from"]["id"]))).pending
    assert series.due_at == datetime(2026, 11, 27, 8, tzinfo=UTC)  # tomorrow 09:00, once


async def test_a_failed_send_is_retried_with_backoff_then_marked_failed(app, channel, at, caplog):
    message = await known_conversation(channel)
    conversation_id = message["conversation"]["id"]
    stretch = reminder_for(message, "stretch", NOW - timedelta(seconds=30))
    await app.reminders.add(stretch)
    channel.fail(conversation_id, [503] * REMINDERS.max_attempts)

    now = NOW
    for attempt in range(1, REMINDERS.max_attempts + 1):
        await invoke.timer("timer_notify")
        await invoke.timer("timer_notify")  # backing off: nothing is tried
        now += timedelta(minutes=2**attempt)
        at(now)
    with caplog.at_level(logging.ERROR):
        await invoke.timer("timer_notify")

    assert statuses(channel, conversation_id) == [503] * REMINDERS.max_attempts
    [entry] = (await app.reminders.agenda(stretch.owner)).entries
    assert entry.state is EntryState.FAILED
    assert f"attempt {REMINDERS.max_attempts} failed" in caplog.text and "giving up" in caplog.text
    assert stretch.id not in [r.id for r in (await app.reminders.due(now + timedelta(days=1))).reminders]


async def test_throttling_honours_retry_after(app, channel, at):
    message = await known_conversation(channel)
    conversation_id = message["conversation"]["id"]
    await app.reminders.add(reminder_for(message, "stretch", NOW - timedelta(seconds=30)))
    channel.fail(conversation_id, [429], retry_after=600)

    await invoke.timer("timer_notify")
    at(NOW + timedelta(minutes=9))
    await invoke.timer("timer_notify")
    at(NOW + timedelta(minutes=10))
    await invoke.timer("timer_notify")

    assert statuses(channel, conversation_id) == [429, 200]


async def test_reminder_for_a_blocked_user_is_dropped_and_the_address_marked_gone(app, channel, at):
    message = await known_conversation(channel)
    conversation_id = message["conversation"]["id"]
    await app.reminders.add(reminder_for(message, "stretch", NOW - timedelta(minutes=1)))
    channel.block(conversation_id, 403)

    await invoke.timer("timer_notify")
    channel.unblock(conversation_id)
    await invoke.timer("timer_notify")

    assert channel.delivered(conversation_id) == []
    stored = await app.references.get("msteams", conversation_id)
    assert not stored.active and stored.inactive_reason.startswith("403")


async def test_a_send_that_can_never_work_is_not_retried(app, channel, at):
    message = await known_conversation(channel)
    conversation_id = message["conversation"]["id"]
    stretch = reminder_for(message, "stretch", NOW - timedelta(seconds=30))
    await app.reminders.add(stretch)
    channel.fail(conversation_id, [400])  # the channel refuses the activity itself

    await invoke.timer("timer_notify")
    at(NOW + timedelta(hours=1))
    await invoke.timer("timer_notify")

    assert statuses(channel, conversation_id) == [400]
    [entry] = (await app.reminders.agenda(stretch.owner)).entries
    assert entry.state is EntryState.FAILED


@pytest.mark.parametrize(
    "tamper",
    [
        lambda row: row.pop("text"),
        lambda row: row.update(dueAt="yesterday"),
        lambda row: row.update(notBefore="soon"),
        lambda row: row.update(recurrence="9@09:00"),  # no such weekday: no next occurrence
        lambda row: row.update(recurrence="every day"),
        lambda row: row.update(occurrence="many"),
    ],
    ids=["no-text", "dueAt-string", "notBefore-string", "weekday-9", "recurrence-prose", "occurrence-string"],
)
async def test_a_tampered_due_row_is_logged_and_left_and_the_others_still_go_out(
    app, channel, at, storage_connection, caplog, tamper
):
    message = await known_conversation(channel)
    conversation_id = message["conversation"]["id"]
    await app.reminders.add(reminder_for(message, "stretch", NOW - timedelta(seconds=30)))
    tampered = reminder_for(message, "tampered", NOW - timedelta(seconds=30))
    await app.reminders.add(tampered)
    row = due_row(tampered)
    tamper(row)
    async with TableClient.from_connection_string(storage_connection, app.settings.reminders_table) as table:
        await table.upsert_entity(row, mode=UpdateMode.REPLACE)
        try:
            with caplog.at_level(logging.ERROR, logger="proactive_bot"):
                await invoke.timer("timer_notify")
            left = await table.get_entity(row["PartitionKey"], row["RowKey"])
        finally:
            await table.delete_entity(row["PartitionKey"], row["RowKey"])

    assert [a["text"] for a in channel.activities(conversation_id)] == ["⏰ Reminder: stretch"]
    assert f"{row['RowKey']!r}" in caplog.text and "cannot be read" in caplog.text
    assert left.metadata["etag"]  # still there, for a person to look at
