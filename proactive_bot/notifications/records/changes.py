"""The records' writes on sent rows: an edit's or recall's lease and outcome, a read receipt.

I/O only, part of `NotificationStore` (store.py); what to write when is lifecycle.py's and
receipts.py's to decide.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ...storage.outage import StorageGate
from .keys import shard_partition
from .rows import SentRow, sent_row
from .states import ChangeFailure, RecipientState


class SentRowWrites:
    _table: TableClient
    # An edit's or recall's lease and marks wait while storage is away: the message was changed,
    # and the row must say so (storage/outage.py).
    _gate: StorageGate

    async def shard_rows(self, notification_id: str, shard: int) -> AsyncIterator[SentRow]:
        """Every row of one shard (with ETags), for an edit or recall to walk."""
        query = "PartitionKey eq @pk"
        async for entity in self._table.query_entities(
            query, parameters={"pk": shard_partition(notification_id, shard)}
        ):
            yield sent_row(entity)

    async def lease_for_change(self, row: SentRow, now: datetime, lease: timedelta) -> bool:
        """Hold a sent row for one edit or recall, for `lease`: a merge under its ETag. False:
        someone else has it (or it changed since it was read)."""
        entity = {"PartitionKey": row.partition, "RowKey": row.key, "changeUntil": now + lease}
        try:
            await self._gate.persist(
                lambda: self._table.update_entity(
                    entity, mode=UpdateMode.MERGE, etag=row.etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def mark_recalled(self, row: SentRow, now: datetime) -> None:
        """The row's message was deleted from its conversation (or found gone already)."""
        await self._merge(row, {**_change_ended(now), "state": RecipientState.RECALLED.value, "recalledAt": now})

    async def mark_edited(self, row: SentRow, version: int, now: datetime) -> None:
        """The row's message now shows content `version`."""
        await self._merge(row, {**_change_ended(now), "version": version, "editedAt": now})

    async def mark_change_failed(
        self,
        row: SentRow,
        failure: ChangeFailure,
        of: str,
        detail: str,
        now: datetime | None = None,
        *,
        attempts: int | None = None,
    ) -> None:
        """The change `of` did not take, and is not tried again: `failure` says why. Without
        `now`, the row's lease and counts stay as they are (nothing was attempted)."""
        fields: dict[str, Any] = {"change": failure.value, "changeOf": of, "detail": detail[:1000]}
        if now is not None:
            fields.update(changeUntil=now, changeAttempts=attempts or 0, updatedAt=now)
        await self._merge(row, fields)

    async def end_change_lease(self, row: SentRow, now: datetime, *, attempts: int) -> None:
        """A change to try again later: the lease ends now, its attempts counted."""
        await self._merge(row, {"changeUntil": now, "changeAttempts": attempts, "updatedAt": now})

    async def mark_read(self, partition: str, key: str, now: datetime) -> bool:
        """A read receipt covers this row's message. False: the notification's rows are gone."""
        try:
            await self._table.update_entity({"PartitionKey": partition, "RowKey": key, "readAt": now})
        except ResourceNotFoundError:
            return False
        return True

    async def _merge(self, row: SentRow, fields: dict[str, Any]) -> None:
        entity = {"PartitionKey": row.partition, "RowKey": row.key, **fields}
        try:
            # Tried again after a dropped connection, a merge is the same merge.
            await self._gate.persist(lambda: self._table.update_entity(entity, mode=UpdateMode.MERGE))
        except (ResourceModifiedError, ResourceNotFoundError):
            pass  # gone meanwhile: the notification's records were deleted


def _change_ended(now: datetime) -> dict[str, Any]:
    """A change that took: its lease ends, and no failure of an earlier try stays on the row."""
    return {"changeUntil": now, "changeAttempts": 0, "updatedAt": now, "change": ""}
