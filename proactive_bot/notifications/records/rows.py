"""The records' rows as the rest of the app sees them: typed, read from the table's entities.

Pure: the store (store.py) does the reading; these turn what it read into values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..contract import Notification
from .states import ChangeFailure, Claim, RecipientState, Verdict


@dataclass(frozen=True, kw_only=True)
class Header:
    """A notification's record: its document and the walk of its audience."""

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
    audience: int = 0  # how many aadObjectIds are stored apart (`NotificationStore.audience`)

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


@dataclass(frozen=True, kw_only=True)
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
    lease_until: datetime | None = None  # SENDING: when its sender counts as dead
    resends: int = 0
    activity_id: str | None = None
    version: int = 0
    read_at: datetime | None = None
    edited_at: datetime | None = None
    recalled_at: datetime | None = None
    change: str = ""  # unsupported / failed: how the last edit or recall ended, if it did not take
    chat_created: bool = False


@dataclass(frozen=True, kw_only=True)
class SentRow:
    """A recipient's row as an edit or recall walks it: where it is (with its ETag), and what a
    change needs to know of it."""

    partition: str
    key: str
    etag: str
    state: RecipientState
    lease_until: datetime | None
    channel_id: str
    conversation_id: str
    activity_id: str
    reference: dict[str, Any] | None  # where to change it (none: a channel post's row)
    version: int
    change: ChangeFailure | None  # how its last change ended, if it did not take
    change_of: str  # which change that was ("recall", "edit:<version>")
    change_until: datetime | None  # a change holds it until then
    change_attempts: int


def moment(entity: Any, name: str) -> datetime | None:
    value = entity.get(name)
    return value if isinstance(value, datetime) else None


def header_of(entity: Any) -> Header:
    original = Notification.from_document(json.loads(entity["document"]))
    current = original
    if entity.get("edit"):
        edit = json.loads(entity["edit"])
        current = original.edited(edit.get("text"), edit.get("attachments"))
    return Header(
        notification=current,
        original=original,
        version=int(entity.get("version", 0)),
        cancelled_at=moment(entity, "cancelledAt"),
        created_at=entity["createdAt"],
        recipients=int(entity.get("recipients", 0)),
        planned=bool(entity.get("planned", False)),
        cursor=json.loads(entity["cursor"]) if entity.get("cursor") else None,
        pages=int(entity.get("pages", 0)),
        note=entity.get("note", ""),
        etag=entity.metadata["etag"],
        audience=int(entity.get("audience", 0)),
    )


def recipient_row(entity: Any) -> RecipientRow:
    return RecipientRow(
        activity_id=entity.get("activityId") or None,
        version=int(entity.get("version", 0)),
        read_at=moment(entity, "readAt"),
        edited_at=moment(entity, "editedAt"),
        recalled_at=moment(entity, "recalledAt"),
        change=entity.get("change", ""),
        channel_id=entity.get("channelId", ""),
        conversation_id=entity.get("conversationId", ""),
        user_id=entity.get("userId", ""),
        state=RecipientState(entity.get("state")),
        attempts=int(entity.get("attempts", 0)),
        throttled=int(entity.get("throttled", 0)),
        status=int(entity.get("status", 0)) or None,
        detail=entity.get("detail", ""),
        updated_at=moment(entity, "updatedAt"),
        claimed_at=moment(entity, "claimedAt"),
        lease_until=moment(entity, "leaseUntil"),
        resends=int(entity.get("resends", 0)),
        chat_created=bool(entity.get("chatCreated", False)),
    )


def sent_row(entity: Any) -> SentRow:
    change = entity.get("change") or ""
    return SentRow(
        partition=entity["PartitionKey"],
        key=entity["RowKey"],
        etag=entity.metadata["etag"],
        state=RecipientState(entity.get("state")),
        lease_until=moment(entity, "leaseUntil"),
        channel_id=entity.get("channelId", ""),
        conversation_id=entity.get("conversationId", ""),
        activity_id=entity.get("activityId") or "",
        reference=json.loads(entity["reference"]) if entity.get("reference") else None,
        version=int(entity.get("version", 0)),
        change=ChangeFailure(change) if change in _CHANGE_FAILURES else None,
        change_of=entity.get("changeOf") or "",
        change_until=moment(entity, "changeUntil"),
        change_attempts=int(entity.get("changeAttempts", 0)),
    )


_CHANGE_FAILURES = frozenset(failure.value for failure in ChangeFailure)


def claim_of(row: Any) -> Claim:
    """The claim a row already records as this claimant's (its first try's write did land)."""
    claimed_at = row.get("claimedAt")
    return Claim(
        Verdict.CLAIMED,
        int(row.get("attempts", 0)),
        int(row.get("throttled", 0)),
        int(row.get("resends", 0)),
        claimed_at if isinstance(claimed_at, datetime) else None,
    )
