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

import dataclasses
import enum
import json
import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ..references import StoredReference
from ..storage.batching import CoalescedWrites, Write
from ..storage.keys import table_key
from .contract import Notification

log = logging.getLogger(__name__)

_HEADER = "notification"
_RECIPIENT = "r|"
_SHARD = "%S"
_AFTER_SHARDS = "%T"  # sorts after every "<id>%S.." partition and before any other id's
# A "sending" row older than this belongs to a sender that died mid-send.
SEND_LEASE = timedelta(minutes=2)
SHARDS = 8  # part of where rows live: change it only with no notification in flight
CLAIM_WINDOW = 0.05  # seconds a claim waits for others to share its transaction
SETTLE_WINDOW = 0.25  # the same for outcomes



class RecipientState(enum.Enum):
    """A recipient's row. The value is what the table stores; `public` is what the status says."""

    SENDING = "sending"  # claimed: its request is (or was, if its sender died) on the way
    SENT = "sent"
    GONE = "gone"  # 403/404, or the address was already inactive
    FAILED = "failed"  # given up
    SKIPPED = "skipped"  # opted out
    UNCONFIRMED = "unconfirmed"  # its sender died mid-send: it may or may not have arrived
    RETRY = "retry"  # this delivery ran out of time; a later one takes it back

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def public(self) -> str:
        return "retrying" if self is RecipientState.RETRY else self.value


_FINAL = frozenset({RecipientState.SENT, RecipientState.GONE, RecipientState.FAILED,
                    RecipientState.SKIPPED, RecipientState.UNCONFIRMED})


class NotificationState(enum.Enum):
    ACCEPTED = "accepted"  # recorded, nobody found yet
    DELIVERING = "delivering"
    DONE = "done"  # every recipient known and settled


class Verdict(enum.Enum):
    """What a claim found."""

    CLAIMED = "claimed"  # ours to send
    DONE = "done"  # settled: never send again
    BUSY = "busy"  # held by another sender (or vanished meanwhile): look again later


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

    verdict: Verdict
    attempts: int = 0
    throttled: int = 0
    resends: int = 0  # times the recipient was handed out again after an unconfirmed send
    claimed_at: datetime | None = None


@dataclass(frozen=True)
class Settled:
    """How one delivery ended, as its row records it."""

    recipient: StoredReference
    state: RecipientState
    attempts: int = 0
    throttled: int = 0
    status: int | None = None
    detail: str = ""
    resends: int = 0
    claimed_at: datetime | None = None  # of the last attempt


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


class NotificationStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table
        # A claim waits for its window before its send may leave, so that one is short; outcomes
        # are written after the send and can wait for more company.
        self._creates = CoalescedWrites(table, Write.CREATE, window=CLAIM_WINDOW)
        self._outcomes = CoalescedWrites(table, Write.UPSERT, window=SETTLE_WINDOW)

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
            notification=Notification.from_document(document),
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

    async def claim(
        self, notification_id: str, recipient: StoredReference, now: datetime, *, resend_on_crash: bool = False
    ) -> Claim:
        """Take the right to send to `recipient`, unless it was settled or is being sent.

        A row left `sending` past its lease belongs to a sender that died mid-request: it is
        settled `unconfirmed`, or (`resend_on_crash`) taken to be sent again.
        """
        entity = {
            "PartitionKey": _recipient_partition(notification_id, recipient),
            "RowKey": recipient_key(recipient),
            **_recipient_fields(recipient),
            "state": RecipientState.SENDING.value,
            "leaseUntil": now + SEND_LEASE,
            "claimedAt": now,
            "attempts": 0,
            "throttled": 0,
            "resends": 0,
            "updatedAt": now,
        }
        try:
            await self._creates.write([entity])
            return Claim(Verdict.CLAIMED, claimed_at=now)
        except ResourceExistsError:
            pass
        try:
            existing = await self._table.get_entity(entity["PartitionKey"], entity["RowKey"])
        except ResourceNotFoundError:
            return Claim(Verdict.BUSY)  # vanished between the two calls; look again later
        state = RecipientState(existing.get("state"))
        if state.final:
            return Claim(Verdict.DONE)
        if state is RecipientState.SENDING and existing["leaseUntil"] > now:
            return Claim(Verdict.BUSY)
        resends = int(existing.get("resends", 0))
        if state is RecipientState.SENDING and not resend_on_crash:
            # Its sender died after claiming: the message may or may not have left. We do not
            # send it again (a duplicate is what this record exists to prevent); it is reported.
            settled = {**existing, "state": RecipientState.UNCONFIRMED.value, "updatedAt": now,
                       "detail": "sender stopped mid-send"}
            await self._replace_if_unchanged(settled, existing)
            return Claim(Verdict.DONE)
        if state is RecipientState.SENDING:
            resends += 1  # onCrash "resend": at least once, by the producer's choice
        # RETRY (a delivery ran out of time, released it, or an operator asked for a resend), or
        # a crashed send to repeat: take it back under its ETag, keeping its counts.
        retaken = {**existing, "state": RecipientState.SENDING.value, "leaseUntil": now + SEND_LEASE,
                   "claimedAt": now, "resends": resends, "updatedAt": now}
        if not await self._replace_if_unchanged(retaken, existing):
            return Claim(Verdict.BUSY)
        return Claim(Verdict.CLAIMED, int(existing.get("attempts", 0)), int(existing.get("throttled", 0)), resends, now)

    async def hand_out_again(self, notification_id: str, state: RecipientState, now: datetime) -> list[RecipientRow]:
        """An operator's resend: every row in `state` (unconfirmed) becomes RETRY, one resend more,
        each under its ETag (so two concurrent resends hand a row out once). Returns those rows;
        the caller queues their deliveries."""
        query = "PartitionKey gt @lo and PartitionKey lt @hi and state eq @state"
        key = table_key(notification_id)
        params = {"lo": key + _SHARD, "hi": key + _AFTER_SHARDS, "state": state.value}
        taken = []
        async for entity in self._table.query_entities(query, parameters=params):
            again = {**entity, "state": RecipientState.RETRY.value, "resends": int(entity.get("resends", 0)) + 1,
                     "detail": f"resend requested ({state.public})", "updatedAt": now}
            if await self._replace_if_unchanged(again, entity):
                taken.append(_row(again, RecipientState.RETRY))
        return taken

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
                "state": done.state.value,
                "status": done.status or 0,
                "attempts": done.attempts,
                "throttled": done.throttled,
                "detail": done.detail[:1000],
                "resends": done.resends,
                "updatedAt": now,
                **({"claimedAt": done.claimed_at} if done.claimed_at else {}),
            }
            for done in outcomes
        ]
        # Together with the outcomes of other batches of this notification, in transactions.
        await self._outcomes.write(rows, at_once=at_once)

    # status

    async def status(self, notification_id: str, *, detail: bool = False, limit: int = 1000) -> Status | None:
        """What became of a notification: counts by state, and its rows (`detail`, up to `limit`)."""
        header = await self.header(notification_id)
        if header is None:
            return None
        counts = {state: 0 for state in RecipientState}
        throttled = resent = 0
        rows: list[RecipientRow] = []
        # Every shard: the partitions from "<id>%S" up to (not including) "<id>%T".
        query = "PartitionKey gt @lo and PartitionKey lt @hi"
        key = table_key(notification_id)
        params = {"lo": key + _SHARD, "hi": key + _AFTER_SHARDS}
        select = None if detail else ["state", "throttled", "resends"]
        async for entity in self._table.query_entities(query, parameters=params, select=select):
            state = RecipientState(entity.get("state"))
            counts[state] += 1
            throttled += int(entity.get("throttled", 0))
            resent += int(entity.get("resends", 0)) > 0
            if detail and len(rows) < limit:
                rows.append(_row(entity, state))
        return Status(header, counts, throttled, rows if detail else None, resent)


@dataclass(frozen=True)
class RecipientRow:
    """One recipient's delivery, as the status lists it."""

    channel_id: str
    conversation_id: str
    user_id: str
    state: RecipientState
    attempts: int
    throttled: int
    status: int | None
    detail: str
    updated_at: datetime | None
    claimed_at: datetime | None = None  # when its last attempt was claimed
    resends: int = 0


@dataclass(frozen=True)
class Status:
    header: Header
    counts: dict[RecipientState, int]
    throttled: int  # 429s met, over every attempt
    rows: list[RecipientRow] | None  # with detail
    resent: int = 0  # recipients handed out again after an unconfirmed send

    @property
    def recipients(self) -> int:
        """Known so far: the walk's count, or the rows if a redelivery wrote more."""
        return max(self.header.recipients, sum(self.counts.values()))

    @property
    def pending(self) -> int:
        return self.recipients - sum(n for state, n in self.counts.items() if state.final)

    @property
    def state(self) -> NotificationState:
        if self.header.planned and self.pending == 0:
            return NotificationState.DONE
        settled = any(n for state, n in self.counts.items() if state.final)
        return NotificationState.DELIVERING if self.header.recipients or settled else NotificationState.ACCEPTED


def _recipient_fields(recipient: StoredReference) -> dict[str, Any]:
    return {
        "channelId": recipient.channel_id,
        "conversationId": recipient.conversation_id,
        "userId": recipient.user_id,
    }


def _row(entity: dict[str, Any], state: RecipientState) -> RecipientRow:
    updated = entity.get("updatedAt")
    return RecipientRow(
        channel_id=entity.get("channelId", ""),
        conversation_id=entity.get("conversationId", ""),
        user_id=entity.get("userId", ""),
        state=state,
        attempts=int(entity.get("attempts", 0)),
        throttled=int(entity.get("throttled", 0)),
        status=int(entity.get("status", 0)) or None,
        detail=entity.get("detail", ""),
        updated_at=updated if isinstance(updated, datetime) else None,
        claimed_at=claimed if isinstance(claimed := entity.get("claimedAt"), datetime) else None,
        resends=int(entity.get("resends", 0)),
    )
