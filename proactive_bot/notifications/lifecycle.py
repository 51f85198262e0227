"""After a notification is accepted: cancel it, recall it, edit it.

- `cancel` (DELETE): marks the record cancelled. From then on no recipient is claimed for a send
  (fanout's claim looks at the mark after writing its claim), the walk of a broadcast stops, and a
  scheduled one is never released. Sends whose claims came first are waited for, so that nothing
  goes out after the answer; then every recipient reached is **recalled**.
- `edit` (PATCH): the record gets the next content version; recipients not reached yet get it
  with their send, and every one reached gets it in place.
- `change`: one work message of either, for one shard of the recipient rows. Each sent row is
  taken under its ETag right before its request (as sends claim theirs), so a redelivered or
  duplicated message reaches nobody twice; a row an edit already brought to the latest version
  is skipped, so an older edit never overwrites a newer one. Requests are paced by the same
  limiter as sends and retried by the same policy (429 Retry-After, 412/5xx backoff); what runs
  out of this invocation's budget goes back on the work queue with a delay. A channel that
  cannot change sent messages (Direct Line answers 405) leaves the row `unsupported`, untried again.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import clock
from ..delivery.outcome import Outcome, Result
from ..delivery.retries import NOTIFICATIONS
from ..delivery.sender import Delivery, Edit, Recall
from ..references import StoredReference
from . import personalize
from .fanout import InvalidWork, WorkQueue
from .records import SHARDS, Change, Header, NotificationStore, RecipientState
from .schedule import Schedule

log = logging.getLogger(__name__)

CHANGE_LEASE = timedelta(minutes=2)  # a taken row's hold; a worker that died frees it after this
IN_FLIGHT_WAIT = 10.0  # seconds a DELETE waits for sends already on their way
BUSY_AGAIN = 5.0  # seconds before looking again at rows another worker (or a send) holds


class Refusal(enum.Enum):
    NOT_FOUND = 404
    CONFLICT = 409


@dataclass(frozen=True)
class Answer:
    header: Header | None
    refusal: Refusal | None = None
    detail: str = ""


class Kind(enum.Enum):
    RECALL = "recall"
    EDIT = "edit"


@dataclass
class Lifecycle:
    records: NotificationStore
    delivery: Delivery
    work: WorkQueue
    schedule: Schedule | None = None
    retry_budget: float = 45.0

    async def cancel(self, notification_id: str) -> Answer:
        """DELETE: cancel what is not sent, recall what is. Idempotent."""
        header = await self.records.header(notification_id)
        while header is not None and not header.cancelled:
            header = await self.records.cancel(header, clock.now()) or await self.records.header(notification_id)
        if header is None:
            return Answer(None, Refusal.NOT_FOUND, f"no notification {notification_id!r}")
        if self.schedule is not None and header.notification.not_before is not None:
            await self.schedule.unschedule(notification_id, header.notification.not_before)
        await self._wait_for_sends_in_flight(notification_id)
        await self._put(Kind.RECALL, notification_id, header.version)
        return Answer(header)

    async def edit(self, notification_id: str, text: str | None, attachments: list[dict[str, Any]] | None) -> Answer:
        """PATCH: the next content version, for those not reached yet and in place for the rest."""
        while True:
            header = await self.records.header(notification_id)
            if header is None:
                return Answer(None, Refusal.NOT_FOUND, f"no notification {notification_id!r}")
            if header.cancelled:
                return Answer(header, Refusal.CONFLICT, "the notification was cancelled; it cannot be edited")
            edited = await self.records.edit(header, text, attachments)
            if edited is not None:
                break
        await self._put(Kind.EDIT, notification_id, edited.version)
        return Answer(edited)

    async def _put(self, kind: Kind, notification_id: str, version: int) -> None:
        # One message per shard: a shard's rows share a partition, and the shards go in parallel.
        await asyncio.gather(
            *(
                self.work.put({"kind": kind.value, "notification": notification_id, "shard": shard, "version": version})
                for shard in range(SHARDS)
            )
        )

    async def _wait_for_sends_in_flight(self, notification_id: str) -> None:
        waited = time.monotonic() + IN_FLIGHT_WAIT
        while await self.records.sending(notification_id, clock.now()):
            if time.monotonic() > waited:
                # A sender died mid-send, or is very slow; the recall comes back for its row.
                log.warning("notification %s: cancelled with sends still on their way", notification_id)
                return
            await asyncio.sleep(0.1)

    async def change(self, work: dict[str, Any]) -> None:
        """One "recall" or "edit" work message: one shard's sent rows."""
        try:
            kind = Kind(work.get("kind"))
        except ValueError:
            raise InvalidWork(f"unknown work kind {work.get('kind')!r}") from None
        shard = work.get("shard")
        # A whole number, as _put writes it (bool is an int to Python, not to the sender).
        if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < SHARDS:
            raise InvalidWork(f"a {kind.value} message needs a shard (0-{SHARDS - 1}), not {shard!r}")
        header = await self.records.header(work["notification"])
        if header is None:
            raise InvalidWork(f"no notification {work['notification']!r}")
        if kind is Kind.EDIT and header.cancelled:
            return  # recalled instead
        run = _Change(self, header, kind)
        rows = [row async for row in self.records.shard_rows(header.notification.id, shard)]
        await asyncio.gather(*(run.one(row) for row in rows))
        if run.again is not None:
            await self.work.put(work, delay=run.again)
            log.info(
                "notification %s: %s of shard %d again in %.0f s", header.notification.id, kind.value, shard, run.again
            )


