"""Reminders in Azure Table Storage: what is due when, and each user's own list.

One table (setting `RemindersTable`), two kinds of partition:

    PartitionKey                 RowKey        holds
    due|YYYYMMDDHHMM             <id>          a due row: everything needed to send, due that UTC minute
    user|<channel>|<user>        r|<id>        an entry: the reminder as the user sees it (the truth)
    user|<channel>|<user>        settings      the user's time zone and last numbered list

A timer run reads only the due partitions up to "now" (a PartitionKey range), so its cost follows
what is due, never the future backlog. A due row is only a trigger: before sending, the run marks
the user's entry with a write that fails if the entry is gone (`If-Match: *`), so a cancelled
reminder is never sent, whatever due rows a race or a crash left behind. Hence the write orders:
add = due row, then entry; cancel = entry (conditional on its ETag), then due row.

Claiming uses the due row's ETag: of two overlapping timer runs, one wins the conditional update,
and the other gets 412 and skips the reminder. A claim is a lease (`notBefore`): a run that dies
mid-send leaves the reminder to the next run after `CLAIM_LEASE`.
"""

from __future__ import annotations

import enum
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient

from .. import clock
from ..storage.keys import table_key
from .schedules import UTC, Recurrence, zone_named

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)
MAX_PENDING = 100  # per user
# Answered, failed and sent one-off entries are kept this long (for `report` and late answers).
HISTORY = timedelta(days=30)

_DUE = "due|"
_USER = "user|"
_ENTRY = "r|"
_SETTINGS = "settings"


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
    return _DUE + moment.astimezone(UTC).strftime("%Y%m%d%H%M")


class ReminderStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    # --- what users do ---------------------------------------------------------------------

    async def add(self, reminder: Reminder) -> None:
        # Due row first: if the entry write fails, the orphan due row is dropped when it comes due.
        await self._table.create_entity(due_row(reminder))
        await self._table.create_entity(entry_row(reminder))

    async def agenda(self, owner: Owner) -> Agenda:
        entries, zone, listed = [], None, []
        query = "PartitionKey eq @pk"
        async for entity in self._table.query_entities(query, parameters={"pk": owner.partition}):
            if entity["RowKey"] == _SETTINGS:
                zone = entity.get("zone") or None
                listed = json.loads(entity.get("listed") or "[]")
            else:
                entries.append(_entry(entity))
        return Agenda(owner, entries, zone, listed)

    async def set_zone(self, owner: Owner, zone: str) -> None:
        await self._merge_settings(owner, zone=zone)

    async def remember_listing(self, owner: Owner, ids: list[str]) -> None:
        """The order `reminders` showed, so `cancel 2` means what the user saw as 2."""
        await self._merge_settings(owner, listed=json.dumps(ids))

    async def _merge_settings(self, owner: Owner, **values: Any) -> None:
        entity = {"PartitionKey": owner.partition, "RowKey": _SETTINGS, **values}
        await self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    async def cancel(self, owner: Owner, entry: Entry) -> bool:
        """Remove a reminder; False if it was already gone (sent, cancelled) or changed meanwhile."""
        try:
            await self._table.delete_entity(
                owner.partition,
                _ENTRY + entry.id,
                etag=entry.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return False  # a timer run moved it on meanwhile; the caller reads again
        except ResourceNotFoundError:
            return False
        await self._delete_quietly(due_partition(entry.due_at), entry.id)
        return True

    async def answer(self, owner: Owner, entry: Entry, *, done: bool) -> bool:
        """Record the user's answer (done, or snoozed as a new reminder) to the last delivery."""
        changes: dict[str, Any] = {"answered": entry.occurrence}
        if done and entry.recurrence is None:
            changes["state"] = EntryState.DONE.value
        return await self._update_entry(owner, entry, changes)

    async def snooze(self, owner: Owner, entry: Entry, until: datetime) -> bool:
        """Deliver a one-off reminder again at `until`; False if it was answered meanwhile."""
        again = Reminder(
            channel_id=owner.channel_id,
            conversation_id=entry.conversation_id,
            user_id=owner.user_id,
            text=entry.text,
            due_at=until,
            zone=entry.zone,
            id=entry.id,
            created_at=entry.created_at,
            occurrence=entry.occurrence,
        )
        try:
            await self._table.create_entity(due_row(again))
        except ResourceExistsError:
            return False  # a second click in the same minute
        changes = {"state": EntryState.SCHEDULED.value, "dueAt": until, "answered": entry.occurrence}
        if await self._update_entry(owner, entry, changes):
            return True
        await self._delete_quietly(again.partition, again.id)
        return False

    async def _update_entry(self, owner: Owner, entry: Entry, changes: dict[str, Any]) -> bool:
        try:
            await self._table.update_entity(
                {"PartitionKey": owner.partition, "RowKey": _ENTRY + entry.id, **changes},
                mode=UpdateMode.MERGE,
                etag=entry.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def prune(self, agenda: Agenda, now: datetime) -> None:
        """Forget finished entries older than HISTORY (one batch: they share the partition)."""
        old = [e for e in agenda.entries if not e.pending and (e.sent_at or e.created_at) < now - HISTORY][:100]
        if old:
            operations = [("delete", {"PartitionKey": agenda.owner.partition, "RowKey": _ENTRY + e.id}) for e in old]
            try:
                await self._table.submit_transaction(operations)
            except Exception:
                pass

    # --- what a timer run does -------------------------------------------------------------

    async def due(self, now: datetime) -> DueBatch:
        """Every reminder due at `now` or earlier that no other run holds."""
        found, read = [], 0
        async for page in self.due_pages(now):
            found += page.reminders
            read += page.read
        return DueBatch(found, read)

    async def due_pages(self, now: datetime, page_size: int = 1000) -> AsyncIterator[DueBatch]:
        """The same, a page at a time (memory stays bounded however much is due).

        Reads only the due partitions, up to now's minute; what is later is never read.
        """
        query = "PartitionKey ge @lo and PartitionKey le @hi"
        params = {"lo": _DUE, "hi": due_partition(now)}
        entities = self._table.query_entities(query, parameters=params, results_per_page=page_size)
        async for page in entities.by_page():
            found, read = [], 0
            async for entity in page:
                read += 1
                try:
                    reminder = _reminder(entity)
                except MalformedRow as error:
                    # Left in place for a person to look at; one bad row must not stop every run.
                    log.error("skipped a reminder that cannot be read: %s", error)
                    continue
                if reminder.due_at <= now and (reminder.not_before is None or reminder.not_before <= now):
                    found.append(reminder)
            yield DueBatch(found, read)

    async def claim(self, reminder: Reminder, now: datetime) -> Reminder | None:
        """Take the reminder for this run, or None if another run got there first."""
        claimed = replace(reminder, not_before=now + CLAIM_LEASE)
        try:
            metadata = await self._table.update_entity(
                due_row(claimed),
                mode=UpdateMode.REPLACE,
                etag=reminder.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return replace(claimed, etag=metadata["etag"])

    async def mark_sending(self, reminder: Reminder, now: datetime, next_due: datetime | None) -> bool:
        """Record the delivery on the owner's entry; False if the reminder was cancelled."""
        changes: dict[str, Any] = {
            "occurrence": reminder.occurrence + 1,
            "sentAt": now,
            "conversationId": reminder.conversation_id,
            "state": (EntryState.SCHEDULED if next_due else EntryState.SENT).value,
        }
        if next_due is not None:
            changes["dueAt"] = next_due
        try:
            # An unconditional update is `If-Match: *`: it fails with 404 rather than create.
            await self._table.update_entity(
                {"PartitionKey": reminder.owner.partition, "RowKey": _ENTRY + reminder.id, **changes},
                mode=UpdateMode.MERGE,
            )
        except ResourceNotFoundError:
            return False
        return True

    async def finish(self, reminder: Reminder, next_due: datetime | None) -> None:
        """This delivery is over: schedule the next occurrence, if any, and drop the due row."""
        if next_due is not None:
            following = replace(
                reminder,
                due_at=next_due,
                occurrence=reminder.occurrence + 1,
                attempts=0,
                not_before=None,
                etag="",
            )
            try:
                await self._table.create_entity(due_row(following))
            except ResourceExistsError:
                pass  # a run that died after this step already made it
        await self._delete_quietly(reminder.partition, reminder.id, reminder.etag)

    async def retry_later(self, reminder: Reminder, until: datetime) -> None:
        """A send failed: keep the due row, one more attempt counted, held back until `until`."""
        retry = replace(reminder, attempts=reminder.attempts + 1, not_before=until)
        try:
            await self._table.update_entity(
                due_row(retry),
                mode=UpdateMode.REPLACE,
                etag=reminder.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            pass  # cancelled meanwhile

    async def give_up(self, reminder: Reminder, reason: str) -> None:
        """No more attempts: the due row goes and the owner's entry says it failed."""
        try:
            await self._table.update_entity(
                {
                    "PartitionKey": reminder.owner.partition,
                    "RowKey": _ENTRY + reminder.id,
                    "state": EntryState.FAILED.value,
                    "failure": reason[:500],
                },
                mode=UpdateMode.MERGE,
            )
        except ResourceNotFoundError:
            pass
        await self._delete_quietly(reminder.partition, reminder.id, reminder.etag)

    async def drop(self, reminder: Reminder) -> None:
        """A due row with no entry behind it (cancelled in a race): nothing to send."""
        await self._delete_quietly(reminder.partition, reminder.id, reminder.etag)

    async def _delete_quietly(self, partition: str, row: str, etag: str | None = None) -> None:
        try:
            if etag:
                await self._table.delete_entity(
                    partition, row, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            else:
                await self._table.delete_entity(partition, row)
        except (ResourceNotFoundError, ResourceModifiedError):
            pass


# --- rows ---------------------------------------------------------------------------------------


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
        "RowKey": _ENTRY + reminder.id,
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


def _recurrence(entity: dict[str, Any]) -> Recurrence | None:
    encoded = entity.get("recurrence")
    return Recurrence.decode(str(encoded)) if encoded else None


class MalformedRow(ValueError):
    """A stored row this code cannot read (edited by hand, or by something else that writes there)."""


def _reminder(entity: TableEntity) -> Reminder:
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


def _entry(entity: TableEntity) -> Entry:
    return Entry(
        id=entity["RowKey"][len(_ENTRY) :],
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
