"""Reading a notification's record and counting its rows, and the counts kept for views.

Counting reads every row of a notification (`status`: the one source of the counts, what
`GET /api/notifications/{id}` answers). A view that polls while a broadcast runs (the status
page, its list of recent notifications) would read 10,000 rows every few seconds, once per
viewer; it reads `counted` instead: the header and one row (`tally`) holding the counts as last
counted. When those are older than REFRESH the view asks for a recount (`ask_recount`, once for
all its viewers: a write under the row's ETag), which a work message carries to a worker
(`recount`). So the rows are read at most once per REFRESH per notification being watched,
whatever the number of viewers, and never when nobody watches.

I/O, part of `NotificationStore` (store.py), as changes.py is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ... import clock
from .keys import HEADER, TALLY, header_partition, shards_range
from .rows import Header, header_of, recipient_row
from .states import RecipientState
from .status import Status, tally

REFRESH = timedelta(seconds=2)  # counts older than this are asked for again by a view
LOST = timedelta(seconds=30)  # a recount asked this long ago and not done: its message was lost

_COUNTED_FIELDS = ["state", "throttled", "readAt", "editedAt", "change", "version", "leaseUntil", "resends"]
# Status's totals beside its counts by state, as the tally row names them.
_TOTALS = {
    "throttled": "throttled",
    "resent": "resent",
    "read": "read",
    "updated": "updated",
    "unsupported": "unsupported",
    "change_failed": "changeFailed",
    "changing": "changing",
}


@dataclass(frozen=True)
class Counted:
    """A notification's counts as last counted, on its record as it reads now."""

    status: Status
    counted_at: datetime | None  # when its rows were read; None: never yet (every count 0)
    due: bool  # old enough that a view should ask for a recount
    etag: str | None  # of the tally row (None: there is none yet)


class Counting:
    _table: TableClient

    async def header(self, notification_id: str) -> Header | None:
        try:
            entity = await self._table.get_entity(header_partition(notification_id), HEADER)
        except ResourceNotFoundError:
            return None
        return header_of(entity)

    async def status(self, notification_id: str, *, detail: bool = False, limit: int = 1000) -> Status | None:
        """What became of a notification, its rows counted now: counts by state, and its rows
        (`detail`, up to `limit`)."""
        header = await self.header(notification_id)
        if header is None:
            return None
        # Every shard: the partitions from "<id>%S" up to (not including) "<id>%T".
        query = "PartitionKey gt @lo and PartitionKey lt @hi"
        select = None if detail else _COUNTED_FIELDS
        rows = [
            recipient_row(entity)
            async for entity in self._table.query_entities(
                query, parameters=shards_range(notification_id), select=select
            )
        ]
        return tally(header, rows, clock.now(), detail=detail, limit=limit)

    async def recount(self, notification_id: str, now: datetime) -> Status | None:
        """Count its rows (`status`) and keep the counts beside its record, as of `now` (when
        the count began). None: no such notification."""
        status = await self.status(notification_id)
        if status is None:
            return None
        entity = {"PartitionKey": header_partition(notification_id), "RowKey": TALLY, **_stored(status, now)}
        # A merge: an ask written meanwhile stays (it asked for a count newer than this one).
        await self._table.upsert_entity(entity, mode=UpdateMode.MERGE)
        return status

    async def counted(self, notification_id: str, now: datetime) -> Counted | None:
        """Its counts as last counted (two point reads, no recipient row). None: no such notification."""
        header = await self.header(notification_id)
        if header is None:
            return None
        try:
            entity: Any = await self._table.get_entity(header_partition(notification_id), TALLY)
        except ResourceNotFoundError:
            entity = None
        return counted_of(header, entity, now)

    async def ask_recount(self, notification_id: str, counted: Counted, now: datetime) -> bool:
        """Note that a recount is asked for, if `counted` is due and nobody noted it since it
        was read. True: this caller asked, and puts the work that recounts."""
        if not counted.due:
            return False
        entity = {"PartitionKey": header_partition(notification_id), "RowKey": TALLY, "askedAt": now}
        try:
            if counted.etag is None:
                await self._table.create_entity(entity)
            else:
                await self._table.update_entity(
                    entity, mode=UpdateMode.MERGE, etag=counted.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False  # another viewer asked first, or a recount just landed
        return True


def counted_of(header: Header, entity: dict[str, Any] | None, now: datetime) -> Counted:
    """The counts a tally row holds (none: all 0), applied to the record as it reads now."""
    fields = entity or {}
    stored = json.loads(fields.get("counts") or "{}")
    counts = {state: int(stored.get(state.value, 0)) for state in RecipientState}
    totals = {name: int(fields.get(column, 0)) for name, column in _TOTALS.items()}
    status = Status(
        header=header,
        counts=counts,
        rows=None,
        scheduled=header.notification.scheduled(now),
        **totals,
    )
    counted_at = _moment(fields.get("countedAt"))
    asked_at = _moment(fields.get("askedAt"))
    etag = entity.metadata["etag"] if entity is not None and hasattr(entity, "metadata") else None
    return Counted(status, counted_at, _due(counted_at, asked_at, now), etag)


def _due(counted_at: datetime | None, asked_at: datetime | None, now: datetime) -> bool:
    if asked_at is not None and (counted_at is None or asked_at > counted_at):
        return now - asked_at >= LOST  # one is on its way
    return counted_at is None or now - counted_at >= REFRESH


def _stored(status: Status, now: datetime) -> dict[str, Any]:
    counts = {state.value: n for state, n in status.counts.items() if n}
    totals = {column: getattr(status, name) for name, column in _TOTALS.items()}
    return {"counts": json.dumps(counts, separators=(",", ":")), **totals, "countedAt": now}


def _moment(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None
