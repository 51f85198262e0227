"""Notification records: what became of each notification, recipient by recipient.

Each notification in the `NotificationsTable`:

    PartitionKey      RowKey            holds
    <id>              notification      the document, when it came, how many recipients, the cursor
    <id>%S<shard>     r|<recipient>     one delivery: sending / sent / gone / failed / skipped /
                                        unconfirmed / retry

A recipient's shard follows from the recipient alone, so every delivery of it finds the same row.
Spreading recipients over SHARDS partitions keeps a broadcast clear of one partition's throughput
(Table Storage: about 2,000 entities/s) and keeps partitions small; batches are cut per shard
(`shard_of`) so that the rows one batch writes still share entity-group transactions.

The per-recipient rows are what make a redelivered queue message harmless: a sender claims a
recipient's row (an insert that fails if the row exists) right before sending, so a recipient
with a row is never sent the same notification again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from .delivery import Outcome, Result
from .notifications import Notification
from .references import StoredReference
from .table_keys import table_key

log = logging.getLogger(__name__)

_HEADER = "notification"
_RECIPIENT = "r|"
_SHARD = "%S"
_AFTER_SHARDS = "%T"  # sorts after every "<id>%S.." partition and before any other id's
# A "sending" row older than this belongs to a sender that died mid-send.
SEND_LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8  # across queue deliveries, then the recipient is marked failed
SHARDS = 8  # part of where rows live: change it only with no notification in flight
CLAIM_WINDOW = 0.05  # seconds a claim waits for others to share its transaction
SETTLE_WINDOW = 0.25  # the same for outcomes

FINAL_STATES = frozenset({"sent", "gone", "failed", "skipped", "unconfirmed"})


@dataclass(frozen=True)
class Header:
    notification: Notification
    created_at: datetime
    recipients: int
    planned: bool  # every recipient is known (a broadcast has walked its whole audience)
    cursor: dict[str, str] | None
    pages: int
    note: str
    etag: str


@dataclass(frozen=True)
class Claim:
    """Whether a recipient can be sent to now, and what earlier deliveries already tried."""

    verdict: str  # CLAIMED: ours to send; DONE: settled, never send again; BUSY: held by another sender
    attempts: int = 0
    throttled: int = 0


CLAIMED, DONE, BUSY = "claimed", "done", "busy"


@dataclass(frozen=True)
class Settled:
    """How one delivery ended, as its row records it."""

    recipient: StoredReference
    state: str
    attempts: int = 0
    throttled: int = 0
    status: int | None = None
    detail: str = ""


def recipient_key(recipient: StoredReference) -> str:
    # Length-prefixed so that no two (channel, conversation) pairs give the same key.
    return _RECIPIENT + table_key(f"{len(recipient.channel_id)}:{recipient.channel_id}{recipient.conversation_id}")


def shard_of(recipient: StoredReference) -> int:
    """Which of a notification's recipient partitions holds this recipient's row."""
    return zlib.crc32(recipient_key(recipient).encode("utf-8")) % SHARDS


def _recipient_partition(notification_id: str, recipient: StoredReference) -> str:
    # table_key never writes "%S" (it escapes "%" itself), so no notification id's own
    # partition can look like another's shard.
    return f"{table_key(notification_id)}{_SHARD}{shard_of(recipient):02d}"


class _Coalesced:
    """Row writes that arrive close together go out as one entity-group transaction.

    At full speed a process claims and settles hundreds of recipients a second; one request per
    row is what storage cannot keep up with (Azurite here: ~660 single inserts/s vs ~2,000 rows/s
    in transactions of 100; a 10,000-recipient broadcast went from 349 to 463 sends/s when claims
    waited 50 ms for company instead of 10, and outcomes 250 instead of 100). Each caller still
    waits for its own row, so claim-then-send holds.
    """

    MAX_ROWS = 100  # an entity-group transaction's limit

    def __init__(self, table: TableClient, action: str, window: float) -> None:
        self._table = table
        self._action = action  # "create" (fails if the row exists) or "upsert" (replaces it)
        self._window = window  # seconds to wait for company
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._writing: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def write(self, entities: list[dict[str, Any]], *, at_once: bool = False) -> None:
        """Write the rows (`at_once`: now, together with whatever is waiting, rather than after the
        window). Every row is attempted; then the first error is raised (a create's
        ResourceExistsError if its row is already there)."""
        pending = [self._enqueue(entity) for entity in entities]
        if at_once:
            self._flush_now()
        elif self._waiting and self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_soon())
        results = await asyncio.gather(*pending, return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            raise errors[0]

    def _enqueue(self, entity: dict[str, Any]) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((entity, done))
        if len(self._waiting) >= self.MAX_ROWS:
            self._flush_now()
        return done

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._window)
        self._flusher = None
        self._flush_now()

    def _flush_now(self) -> None:
        waiting, self._waiting = self._waiting, []
        by_partition: dict[str, list[tuple[dict[str, Any], asyncio.Future[None]]]] = {}
        for item in waiting:
            by_partition.setdefault(item[0]["PartitionKey"], []).append(item)
        for group in by_partition.values():
            task = asyncio.create_task(self._write(group))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)

    async def _write(self, group: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        if len(group) > 1:
            try:
                await self._table.submit_transaction([self._operation(entity) for entity, _ in group])
            except HttpResponseError:
                pass  # a row exists, one is bad, or one appears twice: all or nothing, so one by one
            except Exception as error:  # noqa: BLE001 - storage unreachable: no row written, every waiter hears why
                for _, done in group:
                    _resolve(done, error)
                return
            else:
                for _, done in group:
                    _resolve(done)
                return
        for entity, done in group:
            try:
                if self._action == "create":
                    await self._table.create_entity(entity)
                else:
                    await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            except Exception as error:  # noqa: BLE001 - handed to the waiting caller, unchanged
                _resolve(done, error)
            else:
                _resolve(done)

    def _operation(self, entity: dict[str, Any]) -> tuple[Any, ...]:
        if self._action == "create":
            return ("create", entity)
        return ("upsert", entity, {"mode": UpdateMode.REPLACE})


def _resolve(done: asyncio.Future[None], error: Exception | None = None) -> None:
    # A caller that was cancelled has stopped waiting; its row is written all the same.
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class NotificationStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table
        # A claim waits for its window before its send may leave, so that one is short; outcomes
        # are written after the send and can wait for more company.
        self._creates = _Coalesced(table, "create", window=CLAIM_WINDOW)
        self._outcomes = _Coalesced(table, "upsert", window=SETTLE_WINDOW)

    # header

    async def create(self, notification: Notification, now: datetime, source: str) -> Header:
        """Record a new notification, or return the existing record of the same id."""
        entity = {
            "PartitionKey": table_key(notification.id),
            "RowKey": _HEADER,
            "document": json.dumps(notification.document(), ensure_ascii=False),
            "createdAt": now,
            "source": source,
            "recipients": 0,
            "planned": False,
            "cursor": "",
            "pages": 0,
            "note": "",
        }
        try:
            await self._table.create_entity(entity)
        except ResourceExistsError:
            existing = await self.header(notification.id)
            if existing is not None and existing.notification.document() != notification.document():
                log.warning("notification id %s reused with different content; the first one stands", notification.id)
            if existing is not None:
                return existing
        header = await self.header(notification.id)
        assert header is not None
        return header

    async def header(self, notification_id: str) -> Header | None:
        try:
            entity = await self._table.get_entity(table_key(notification_id), _HEADER)
        except ResourceNotFoundError:
            return None
        document = json.loads(entity["document"])
        return Header(
            notification=Notification(document["id"], document["to"], document.get("text"), document.get("attachments", [])),
            created_at=entity["createdAt"],
            recipients=int(entity.get("recipients", 0)),
            planned=bool(entity.get("planned", False)),
            cursor=json.loads(entity["cursor"]) if entity.get("cursor") else None,
            pages=int(entity.get("pages", 0)),
            note=entity.get("note", ""),
            etag=entity.metadata["etag"],
        )

    async def advance(
        self, header: Header, *, found: int, cursor: dict[str, str] | None, planned: bool, note: str = ""
    ) -> Header | None:
        """Move a broadcast's cursor on, if nobody else did since `header` was read; returns the
        record as it now stands (None: another writer moved it first)."""
        moved = dataclasses.replace(
            header, recipients=header.recipients + found, planned=planned, cursor=cursor,
            pages=header.pages + 1, note=note or header.note,
        )
        entity = {
            "PartitionKey": table_key(header.notification.id),
            "RowKey": _HEADER,
            "recipients": moved.recipients,
            "planned": moved.planned,
            "cursor": json.dumps(cursor) if cursor else "",
            "pages": moved.pages,
            "note": moved.note,
        }
        try:
            written = await self._table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=header.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return None
        return dataclasses.replace(moved, etag=written["etag"])

    # one recipient

    async def claim(self, notification_id: str, recipient: StoredReference, now: datetime) -> Claim:
        """Take the right to send to `recipient`, unless it was settled or is being sent."""
        entity = {
            "PartitionKey": _recipient_partition(notification_id, recipient),
            "RowKey": recipient_key(recipient),
            **_recipient_fields(recipient),
            "state": "sending",
            "leaseUntil": now + SEND_LEASE,
            "attempts": 0,
            "throttled": 0,
            "updatedAt": now,
        }
        try:
            await self._creates.write([entity])
            return Claim(CLAIMED)
        except ResourceExistsError:
            pass
        try:
            existing = await self._table.get_entity(entity["PartitionKey"], entity["RowKey"])
        except ResourceNotFoundError:
            return Claim(BUSY)  # vanished between the two calls; look again later
        state = existing.get("state")
        if state in FINAL_STATES:
            return Claim(DONE)
        if state == "sending" and existing["leaseUntil"] > now:
            return Claim(BUSY)
        if state == "sending":
            # Its sender died after claiming: the message may or may not have left. We do not
            # send it again (a duplicate is what this record exists to prevent); it is reported.
            settled = {**existing, "state": "unconfirmed", "updatedAt": now, "detail": "sender stopped mid-send"}
            await self._replace_if_unchanged(settled, existing)
            return Claim(DONE)
        # "retry": a previous delivery ran out of time; take it back, keeping its counts.
        retaken = {**existing, "state": "sending", "leaseUntil": now + SEND_LEASE, "updatedAt": now}
        if not await self._replace_if_unchanged(retaken, existing):
            return Claim(BUSY)
        return Claim(CLAIMED, int(existing.get("attempts", 0)), int(existing.get("throttled", 0)))

    async def _replace_if_unchanged(self, entity: dict[str, Any], read: Any) -> bool:
        try:
            await self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=read.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def settle(
        self, notification_id: str, outcomes: Iterable[Settled], now: datetime, *, at_once: bool = False
    ) -> None:
        """Write how deliveries went (every row is attempted, even if one fails). Unless `at_once`,
        the rows wait a moment for other outcomes to share their transactions."""
        rows = [
            {
                "PartitionKey": _recipient_partition(notification_id, done.recipient),
                "RowKey": recipient_key(done.recipient),
                **_recipient_fields(done.recipient),
                "state": done.state,
                "status": done.status or 0,
                "attempts": done.attempts,
                "throttled": done.throttled,
                "detail": done.detail[:1000],
                "updatedAt": now,
            }
            for done in outcomes
        ]
        # Together with the outcomes of other batches of this notification, in transactions.
        await self._outcomes.write(rows, at_once=at_once)

    # status

    async def status(self, notification_id: str, *, detail: bool = False, limit: int = 1000) -> dict[str, Any] | None:
        header = await self.header(notification_id)
        if header is None:
            return None
        counts = {"sent": 0, "failed": 0, "gone": 0, "skipped": 0, "unconfirmed": 0, "retrying": 0, "sending": 0}
        throttled = 0
        recipients: list[dict[str, Any]] = []
        # Every shard: the partitions from "<id>%S" up to (not including) "<id>%T".
        query = "PartitionKey gt @lo and PartitionKey lt @hi"
        key = table_key(notification_id)
        params = {"lo": key + _SHARD, "hi": key + _AFTER_SHARDS}
        select = None if detail else ["state", "throttled"]
        async for row in self._table.query_entities(query, parameters=params, select=select):
            state = row.get("state", "")
            counts["retrying" if state == "retry" else state] = counts.get("retrying" if state == "retry" else state, 0) + 1
            throttled += int(row.get("throttled", 0))
            if detail and len(recipients) < limit:
                recipients.append(_public_row(row))
        settled = sum(counts[s] for s in FINAL_STATES)
        total = max(header.recipients, settled + counts["retrying"] + counts["sending"])
        pending = total - settled
        state = "done" if header.planned and pending == 0 else ("delivering" if header.recipients or settled else "accepted")
        result: dict[str, Any] = {
            "id": header.notification.id,
            "state": state,
            "to": header.notification.to,
            "createdAt": header.created_at.isoformat(),
            "counts": {
                "recipients": total,
                "sent": counts["sent"],
                "failed": counts["failed"],
                "gone": counts["gone"],
                "skipped": counts["skipped"],
                "unconfirmed": counts["unconfirmed"],
                "pending": pending,
                "throttledRetries": throttled,
            },
        }
        if header.note:
            result["note"] = header.note
        if detail:
            result["recipients"] = recipients
        return result


def _recipient_fields(recipient: StoredReference) -> dict[str, Any]:
    return {
        "channelId": recipient.channel_id,
        "conversationId": recipient.conversation_id,
        "userId": recipient.user_id,
    }


def _public_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "channelId": row.get("channelId"),
        "conversationId": row.get("conversationId"),
        "userId": row.get("userId"),
        "state": "retrying" if row.get("state") == "retry" else row.get("state"),
        "attempts": int(row.get("attempts", 0)),
        "throttled": int(row.get("throttled", 0)),
        "status": int(row.get("status", 0)) or None,
        "detail": row.get("detail", ""),
        "updatedAt": row["updatedAt"].isoformat() if isinstance(row.get("updatedAt"), datetime) else None,
    }


def settled(recipient: StoredReference, claim: Claim, result: Result) -> Settled:
    """The row a delivery result leads to, counting what earlier deliveries tried."""
    attempts = claim.attempts + result.attempts
    if result.outcome is Outcome.SENT:
        state = "sent"
    elif result.outcome is Outcome.GONE:
        state = "gone"
    elif result.retryable and attempts < MAX_ATTEMPTS:
        state = "retry"
    else:
        state = "failed"
    return Settled(recipient, state, attempts, claim.throttled + result.throttled, result.status, result.detail)
