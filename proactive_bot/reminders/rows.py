"""What a reminder is, and its rows in the reminders table: the data the store reads and writes
(store.py does the I/O)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from azure.data.tables import TableEntity

from .. import clock
from ..storage.keys import table_key
from .times import UTC, Recurrence, zone_named

DUE = "due|"


_USER = "user|"


ENTRY = "r|"


SETTINGS = "settings"


class EntryState(enum.Enum):
    """An entry's state. A recurring reminder stays SCHEDULED; a one-off becomes SENT when it goes out."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    DONE = "done"  # answered done
    FAILED = "failed"  # given up (see delivery.retries.REMINDERS), or its conversation is gone


@dataclass(frozen=True)
class Owner:
    """Whose reminders: one user of one channel (their entries share a partition)."""

    channel_id: str
    user_id: str

    @property
    def partition(self) -> str:
        return f"{_USER}{table_key(self.channel_id)}|{table_key(self.user_id)}"


@dataclass(frozen=True)
class Reminder:
    """A due row: one pending delivery of a reminder."""

    channel_id: str
    conversation_id: str
    user_id: str
    text: str
    due_at: datetime
    zone: str = "UTC"
    recurrence: Recurrence | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: clock.now())
    occurrence: int = 0  # deliveries before this one
    attempts: int = 0
    not_before: datetime | None = None  # a claim's lease end or a retry's backoff
    etag: str = ""  # of the row this was read from; what a claim is conditional on

    @property
    def partition(self) -> str:
        return due_partition(self.due_at)

    @property
    def owner(self) -> Owner:
        return Owner(self.channel_id, self.user_id)

    @property
    def tz(self) -> ZoneInfo:
        return zone_named(self.zone) or UTC

    def next_due(self, now: datetime) -> datetime | None:
        """For a recurring reminder, the next occurrence after `now` (missed ones are not repeated)."""
        if self.recurrence is None:
            return None
        return self.recurrence.next_after(max(now, self.due_at), self.tz)


@dataclass(frozen=True)
class Entry:
    """A reminder as its owner sees it: the row `reminders` lists and `cancel`, `done` act on."""

    id: str
    text: str
    state: EntryState
    due_at: datetime  # the next delivery while pending; else when it was last due
    zone: str
    recurrence: Recurrence | None
    conversation_id: str
    created_at: datetime
    occurrence: int = 0  # deliveries so far
    answered: int = 0  # the occurrence the user last answered (done or snooze)
    sent_at: datetime | None = None
    etag: str = ""

    @property
    def pending(self) -> bool:
        return self.state is EntryState.SCHEDULED

    @property
    def awaiting_answer(self) -> bool:
        return (
            self.sent_at is not None
            and self.answered < self.occurrence
            and self.state in (EntryState.SCHEDULED, EntryState.SENT)
        )


@dataclass(frozen=True)
class Agenda:
    """Everything stored for one user: their entries and settings, from one partition read."""

    owner: Owner
    entries: list[Entry]
    zone: str | None = None  # set with `timezone ...`
    listed: list[str] = field(default_factory=list)  # ids, in the order last shown

    @property
    def pending(self) -> list[Entry]:
        """Upcoming reminders, soonest first."""
        return sorted((e for e in self.entries if e.pending), key=lambda e: (e.due_at, e.created_at))

    def get(self, reminder_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == reminder_id), None)


@dataclass(frozen=True)
class DueBatch:
    reminders: list[Reminder]
    read: int  # entities the query returned, due or not (a claim or backoff can hold some back)


def due_partition(moment: datetime) -> str:
    return DUE + moment.astimezone(UTC).strftime("%Y%m%d%H%M")


def due_row(reminder: Reminder) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": reminder.partition,
        "RowKey": reminder.id,
        "channelId": reminder.channel_id,
        "conversationId": reminder.conversation_id,
        "userId": reminder.user_id,
        "text": reminder.text,
        "dueAt": reminder.due_at,
        "zone": reminder.zone,
        "createdAt": reminder.created_at,
        "occurrence": reminder.occurrence,
        "attempts": reminder.attempts,
    }
    if reminder.recurrence is not None:
        entity["recurrence"] = reminder.recurrence.encode()
    if reminder.not_before is not None:
        entity["notBefore"] = reminder.not_before
    return entity


def entry_row(reminder: Reminder) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": reminder.owner.partition,
        "RowKey": ENTRY + reminder.id,
        "text": reminder.text,
        "state": EntryState.SCHEDULED.value,
        "dueAt": reminder.due_at,
        "zone": reminder.zone,
        "conversationId": reminder.conversation_id,
        "createdAt": reminder.created_at,
        "occurrence": reminder.occurrence,
        "answered": reminder.occurrence,
    }
    if reminder.recurrence is not None:
        entity["recurrence"] = reminder.recurrence.encode()
    return entity


def _recurrence(entity: Mapping[str, Any]) -> Recurrence | None:
    encoded = entity.get("recurrence")
    return Recurrence.decode(str(encoded)) if encoded else None


class MalformedRow(ValueError):
    """A stored row this code cannot read (edited by hand, or by something else that writes there)."""


def reminder_of(entity: TableEntity) -> Reminder:
    try:
        reminder = _due_reminder(entity)
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedRow(f"due row {entity.get('PartitionKey')!r}/{entity.get('RowKey')!r}: {error!r}") from None
    moments = (reminder.due_at, reminder.created_at, reminder.not_before or reminder.due_at)
    if not isinstance(reminder.text, str) or not all(isinstance(m, datetime) for m in moments):
        raise MalformedRow(
            f"due row {entity.get('PartitionKey')!r}/{entity.get('RowKey')!r}: "
            "text must be a string, dueAt, createdAt and notBefore times"
        )
    return reminder


def _due_reminder(entity: TableEntity) -> Reminder:
    return Reminder(
        id=entity["RowKey"],
        channel_id=entity["channelId"],
        conversation_id=entity["conversationId"],
        user_id=entity.get("userId", ""),
        text=entity["text"],
        due_at=entity["dueAt"],
        zone=entity.get("zone") or "UTC",
        recurrence=_recurrence(entity),
        created_at=entity.get("createdAt") or entity["dueAt"],
        occurrence=int(entity.get("occurrence", 0)),
        attempts=int(entity.get("attempts", 0)),
        not_before=entity.get("notBefore"),
        etag=entity.metadata["etag"] or "",  # None only on an entity built here, never one read
    )


def entry_of(entity: TableEntity) -> Entry:
    return Entry(
        id=entity["RowKey"][len(ENTRY) :],
        text=entity.get("text", ""),
        state=EntryState(entity.get("state", EntryState.SCHEDULED.value)),
        due_at=entity["dueAt"],
        zone=entity.get("zone") or "UTC",
        recurrence=_recurrence(entity),
        conversation_id=entity.get("conversationId", ""),
        created_at=entity.get("createdAt") or datetime.min.replace(tzinfo=UTC),
        occurrence=int(entity.get("occurrence", 0)),
        answered=int(entity.get("answered", 0)),
        sent_at=entity.get("sentAt"),
        etag=entity.metadata["etag"] or "",  # None only on an entity built here, never one read
    )
