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

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from .rows import (
    DUE,
    ENTRY,
    SETTINGS,
    Agenda,
    DueBatch,
    Entry,
    EntryState,
    MalformedRow,
    Owner,
    Reminder,
    due_partition,
    due_row,
    entry_of,
    entry_row,
    reminder_of,
)

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)
MAX_PENDING = 100  # per user
# Answered, failed and sent one-off entries are kept this long (for `report` and late answers).
HISTORY = timedelta(days=30)


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
            if entity["RowKey"] == SETTINGS:
                zone = entity.get("zone") or None
                listed = json.loads(entity.get("listed") or "[]")
            else:
                entries.append(entry_of(entity))
        return Agenda(owner, entries, zone, listed)

    async def set_zone(self, owner: Owner, zone: str) -> None:
        await self._merge_settings(owner, zone=zone)

    async def remember_listing(self, owner: Owner, ids: list[str]) -> None:
        """The order `reminders` showed, so `cancel 2` means what the user saw as 2."""
        await self._merge_settings(owner, listed=json.dumps(ids))

    async def _merge_settings(self, owner: Owner, **values: Any) -> None:
        entity = {"PartitionKey": owner.partition, "RowKey": SETTINGS, **values}
        await self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    async def cancel(self, owner: Owner, entry: Entry) -> bool:
        """Remove a reminder; False if it was already gone (sent, cancelled) or changed meanwhile."""
        try:
            await self._table.delete_entity(
                owner.partition,
                ENTRY + entry.id,
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
                {"PartitionKey": owner.partition, "RowKey": ENTRY + entry.id, **changes},
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
            operations = [("delete", {"PartitionKey": agenda.owner.partition, "RowKey": ENTRY + e.id}) for e in old]
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
        params = {"lo": DUE, "hi": due_partition(now)}
        entities = self._table.query_entities(query, parameters=params, results_per_page=page_size)
        async for page in entities.by_page():
            found, read = [], 0
            async for entity in page:
                read += 1
                try:
                    reminder = reminder_of(entity)
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
                {"PartitionKey": reminder.owner.partition, "RowKey": ENTRY + reminder.id, **changes},
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
                    "RowKey": ENTRY + reminder.id,
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
