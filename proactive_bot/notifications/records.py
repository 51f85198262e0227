"""Notification records: what became of each notification, recipient by recipient.

Each notification in the `NotificationsTable`:

    PartitionKey      RowKey            holds
    <id>              notification      the document, when it came, how many recipients, the cursor
    <id>%S<shard>     r|<recipient>     one delivery: sending / sent / gone / failed / skipped /
                                        unconfirmed / retry / cancelled / expired / recalled;
                                        a sent one keeps the activity id the channel gave it, the
                                        content version it shows and when it was read

A Teams user in a personal chat, or known from a roster before any chat exists, is keyed by
their Teams user id (`r|u|<29:...>`), so they are one recipient however the bot reaches them;
every other recipient by its conversation. A list of aadObjectIds is kept in `audience|NNNN`
rows of the header's partition. A recipient's shard follows from the recipient alone, so every
delivery of it finds the same row.
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
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from .. import clock
from ..delivery.outcome import Outcome, Result
from ..delivery.retries import NOTIFICATIONS
from ..storage.batching import CoalescedWrites, Write
from ..storage.keys import table_key
from .contract import Notification

log = logging.getLogger(__name__)

_HEADER = "notification"
_AUDIENCE = "audience|"
AUDIENCE_ROW_IDS = 700  # aadObjectIds per row: ~28K characters, under a property's 32K
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
    CANCELLED = "cancelled"  # never sent: the notification was cancelled first
    EXPIRED = "expired"  # never sent: not reached before expiresAt
    RECALLED = "recalled"  # sent, then deleted from its conversation

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def public(self) -> str:
        return "retrying" if self is RecipientState.RETRY else self.value


_FINAL = frozenset(
    {
        RecipientState.SENT,
        RecipientState.GONE,
        RecipientState.FAILED,
        RecipientState.SKIPPED,
        RecipientState.UNCONFIRMED,
        RecipientState.CANCELLED,
        RecipientState.EXPIRED,
        RecipientState.RECALLED,
    }
)


class NotificationState(enum.Enum):
    SCHEDULED = "scheduled"  # waits for its notBefore
    ACCEPTED = "accepted"  # recorded, nobody found yet
    DELIVERING = "delivering"
    DONE = "done"  # every recipient known and settled
    CANCELLED = "cancelled"  # DELETE: the rest never sent, the reached recalled


class Change(enum.Enum):
    """How the last edit or recall of a sent row ended, when it did not succeed."""

    UNSUPPORTED = "unsupported"  # the channel cannot change sent messages (405): never retried
    FAILED = "failed"  # given up after the retry policy


class Verdict(enum.Enum):
    """What a claim found."""

    CLAIMED = "claimed"  # ours to send
    DONE = "done"  # settled: never send again
    BUSY = "busy"  # held by another sender (or vanished meanwhile): look again later


@dataclass(frozen=True)
class Header:
    notification: Notification  # as it now reads: its latest edit applied
    created_at: datetime
    recipients: int
    planned: bool  # every recipient is known (a broadcast has walked its whole audience)
    cursor: dict[str, str] | None
    pages: int
    note: str
    etag: str
    original: Notification | None = None  # as first recorded (what a repeated POST is compared with)
    version: int = 0  # of the content: 0 as sent first, +1 per edit
    cancelled_at: datetime | None = None  # DELETE asked

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    audience: int = 0  # how many aadObjectIds are stored apart (`NotificationStore.audience`)


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

    recipient: Recipient
    state: RecipientState
    attempts: int = 0
    throttled: int = 0
    status: int | None = None
    detail: str = ""
    resends: int = 0
    claimed_at: datetime | None = None  # of the last attempt
    activity_id: str | None = None  # SENT: the channel's id of what it shows
    version: int = 0  # SENT: the content version sent
    chat_created: bool = False  # the bot created the recipient's 1:1 chat for this notification
    conversation: str = ""  # where it went, if not the recipient's own (a created chat or thread)


def settled(recipient: Recipient, claim: Claim, result: Result, *, whole_run: bool = False) -> Settled:
    """The row a delivery result leads to; whether to try again is the notifications' retry
    policy (delivery.retries.NOTIFICATIONS).

    Attempts are counted from the claim: by default `result` is the one attempt made under it
    (earlier ones were released with their counts, see fanout._Claimant); `whole_run`: every attempt
    `result` reports was made under this one claim."""
    attempts = claim.attempts + (result.attempts if whole_run else 1)
    if result.outcome is Outcome.SENT:
        state = RecipientState.SENT
    elif result.outcome is Outcome.GONE:
        state = RecipientState.GONE
    elif result.retryable and not NOTIFICATIONS.exhausted(attempts):
        state = RecipientState.RETRY
    else:
        state = RecipientState.FAILED
    throttled = claim.throttled + (result.throttled if whole_run else result.outcome is Outcome.THROTTLED)
    return Settled(
        recipient,
        state,
        attempts,
        throttled,
        result.status,
        result.detail,
        claim.resends,
        claim.claimed_at,
        activity_id=result.activity_id,
    )


class Recipient(Protocol):
    """Whom a row is about: a stored conversation, or a Teams user known from a roster whose
    chat may not exist yet (teams.roster.RosterMember)."""

    channel_id: str
    conversation_id: str
    user_id: str

    @property
    def teams_user(self) -> str: ...


def recipient_key(recipient: Recipient) -> str:
    # A Teams user is one recipient whether the bot reaches them through the chat they started,
    # a chat the bot created, or the roster before any chat exists.
    if recipient.teams_user:
        return _RECIPIENT + "u|" + table_key(recipient.teams_user)
    return conversation_key(recipient.channel_id, recipient.conversation_id)


def conversation_key(channel_id: str, conversation_id: str) -> str:
    # Length-prefixed so that no two (channel, conversation) pairs give the same key.
    return _RECIPIENT + table_key(f"{len(channel_id)}:{channel_id}{conversation_id}")


def shard_of(recipient: Recipient) -> int:
    """Which of a notification's recipient partitions holds this recipient's row."""
    return _shard_of_key(recipient_key(recipient))


def conversation_shard(channel_id: str, conversation_id: str) -> int:
    """The shard of a conversation's rows (shard_of, from the ids alone)."""
    return _shard_of_key(conversation_key(channel_id, conversation_id))


