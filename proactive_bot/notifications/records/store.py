"""The notification records' I/O: the one class that reads and writes their rows
(`NotificationStore`, with its parts for sent rows, changes.py, and for counting, counting.py).

Every write has a name (create, advance, cancel, edit, claim, settle, hand out again, lease for
a change, mark recalled / edited / read / change failed, recount); what is written where follows keys.py,
what a row's state means states.py, and what is read comes back typed (rows.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from ...storage.batching import CoalescedWrites, Write
from ...storage.outage import StorageGate, probe_of
from ..audience import ToAadUsers, audience_of
from ..contract import Notification
from .changes import SentRowWrites
from .counting import Counting
from .entities import recipient_fields, sent_fields
from .keys import (
    AUDIENCE,
    AUDIENCE_ROW_IDS,
    HEADER,
    Recipient,
    header_partition,
    recipient_key,
    row_address,
    shards_range,
)
from .rows import Header, RecipientRow, claim_of, recipient_row
from .states import SEND_LEASE, Claim, Found, RecipientState, Settled, Verdict, on_existing_row

log = logging.getLogger(__name__)

CLAIM_WINDOW = 0.05  # seconds a claim waits for others to share its transaction
SETTLE_WINDOW = 0.25  # the same for outcomes


class NotificationStore(Counting, SentRowWrites):
    def __init__(self, table: TableClient, gate: StorageGate | None = None) -> None:
        self._table = table
        # Claims, outcomes and the reads a claim makes wait while storage is away (storage/outage.py).
        self._gate = gate or StorageGate(probe_of(table), patience=SEND_LEASE.total_seconds())
        # A claim waits for its window before its send may leave, so that one is short; outcomes
        # are written after the send and can wait for more company.
        self._creates = CoalescedWrites(table, Write.CREATE, window=CLAIM_WINDOW, gate=self._gate)
        self._outcomes = CoalescedWrites(table, Write.UPSERT, window=SETTLE_WINDOW, gate=self._gate)

    @property
    def gate(self) -> StorageGate:
        """Whether storage answers, and a way to wait until it does: shared with the writes that
        go with these rows (read receipts' index)."""
        return self._gate

    # header

    async def create(self, notification: Notification, now: datetime, source: str) -> Header:
        """Record a new notification, or return the existing record of the same id.

        A list of aadObjectIds (up to 10,000: more than a table property holds) is stored in
        rows of its own beside the header, in the same transaction; the header's document
        keeps the list empty.
        """
        audience = audience_of(notification.to)
        ids = list(audience.aad_object_ids) if isinstance(audience, ToAadUsers) else []
        entity = {
            "PartitionKey": header_partition(notification.id),
            "RowKey": HEADER,
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
                "RowKey": f"{AUDIENCE}{n:04d}",
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
            if isinstance(error, TableTransactionError) and getattr(error, "error_code", None) != "EntityAlreadyExists":
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

    async def stopped(self, notification_id: str) -> bool:
        """Whether no more of it may be sent: a DELETE has marked it, or its record is gone. The
        one property, not the document, for the check every claim transaction makes."""
        try:
            entity = await self._gate.persist(
                lambda: self._table.get_entity(header_partition(notification_id), HEADER, select=["cancelledAt"])
            )
        except ResourceNotFoundError:
            return True
        return isinstance(entity.get("cancelledAt"), datetime)

    async def audience(self, notification_id: str) -> list[str]:
        """The aadObjectIds a notification names, as stored beside its header."""
        ids: list[str] = []
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        params = {"pk": header_partition(notification_id), "lo": AUDIENCE, "hi": AUDIENCE[:-1] + "}"}
        async for entity in self._table.query_entities(query, parameters=params):
            ids.extend(json.loads(entity["ids"]))
        return ids

    async def advance(
        self,
        header: Header,
        *,
        found: int,
        cursor: dict[str, str] | None,
        planned: bool,
        note: str = "",
        pages: int = 1,
    ) -> Header | None:
        """Move a walk on from where `header` left it (its cursor, count and plan); returns the
        record as it now stands. None: another writer moved the walk first (a redelivered page
        message, say), or the notification was cancelled. A write that did not move the walk (an
        edit) does not stop it: the move is made again on the record as it now reads."""
        while True:
            moves = {
                "recipients": header.recipients + found,
                "planned": planned,
                "pages": header.pages + pages,
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

    async def edit(
        self, header: Header, text: str | dict[str, str] | None, attachments: list[dict[str, Any]] | None
    ) -> Header | None:
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
        entity = {"PartitionKey": header_partition(header.notification.id), "RowKey": HEADER, **fields}
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
        partition, key = row_address(notification_id, recipient)
        # Whose claim a row is: a claim tried again after storage dropped the connection may
        # find the row its first try wrote, and must know it as its own (not someone else's send).
        token = uuid.uuid4().hex
        entity = {
            "PartitionKey": partition,
            "RowKey": key,
            **recipient_fields(recipient),
            "state": RecipientState.SENDING.value,
            "leaseUntil": now + SEND_LEASE,
            "claimedAt": now,
            "claimToken": token,
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
        existing = await self._claimed_row(partition, key)
        if existing is None:
            return Claim(Verdict.BUSY)  # vanished between the two calls; look again later
        if existing.get("claimToken") == token:
            return claim_of(existing)
        lease = existing.get("leaseUntil")
        found = on_existing_row(
            RecipientState(existing.get("state")),
            lease if isinstance(lease, datetime) else None,
            now,
            resend_on_crash=resend_on_crash,
        )
        if found is Found.DONE:
            return Claim(Verdict.DONE)
        if found is Found.BUSY:
            return Claim(Verdict.BUSY)
        if found is Found.UNCONFIRMED:
            # Its sender died after claiming: the message may or may not have left. We do not
            # send it again (a duplicate is what this record exists to prevent); it is reported.
            unconfirmed = {
                **existing,
                "state": RecipientState.UNCONFIRMED.value,
                "updatedAt": now,
                "detail": "sender stopped mid-send",
            }
            await self._gate.persist(lambda: self._replace_if_unchanged(unconfirmed, existing))
            return Claim(Verdict.DONE)
        resends = int(existing.get("resends", 0)) + (found is Found.RESEND)  # onCrash "resend": at least once
        # RETRY (a delivery ran out of time, released it, or an operator asked for a resend), or
        # a crashed send to repeat: take it back under its ETag, keeping its counts.
        retaken = {
            **existing,
            "state": RecipientState.SENDING.value,
            "leaseUntil": now + SEND_LEASE,
            "claimedAt": now,
            "claimToken": token,
            "resends": resends,
            "updatedAt": now,
        }
        if not await self._gate.persist(lambda: self._replace_if_unchanged(retaken, existing)):
            # Lost to another sender, or our own write landed and its answer did not.
            again = await self._claimed_row(partition, key)
            return claim_of(again) if again is not None and again.get("claimToken") == token else Claim(Verdict.BUSY)
        return Claim(Verdict.CLAIMED, int(existing.get("attempts", 0)), int(existing.get("throttled", 0)), resends, now)

    async def _claimed_row(self, partition: str, key: str) -> Any:
        try:
            return await self._gate.persist(lambda: self._table.get_entity(partition, key))
        except ResourceNotFoundError:
            return None

    async def row(self, notification_id: str, recipient: Recipient) -> RecipientRow | None:
        """One recipient's row, by its key (None: no delivery to them has begun)."""
        try:
            entity = await self._table.get_entity(*row_address(notification_id, recipient))
        except ResourceNotFoundError:
            return None
        return recipient_row(entity)

    async def hand_out_again(self, notification_id: str, state: RecipientState, now: datetime) -> list[RecipientRow]:
        """An operator's resend: every row in `state` (unconfirmed) becomes RETRY, one resend more,
        each under its ETag (so two concurrent resends hand a row out once). Returns those rows;
        the caller queues their deliveries."""
        # Spaces around every @name: the SDK finds parameters by splitting on whitespace.
        query = "PartitionKey gt @lo and PartitionKey lt @hi and ( state eq @state"
        params: dict[str, Any] = {**shards_range(notification_id), "state": state.value}
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
                taken.append(recipient_row(again))
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
                "PartitionKey": row_address(notification_id, done.recipient)[0],
                "RowKey": recipient_key(done.recipient),
                **recipient_fields(done.recipient),
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
                **sent_fields(done),
            }
            for done in outcomes
        ]
        # Together with the outcomes of other batches of this notification, in transactions.
        await self._outcomes.write(rows, at_once=at_once)

    async def sending(self, notification_id: str, now: datetime) -> bool:
        """Whether any of its rows is being sent right now (claimed, lease running; a row whose
        lease ran out belongs to a sender that died, and is reported unconfirmed). The first one
        found answers: a DELETE polls this while a broadcast's sends land, so no more pages."""
        query = "PartitionKey gt @lo and PartitionKey lt @hi and state eq @state and leaseUntil gt @now"
        params = {**shards_range(notification_id), "state": RecipientState.SENDING.value, "now": now}
        async for _ in self._table.query_entities(query, parameters=params, select=["state"]):
            return True
        return False


def _without_audience(document: dict[str, Any]) -> dict[str, Any]:
    to = document.get("to") or {}
    if "aadObjectIds" not in to:
        return document
    return {**document, "to": {**to, "aadObjectIds": []}}
