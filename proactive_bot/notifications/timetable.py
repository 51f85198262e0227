"""Scheduled notifications (`notBefore`): what the timer starts when, at the cost of what is due.

Due rows live in the notifications table beside the records, partitioned by UTC minute, as the
reminders' do (see reminders/store.py):

    PartitionKey          RowKey     holds
    due|YYYYMMDDHHMM      <id>       the notification's id and its notBefore

A timer run reads only the partitions up to now's minute (a PartitionKey range), so a backlog of
scheduled notifications is never read before its minute. ("due|" cannot begin a notification's
own partition: ids never hold "|".)

A due row is only a trigger. Starting one puts a start message ("release" on the wire) on the work queue and then
deletes the row; the work message starts the notification unless it was cancelled meanwhile, and
starting is idempotent (the records see to that), so a run that dies between the two steps, or
two runs that overlap, cost a duplicate message and never a duplicate send.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ..storage.keys import table_key
from ..work import StartWork, WorkQueue

log = logging.getLogger(__name__)

_DUE = "due|"
PAGE_SIZE = 1000


def due_partition(moment: datetime) -> str:
    return _DUE + moment.astimezone(UTC).strftime("%Y%m%d%H%M")


@dataclass(frozen=True)
class Due:
    notification_id: str
    not_before: datetime
    partition: str
    row: str


class Timetable:
    """The due rows of scheduled notifications."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def add(self, notification_id: str, not_before: datetime) -> None:
        """Put it on the timetable (again: an upsert, so a redelivered notification writes the same row)."""
        await self._table.upsert_entity(
            {
                "PartitionKey": due_partition(not_before),
                "RowKey": table_key(notification_id),
                "notification": notification_id,
                "notBefore": not_before.astimezone(UTC),
            },
            mode=UpdateMode.REPLACE,
        )

    async def due(self, now: datetime) -> AsyncIterator[list[Due]]:
        """What is due by `now`, a page at a time; reads only the minutes up to now's."""
        query = "PartitionKey ge @lo and PartitionKey le @hi"
        params = {"lo": _DUE, "hi": due_partition(now)}
        pages = self._table.query_entities(query, parameters=params, results_per_page=PAGE_SIZE).by_page()
        async for page in pages:
            found = []
            async for entity in page:
                due = Due(entity["notification"], entity["notBefore"], entity["PartitionKey"], entity["RowKey"])
                if due.not_before <= now:  # later in this same minute: the next run
                    found.append(due)
            yield found

    async def remove(self, due: Due) -> None:
        try:
            await self._table.delete_entity(due.partition, due.row)
        except ResourceNotFoundError:
            pass  # another run started it too

    async def unschedule(self, notification_id: str, not_before: datetime) -> None:
        """A cancelled notification's due row: dropped, so no timer run reads it."""
        try:
            await self._table.delete_entity(due_partition(not_before), table_key(notification_id))
        except ResourceNotFoundError:
            pass

    async def start_due(self, work: WorkQueue, now: datetime) -> int:
        """Timer: hand every scheduled notification that is due to the work queue.

        Here rather than in the fan-out: the timer needs only this table and the queue, and
        building the fan-out's graph would cost every timer cold start its imports."""
        started = 0
        async for page in self.due(now):
            for due in page:
                # Message first, then the row: a run that dies between them starts it twice,
                # which the start shrugs off; the other order could lose it.
                await work.put(StartWork(notification=due.notification_id))
                await self.remove(due)
                started += 1
        return started