def _shard_of_key(key: str) -> int:
    return zlib.crc32(key.encode("utf-8")) % SHARDS


def _recipient_partition(notification_id: str, recipient: Recipient) -> str:
    return shard_partition(notification_id, shard_of(recipient))


def shard_partition(notification_id: str, shard: int) -> str:
    # table_key never writes "%S" (it escapes "%" itself), so no notification id's own
    # partition can look like another's shard.
    return f"{table_key(notification_id)}{_SHARD}{shard:02d}"


def row_address(notification_id: str, recipient: Recipient) -> tuple[str, str]:
    """(PartitionKey, RowKey) of a notification's row for one recipient."""
    return _recipient_partition(notification_id, recipient), recipient_key(recipient)


class NotificationStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table
        # A claim waits for its window before its send may leave, so that one is short; outcomes
        # are written after the send and can wait for more company.
        self._creates = CoalescedWrites(table, Write.CREATE, window=CLAIM_WINDOW)
        self._outcomes = CoalescedWrites(table, Write.UPSERT, window=SETTLE_WINDOW)

    # header

    async def create(self, notification: Notification, now: datetime, source: str) -> Header:
        """Record a new notification, or return the existing record of the same id.

        A list of aadObjectIds (up to 10,000: more than a table property holds) is stored in
        rows of its own beside the header, in the same transaction; the header's document
        keeps the list empty.
        """
        ids: list[str] = list(notification.to.get("aadObjectIds") or [])
        entity = {
            "PartitionKey": table_key(notification.id),
            "RowKey": _HEADER,
            "document": json.dumps(_without_audience(notification.document()), ensure_ascii=False),
            "audience": len(ids),
            "createdAt": now,
            "source": source,
            "recipients": 0,
            "planned": False,
            "cursor": "",
            "pages": 0,
            "note": "",
        }
        rows = [
            {
                "PartitionKey": entity["PartitionKey"],
                "RowKey": f"{_AUDIENCE}{n:04d}",
                "ids": json.dumps(ids[start : start + AUDIENCE_ROW_IDS], separators=(",", ":")),
            }
            for n, start in enumerate(range(0, len(ids), AUDIENCE_ROW_IDS))
        ]
        try:
            if rows:
                await self._table.submit_transaction([("create", e) for e in [entity, *rows]])
            else:
                await self._table.create_entity(entity)
        except (ResourceExistsError, TableTransactionError) as error:
            if isinstance(error, TableTransactionError) and error.error_code != "EntityAlreadyExists":
                raise
            existing = await self.header(notification.id)
            first = existing.original if existing is not None else None
            if first is not None and first.document() != _without_audience(notification.document()):
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
        original = Notification.from_document(json.loads(entity["document"]))
        current = original
        if entity.get("edit"):
            edit = json.loads(entity["edit"])
            current = original.edited(edit.get("text"), edit.get("attachments"))
        cancelled_at = entity.get("cancelledAt")
        return Header(
            notification=current,
            original=original,
            version=int(entity.get("version", 0)),
            cancelled_at=cancelled_at if isinstance(cancelled_at, datetime) else None,
            created_at=entity["createdAt"],
            recipients=int(entity.get("recipients", 0)),
            planned=bool(entity.get("planned", False)),
            cursor=json.loads(entity["cursor"]) if entity.get("cursor") else None,
            pages=int(entity.get("pages", 0)),
            note=entity.get("note", ""),
            etag=entity.metadata["etag"],
            audience=int(entity.get("audience", 0)),
        )

    async def cancelled(self, notification_id: str) -> bool:
        """Whether a DELETE has marked it (or its record is gone): the one property, not the
        document, for the cancel check every claim transaction makes (fanout.Cancellation)."""
        try:
            entity = await self._table.get_entity(table_key(notification_id), _HEADER, select=["cancelledAt"])
        except ResourceNotFoundError:
            return True
        return isinstance(entity.get("cancelledAt"), datetime)

    async def audience(self, notification_id: str) -> list[str]:
        """The aadObjectIds a notification names, as stored beside its header."""
        ids: list[str] = []
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": table_key(notification_id), "lo": _AUDIENCE, "hi": _AUDIENCE[:-1] + "}"}
        async for entity in self._table.query_entities(query, parameters=params):
            ids.extend(json.loads(entity["ids"]))
        return ids

    async def advance(
        self, header: Header, *, found: int, cursor: dict[str, str] | None, planned: bool, note: str = ""
    ) -> Header | None:
        """Move a walk on from where `header` left it (its cursor, count and plan); returns the
        record as it now stands. None: another writer moved the walk first (a redelivered page
        message, say), or the notification was cancelled. A write that did not move the walk (an
        edit) does not stop it: the move is made again on the record as it now reads."""
        while True:
            moves = {
                "recipients": header.recipients + found,
                "planned": planned,
                "pages": header.pages + 1,
                "note": note or header.note,
            }
            fields = {**moves, "cursor": json.dumps(cursor) if cursor else ""}
            moved = await self._merge_header(header, fields, cursor=cursor, **moves)
            if moved is not None:
                return moved
            current = await self.header(header.notification.id)
            if (
                current is None
                or current.cancelled
                or (current.pages, current.planned) != (header.pages, header.planned)
            ):
                return None
            header = current

    async def cancel(self, header: Header, now: datetime) -> Header | None:
        """Mark the notification cancelled, if nobody wrote it since `header` was read."""
        return await self._merge_header(header, {"cancelledAt": now}, cancelled_at=now)

    async def edit(self, header: Header, text: str | None, attachments: list[dict[str, Any]] | None) -> Header | None:
        """Its next content version, if nobody wrote it since `header` was read."""
        edited = header.notification.edited(text, attachments)
        content: dict[str, Any] = {"text": edited.text, "attachments": edited.attachments}
        return await self._merge_header(
            header,
            {"edit": json.dumps(content, ensure_ascii=False), "version": header.version + 1},
            notification=edited,
            version=header.version + 1,
        )

    async def _merge_header(self, header: Header, fields: dict[str, Any], **changes: Any) -> Header | None:
        entity = {"PartitionKey": table_key(header.notification.id), "RowKey": _HEADER, **fields}
        try:
            written = await self._table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=header.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return None
        return dataclasses.replace(header, etag=written["etag"], **changes)

    # one recipient

    async def claim(
        self, notification_id: str, recipient: Recipient, now: datetime, *, resend_on_crash: bool = False
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
            settled = {
                **existing,
                "state": RecipientState.UNCONFIRMED.value,
                "updatedAt": now,
                "detail": "sender stopped mid-send",
            }
            await self._replace_if_unchanged(settled, existing)
            return Claim(Verdict.DONE)
        if state is RecipientState.SENDING:
            resends += 1  # onCrash "resend": at least once, by the producer's choice
        # RETRY (a delivery ran out of time, released it, or an operator asked for a resend), or
        # a crashed send to repeat: take it back under its ETag, keeping its counts.
        retaken = {
            **existing,
            "state": RecipientState.SENDING.value,
            "leaseUntil": now + SEND_LEASE,
            "claimedAt": now,
            "resends": resends,
            "updatedAt": now,
        }
        if not await self._replace_if_unchanged(retaken, existing):
            return Claim(Verdict.BUSY)
        return Claim(Verdict.CLAIMED, int(existing.get("attempts", 0)), int(existing.get("throttled", 0)), resends, now)

    async def row(self, notification_id: str, recipient: Recipient) -> RecipientRow | None:
        """One recipient's row, by its key (None: no delivery to them has begun)."""
        try:
            entity = await self._table.get_entity(*row_address(notification_id, recipient))
        except ResourceNotFoundError:
            return None
        return _row(entity, RecipientState(entity.get("state")))

    async def hand_out_again(self, notification_id: str, state: RecipientState, now: datetime) -> list[RecipientRow]:
        """An operator's resend: every row in `state` (unconfirmed) becomes RETRY, one resend more,
        each under its ETag (so two concurrent resends hand a row out once). Returns those rows;
        the caller queues their deliveries."""
        # Spaces around every @name: the SDK finds parameters by splitting on whitespace.
        query = "PartitionKey gt @lo and PartitionKey lt @hi and ( state eq @state"
        key = table_key(notification_id)
        params: dict[str, Any] = {"lo": key + _SHARD, "hi": key + _AFTER_SHARDS, "state": state.value}
        if state is RecipientState.UNCONFIRMED:
            # A row still `sending` past its lease is unconfirmed too (the status says so), even
            # if no delivery has come by since to write it down as such.
            query += " or ( state eq @sending and leaseUntil lt @now )"
            params.update(sending=RecipientState.SENDING.value, now=now)
        query += " )"
        taken = []
        async for entity in self._table.query_entities(query, parameters=params):
            again = {
                **entity,
                "state": RecipientState.RETRY.value,
                "resends": int(entity.get("resends", 0)) + 1,
                "detail": f"resend requested ({state.public})",
                "updatedAt": now,
            }
            if await self._replace_if_unchanged(again, entity):
                taken.append(_row(again, RecipientState.RETRY))
        return taken

    async def _replace_if_unchanged(self, entity: dict[str, Any], read: Any) -> bool:
        try:
            await self._table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=read.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
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
                "chatCreated": done.chat_created,
                **({"conversationId": done.conversation} if done.conversation else {}),
                "updatedAt": now,
                **({"claimedAt": done.claimed_at} if done.claimed_at else {}),
                **_sent_fields(done),
            }
            for done in outcomes
        ]
        # Together with the outcomes of other batches of this notification, in transactions.
        await self._outcomes.write(rows, at_once=at_once)

    # sent rows: edits, recalls, read receipts (the logic is in lifecycle.py and receipts.py)

    def shard_rows(self, notification_id: str, shard: int) -> Any:
        """Every row of one shard (with ETags), for an edit or recall to walk."""
        query = "PartitionKey eq @pk"
        return self._table.query_entities(query, parameters={"pk": shard_partition(notification_id, shard)})

    async def take(self, row: Any, now: datetime, lease: timedelta) -> Any | None:
        """Hold a sent row for one edit or recall: a merge under its ETag. None: someone else has it."""
        try:
            written = await self._table.update_entity(
                {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "changeUntil": now + lease},
                mode=UpdateMode.MERGE,
                etag=row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return written["etag"]

    async def mark(self, row: Any, fields: dict[str, Any], etag: str | None = None) -> bool:
        """Merge fields into a row (under `etag` if given); False if it changed or is gone."""
        entity = {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], **fields}
        try:
            if etag is None:
                await self._table.update_entity(entity, mode=UpdateMode.MERGE)
            else:
                await self._table.update_entity(
                    entity, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def sending(self, notification_id: str, now: datetime) -> bool:
        """Whether any of its rows is being sent right now (claimed, lease running; a row whose
        lease ran out belongs to a sender that died, and is reported unconfirmed). The first one
        found answers: a DELETE polls this while a broadcast's sends land, so no more pages."""
        query = "PartitionKey gt @lo and PartitionKey lt @hi and state eq @state and leaseUntil gt @now"
        key = table_key(notification_id)
        params = {"lo": key + _SHARD, "hi": key + _AFTER_SHARDS, "state": RecipientState.SENDING.value, "now": now}
        async for _ in self._table.query_entities(query, parameters=params, select=["state"]):
            return True
        return False

    # status

    async def status(self, notification_id: str, *, detail: bool = False, limit: int = 1000) -> Status | None:
        """What became of a notification: counts by state, and its rows (`detail`, up to `limit`)."""
        header = await self.header(notification_id)
        if header is None:
            return None
        counts = {state: 0 for state in RecipientState}
        flags = {"read": 0, "updated": 0, "unsupported": 0, "stale": 0, "resent": 0}
        throttled = 0
        rows: list[RecipientRow] = []
        # Every shard: the partitions from "<id>%S" up to (not including) "<id>%T".
        query = "PartitionKey gt @lo and PartitionKey lt @hi"
        key = table_key(notification_id)
        params = {"lo": key + _SHARD, "hi": key + _AFTER_SHARDS}
        select = (
            None
            if detail
            else ["state", "throttled", "readAt", "editedAt", "change", "version", "leaseUntil", "resends"]
        )
        now = clock.now()
        async for entity in self._table.query_entities(query, parameters=params, select=select):
            state = RecipientState(entity.get("state"))
            lease = entity.get("leaseUntil")
            if state is RecipientState.SENDING and isinstance(lease, datetime) and lease <= now:
                state = RecipientState.UNCONFIRMED  # its sender died mid-send; a claim would say so too
            counts[state] += 1
            throttled += int(entity.get("throttled", 0))
            flags["read"] += entity.get("readAt") is not None
            flags["updated"] += entity.get("editedAt") is not None
            flags["unsupported"] += entity.get("change") == Change.UNSUPPORTED.value
            flags["resent"] += int(entity.get("resends", 0)) > 0
            # Sent rows an edit or recall has yet to reach (or gave up on: not pending then).
            flags["stale"] += (
                state is RecipientState.SENT
                and not entity.get("change")
                and (header.cancelled or int(entity.get("version", 0)) < header.version)
            )
            if detail and len(rows) < limit:
                rows.append(_row(entity, state))
        return Status(
            header,
            counts,
            throttled,
            rows if detail else None,
            read=flags["read"],
            updated=flags["updated"],
            unsupported=flags["unsupported"],
            changing=flags["stale"],
            scheduled=header.notification.scheduled(now),
            resent=flags["resent"],
        )


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
    activity_id: str | None = None
    version: int = 0
    read_at: datetime | None = None
    edited_at: datetime | None = None
    recalled_at: datetime | None = None
    change: str = ""  # unsupported / failed: how the last edit or recall ended, if not well
    chat_created: bool = False


@dataclass(frozen=True)
class Status:
    header: Header
    counts: dict[RecipientState, int]
    throttled: int  # 429s met, over every attempt
    rows: list[RecipientRow] | None  # with detail
    resent: int = 0  # recipients handed out again after an unconfirmed send
    read: int = 0  # rows with a read receipt
    updated: int = 0  # rows an edit reached
    unsupported: int = 0  # rows whose channel cannot edit or delete
    changing: int = 0  # sent rows an edit or recall is still to reach
    scheduled: bool = False  # its notBefore is still ahead

    @property
    def recipients(self) -> int:
        """Known so far: the walk's count, or the rows if a redelivery wrote more."""
        return max(self.header.recipients, sum(self.counts.values()))

    @property
    def cancelled(self) -> int:
        """Never sent because of a DELETE: rows so marked, and (once cancelled) recipients the
        walk found but no delivery reached, or that waited for a retry."""
        if not self.header.cancelled:
            return self.counts[RecipientState.CANCELLED]
        unreached = self.header.recipients - sum(self.counts.values())
        return self.counts[RecipientState.CANCELLED] + self.counts[RecipientState.RETRY] + max(0, unreached)

    @property
    def pending(self) -> int:
        """Deliveries still to settle, and edits or recalls still to reach sent rows."""
        if self.header.cancelled:
            return self.counts[RecipientState.SENDING] + self.changing
        return self.recipients - sum(n for state, n in self.counts.items() if state.final) + self.changing

    @property
    def state(self) -> NotificationState:
        if self.header.cancelled:
            return NotificationState.CANCELLED
        settled = any(n for state, n in self.counts.items() if state.final)
        if self.scheduled and not (self.header.recipients or settled or self.header.pages):
            return NotificationState.SCHEDULED
        if self.header.planned and self.pending == 0:
            return NotificationState.DONE
        return NotificationState.DELIVERING if self.header.recipients or settled else NotificationState.ACCEPTED


def _without_audience(document: dict[str, Any]) -> dict[str, Any]:
    to = document.get("to") or {}
    if "aadObjectIds" not in to:
        return document
    return {**document, "to": {**to, "aadObjectIds": []}}


def _recipient_fields(recipient: Recipient) -> dict[str, Any]:
    return {
        "channelId": recipient.channel_id,
        "conversationId": recipient.conversation_id,
        "userId": recipient.user_id,
    }


def _sent_fields(done: Settled) -> dict[str, Any]:
    """What an edit, a recall and a read receipt need of a sent row: the activity's id, the
    content version it shows, and the address to change it at."""
    if done.state is not RecipientState.SENT:
        return {}
    # A channel post's row names the channel, not an address to change the post at: its edits
    # and recalls end as unsupported.
    reference = getattr(done.recipient, "reference", None)
    return {
        "activityId": done.activity_id or "",
        "version": done.version,
        **({"reference": json.dumps(reference, ensure_ascii=False)} if reference is not None else {}),
    }


def _moment(entity: dict[str, Any], name: str) -> datetime | None:
    value = entity.get(name)
    return value if isinstance(value, datetime) else None


def _row(entity: dict[str, Any], state: RecipientState) -> RecipientRow:
    updated = entity.get("updatedAt")
    return RecipientRow(
        activity_id=entity.get("activityId") or None,
        version=int(entity.get("version", 0)),
        read_at=_moment(entity, "readAt"),
        edited_at=_moment(entity, "editedAt"),
        recalled_at=_moment(entity, "recalledAt"),
        change=entity.get("change", ""),
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
        chat_created=bool(entity.get("chatCreated", False)),
    )