class _Change:
    """One invocation's recall or edit of one shard's rows."""

    def __init__(self, lifecycle: Lifecycle, header: Header, kind: Kind) -> None:
        self._lifecycle = lifecycle
        self._header = header
        self._kind = kind
        self._deadline = time.monotonic() + lifecycle.retry_budget
        self._activity = header.notification.activity()
        self.again: float | None = None  # seconds until this shard needs another look

    def _later(self, seconds: float) -> None:
        self.again = max(self.again or 0.0, seconds)

    def _wanted(self, row: Any, now: datetime) -> bool:
        state = RecipientState(row.get("state"))
        lease = row.get("leaseUntil")
        if state is RecipientState.SENDING and lease is not None and lease <= now:
            return False  # its sender died mid-send: no activity id to change (reported unconfirmed)
        if state in (RecipientState.SENDING, RecipientState.RETRY) and not self._header.cancelled:
            self._later(BUSY_AGAIN)  # an edit must also reach what is being sent with the old content
            return False
        if state is RecipientState.SENDING:
            self._later(BUSY_AGAIN)  # cancelled while on its way: recall it once it lands
            return False
        if state is not RecipientState.SENT:
            return False
        if self._kind is Kind.RECALL:
            return row.get("changeOf") != Kind.RECALL.value or not row.get("change")
        tried = row.get("changeOf") == f"{Kind.EDIT.value}:{self._header.version}" and row.get("change")
        return int(row.get("version", 0)) < self._header.version and not tried

    async def one(self, row: Any) -> None:
        now = clock.now()
        if not self._wanted(row, now):
            return
        records = self._lifecycle.records
        until = row.get("changeUntil")
        if until is not None and until > now:
            self._later(max(BUSY_AGAIN, (until - now).total_seconds()))
            return
        activity_id = row.get("activityId") or ""
        if not activity_id or not row.get("reference"):
            await records.mark(
                row,
                {
                    "change": Change.UNSUPPORTED.value,
                    "changeOf": self._of(),
                    "detail": "no activity id was recorded for this delivery",
                },
            )
            return
        recipient = StoredReference.from_reference(json.loads(row["reference"]), now)
        personal = personalize.activity_for(self._header.notification, personalize.person_of(recipient))  # their own
        request = Recall(activity_id) if self._kind is Kind.RECALL else Edit(activity_id, personal)

        result = await self._lifecycle.delivery.send_patiently(
            recipient, request, deadline=self._deadline, claimant=_TakeOnce(records, row)
        )
        if result.outcome is Outcome.SKIPPED:
            self._later(BUSY_AGAIN)  # another worker took it; look again in case it dies
            return
        await records.mark(row, self._outcome(row, result))

    def _of(self) -> str:
        return Kind.RECALL.value if self._kind is Kind.RECALL else f"{Kind.EDIT.value}:{self._header.version}"

    def _outcome(self, row: Any, result: Result) -> dict[str, Any]:
        """The fields the row gets (merged; the lease ends with them)."""
        now = clock.now()
        attempts = int(row.get("changeAttempts", 0)) + result.attempts
        fields: dict[str, Any] = {"changeUntil": now, "changeAttempts": attempts, "updatedAt": now}
        recall = self._kind is Kind.RECALL
        if result.outcome is Outcome.SENT or (recall and result.outcome is Outcome.GONE and result.status == 404):
            # A recall answered 404 finds the message gone already: recalled all the same. A 403
            # (the user blocked the bot, the bot left the team) is GONE too, but the message stays.
            if recall:
                return {
                    **fields,
                    "state": RecipientState.RECALLED.value,
                    "recalledAt": now,
                    "change": "",
                    "changeAttempts": 0,
                }
            return {**fields, "version": self._header.version, "editedAt": now, "change": "", "changeAttempts": 0}
        if result.status == 405:
            log.info(
                "notification %s: the %s channel cannot %s sent messages",
                self._header.notification.id,
                row.get("channelId"),
                self._kind.value,
            )
            return {
                **fields,
                "change": Change.UNSUPPORTED.value,
                "changeOf": self._of(),
                "detail": f"{self._kind.value}: the channel cannot change sent messages (405)",
            }
        if result.retryable and not NOTIFICATIONS.exhausted(attempts):
            self._later(result.retry_after or 1.0)
            return fields
        log.warning(
            "notification %s: %s in %s failed: %s",
            self._header.notification.id,
            self._kind.value,
            row.get("conversationId"),
            result.detail,
        )
        return {
            **fields,
            "change": Change.FAILED.value,
            "changeOf": self._of(),
            "detail": f"{self._kind.value}: {result.detail}"[:1000],
        }


class _TakeOnce:
    """A change (edit or recall) holds its row for CHANGE_LEASE from its first attempt on, waits
    included (`delivery.Claimant`): repeated after a crash, a change is harmless (a second DELETE
    finds 404, a second PUT shows the same content), so there is nothing to give back."""

    def __init__(self, records: Any, row: Any) -> None:
        self._records = records
        self._row = row
        self._taken = False

    async def claim(self) -> bool:
        if not self._taken:
            self._taken = await self._records.take(self._row, clock.now(), CHANGE_LEASE) is not None
        return self._taken

    async def release(self, failed: Result) -> None:
        pass
