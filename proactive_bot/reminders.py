"""Reminders: what users ask the bot to tell them later, and how a timer run claims the due ones.

Table layout (setting `RemindersTable`): pending reminders live in partitions named for the UTC
minute they are due, `due|YYYYMMDDHHMM`. A timer run reads the partitions up to "now" and
nothing later, so its cost follows what is due, not the size of the future backlog. A sent
reminder leaves its partition, so what remains there is exactly what is still owed (including
reminders missed during downtime).

Claiming uses the row's ETag: of two overlapping timer runs, only one wins the conditional update
and sends; the other gets 412 and skips the reminder.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from .delivery import Delivery, Outcome, message
from .references import ReferenceStore

log = logging.getLogger(__name__)

MAX_TEXT = 1000
# How long a claim keeps other runs away; a run that dies mid-send leaves the reminder to be
# picked up again after this.
CLAIM_LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 5
_DUE = "due|"


@dataclass(frozen=True)
class Reminder:
    channel_id: str
    conversation_id: str
    user_id: str
    text: str
    due_at: datetime
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    attempts: int = 0
    not_before: datetime | None = None  # a claim's lease end or a retry's backoff
    etag: str = ""  # of the row this was read from; what a claim is conditional on

    @property
    def partition(self) -> str:
        return _partition_for(self.due_at)


def _partition_for(moment: datetime) -> str:
    return _DUE + moment.astimezone(timezone.utc).strftime("%Y%m%d%H%M")


class ReminderStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def add(self, reminder: Reminder) -> None:
        await self._table.create_entity(_to_entity(reminder))

    async def due(self, now: datetime) -> list[Reminder]:
        """Reminders due at `now` or earlier that no other run holds; reads only due partitions."""
        query = "PartitionKey ge @lo and PartitionKey le @hi"
        params = {"lo": _DUE, "hi": _partition_for(now)}
        found = []
        async for entity in self._table.query_entities(query, parameters=params):
            reminder = _from_entity(entity)
            if reminder.due_at <= now and (reminder.not_before is None or reminder.not_before <= now):
                found.append(reminder)
        return found

    async def claim(self, reminder: Reminder, now: datetime) -> Reminder | None:
        """Take the reminder for this run, or None if another run got there first."""
        claimed = replace(reminder, not_before=now + CLAIM_LEASE)
        try:
            metadata = await self._table.update_entity(
                _to_entity(claimed),
                mode=UpdateMode.REPLACE,
                etag=reminder.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return replace(claimed, etag=metadata["etag"])

    async def complete(self, reminder: Reminder) -> None:
        """The reminder was sent: it leaves the due partitions."""
        try:
            await self._table.delete_entity(reminder.partition, reminder.id)
        except ResourceNotFoundError:
            pass

    async def retry_later(self, reminder: Reminder, now: datetime) -> bool:
        """A send failed: keep the reminder with one more attempt and a backoff.

        Returns False when the attempts are spent (the reminder is removed).
        """
        attempts = reminder.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            await self.complete(reminder)
            return False
        backoff = timedelta(minutes=2**attempts)  # 2, 4, 8, 16 minutes
        await self._table.update_entity(
            _to_entity(replace(reminder, attempts=attempts, not_before=now + backoff)),
            mode=UpdateMode.REPLACE,
        )
        return True


def _to_entity(reminder: Reminder) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": reminder.partition,
        "RowKey": reminder.id,
        "channelId": reminder.channel_id,
        "conversationId": reminder.conversation_id,
        "userId": reminder.user_id,
        "text": reminder.text,
        "dueAt": reminder.due_at,
        "createdAt": reminder.created_at,
        "attempts": reminder.attempts,
    }
    if reminder.not_before is not None:
        entity["notBefore"] = reminder.not_before
    return entity


def _from_entity(entity: dict[str, Any]) -> Reminder:
    return Reminder(
        id=entity["RowKey"],
        channel_id=entity["channelId"],
        conversation_id=entity["conversationId"],
        user_id=entity.get("userId", ""),
        text=entity["text"],
        due_at=entity["dueAt"],
        created_at=entity.get("createdAt") or entity["dueAt"],
        attempts=int(entity.get("attempts", 0)),
        not_before=entity.get("notBefore"),
        etag=entity.metadata["etag"],
    )


# --- understanding "remind me ..." -------------------------------------------------------------

_RELATIVE = re.compile(
    r"^\s*remind me in\s+(?P<n>\d{1,6})\s*(?P<unit>minutes?|mins?|m|hours?|hrs?|h)\s+to\s+(?P<text>.+)$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class ReminderRequest:
    due_at: datetime
    text: str


class ReminderParseError(ValueError):
    """What the user said looks like a reminder but cannot be one; the message says why."""


def is_reminder_command(text: str) -> bool:
    return text.strip().lower().startswith("remind me")


def parse_reminder(text: str, now: datetime) -> ReminderRequest:
    match = _RELATIVE.match(text)
    if not match:
        raise ReminderParseError(
            "I did not understand when. Try: `remind me in 10 minutes to stretch`."
        )
    amount = int(match["n"])
    if amount == 0:
        raise ReminderParseError("That time is now. Give me at least one minute.")
    unit = timedelta(hours=1) if match["unit"].lower().startswith("h") else timedelta(minutes=1)
    what = match["text"].strip()
    if len(what) > MAX_TEXT:
        raise ReminderParseError(f"That reminder is {len(what)} characters; the limit is {MAX_TEXT}.")
    return ReminderRequest(due_at=now + amount * unit, text=what)


# --- the timer run -----------------------------------------------------------------------------

# A reminder this much past due is marked late ("was due at ...") when it finally goes out.
LATE_AFTER = timedelta(minutes=2)
SEND_CONCURRENCY = 16


@dataclass
class RunSummary:
    due: int = 0
    sent: int = 0
    skipped: int = 0  # claimed by another run
    retrying: int = 0
    dropped: int = 0  # recipient unknown or gone, or attempts spent


def reminder_text(reminder: Reminder, now: datetime) -> str:
    text = f"⏰ Reminder: {reminder.text}"
    if now - reminder.due_at > LATE_AFTER:
        text += f" (was due at {reminder.due_at:%H:%M} UTC)"
    return text


async def send_due(
    store: ReminderStore, references: ReferenceStore, delivery: Delivery, now: datetime
) -> RunSummary:
    """One timer run: claim every due reminder, send it, and take it off the due list."""
    due = await store.due(now)
    summary = RunSummary(due=len(due))
    limit = asyncio.Semaphore(SEND_CONCURRENCY)

    async def one(reminder: Reminder) -> None:
        async with limit:
            await _send_one(store, references, delivery, reminder, now, summary)

    await asyncio.gather(*(one(r) for r in due))
    return summary


async def _send_one(
    store: ReminderStore,
    references: ReferenceStore,
    delivery: Delivery,
    reminder: Reminder,
    now: datetime,
    summary: RunSummary,
) -> None:
    claimed = await store.claim(reminder, now)
    if claimed is None:
        summary.skipped += 1
        return
    recipient = await references.get(claimed.channel_id, claimed.conversation_id)
    if recipient is None or not recipient.active:
        log.warning("reminder %s: conversation %s is unknown or gone; dropped", claimed.id, claimed.conversation_id)
        await store.complete(claimed)
        summary.dropped += 1
        return
    result = await delivery.send(recipient, [message(reminder_text(claimed, now))])
    if result.outcome in (Outcome.SENT, Outcome.GONE):
        await store.complete(claimed)
        summary.sent += result.outcome is Outcome.SENT
        summary.dropped += result.outcome is Outcome.GONE
    elif await store.retry_later(claimed, now):
        log.warning("reminder %s: %s; will retry", claimed.id, result.detail)
        summary.retrying += 1
    else:
        log.error("reminder %s: %s; attempts spent, giving up", claimed.id, result.detail)
        summary.dropped += 1
