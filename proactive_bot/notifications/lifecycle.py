"""After a notification is accepted: cancel it, recall it, edit it.

- `cancel` (DELETE): marks the record cancelled. From then on no recipient is claimed for a send
  (fanout's claim looks at the mark after writing its claim), the walk of a broadcast stops, and a
  scheduled one is never started. Sends whose claims came first are waited for, so that nothing
  goes out after the answer; then every recipient reached is **recalled**.
- `edit` (PATCH): the record gets the next content version; recipients not reached yet get it
  with their send, and every one reached gets it in place.
- `change`: one work message of either, for one shard of the recipient rows. Each sent row is
  taken under its ETag right before its request (as sends claim theirs), so a redelivered or
  duplicated message reaches nobody twice; a row an edit already brought to the latest version
  is skipped, so an older edit never overwrites a newer one. Requests are paced by the same
  limiter as sends and retried by the same policy (429 Retry-After, 412/5xx backoff); what runs
  out of this invocation's budget goes back on the work queue with a delay. A channel that
  cannot change sent messages (Direct Line answers 405, the Teams emulator 501) leaves the row `unsupported`, untried again.
"""

from __future__ import annotations

import asyncio
import enum
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
from ..work import EditWork, InvalidWork, RecallWork, ShardChange, WorkQueue
from . import personalize
from .lanes import lane_of
from .records import SHARDS, ChangeFailure, Header, NotificationStore, RecipientState, SentRow
from .records.states import as_seen
from .timetable import Timetable

log = logging.getLogger(__name__)

CHANGE_LEASE = timedelta(minutes=2)  # a taken row's hold; a worker that died frees it after this
IN_FLIGHT_WAIT = 10.0  # seconds a DELETE waits for sends already on their way
BUSY_AGAIN = 5.0  # seconds before looking again at rows another worker (or a send) holds


class Refusal(enum.Enum):
    NOT_FOUND = 404
    CONFLICT = 409


@dataclass(frozen=True)
class Reply:
    header: Header | None
    refusal: Refusal | None = None
    detail: str = ""


class Kind(enum.Enum):
    RECALL = "recall"
    EDIT = "edit"


@dataclass(kw_only=True)
class Lifecycle:
    records: NotificationStore
    delivery: Delivery
    work: WorkQueue
    timetable: Timetable
    retry_budget: float  # seconds of retrying within one invocation (settings.retry_budget_seconds)

    async def cancel(self, notification_id: str) -> Reply:
        """DELETE: cancel what is not sent, recall what is. Idempotent."""
        header = await self.records.header(notification_id)
        while header is not None and not header.cancelled:
            header = await self.records.cancel(header, clock.now()) or await self.records.header(notification_id)
        if header is None:
            return Reply(None, Refusal.NOT_FOUND, f"no notification {notification_id!r}")
        if header.notification.not_before is not None:
            await self.timetable.unschedule(notification_id, header.notification.not_before)
        await self._wait_for_sends_in_flight(notification_id)
        await self._put(Kind.RECALL, notification_id, header.version)
        return Reply(header)

    async def edit(
        self, notification_id: str, text: str | dict[str, str] | None, attachments: list[dict[str, Any]] | None
    ) -> Reply:
        """PATCH: the next content version, for those not reached yet and in place for the rest."""
        while True:
            header = await self.records.header(notification_id)
            if header is None:
                return Reply(None, Refusal.NOT_FOUND, f"no notification {notification_id!r}")
            if header.cancelled:
                return Reply(header, Refusal.CONFLICT, "the notification was cancelled; it cannot be edited")
            edited = await self.records.edit(header, text, attachments)
            if edited is not None:
                break
        await self._put(Kind.EDIT, notification_id, edited.version)
        return Reply(edited)

    async def _put(self, kind: Kind, notification_id: str, version: int) -> None:
        # One message per shard: a shard's rows share a partition, and the shards go in parallel.
        change = RecallWork if kind is Kind.RECALL else EditWork
        await asyncio.gather(
            *(
                self.work.put(change(notification=notification_id, shard=shard, version=version))
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

    async def change(self, work: ShardChange) -> None:
        """One "recall" or "edit" work message: one shard's sent rows."""
        kind = Kind.RECALL if isinstance(work, RecallWork) else Kind.EDIT
        shard = work.shard
        if not 0 <= shard < SHARDS:
            raise InvalidWork(f"a {kind.value} message needs a shard (0-{SHARDS - 1}), not {shard!r}")
        header = await self.records.header(work.notification)
        if header is None:
            raise InvalidWork(f"no notification {work.notification!r}")
        if kind is Kind.EDIT and header.cancelled:
            return  # recalled instead
        run = _ShardRun(self, header, kind)
        rows = [row async for row in self.records.shard_rows(header.notification.id, shard)]
        await asyncio.gather(*(run.one(row) for row in rows))
        if run.again is not None:
            await self.work.put(work, delay=run.again)
            log.info(
                "notification %s: %s of shard %d again in %.0f s", header.notification.id, kind.value, shard, run.again
            )


class _ShardRun:
    """One invocation's recall or edit of one shard's rows."""

    def __init__(self, lifecycle: Lifecycle, header: Header, kind: Kind) -> None:
        self._lifecycle = lifecycle
        self._header = header
        self._kind = kind
        self._deadline = time.monotonic() + lifecycle.retry_budget
        self.again: float | None = None  # seconds until this shard needs another look

    def _later(self, seconds: float) -> None:
        self.again = max(self.again or 0.0, seconds)

    def _wanted(self, row: SentRow, now: datetime) -> bool:
        state = row.state
        if as_seen(state, row.lease_until, now) is RecipientState.UNCONFIRMED:
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
            return row.change_of != Kind.RECALL.value or row.change is None
        tried = row.change_of == self._of() and row.change is not None
        return row.version < self._header.version and not tried

    async def one(self, row: SentRow) -> None:
        now = clock.now()
        if not self._wanted(row, now):
            return
        records = self._lifecycle.records
        until = row.change_until
        if until is not None and until > now:
            self._later(max(BUSY_AGAIN, (until - now).total_seconds()))
            return
        if not row.activity_id or row.reference is None:
            await records.mark_change_failed(
                row, ChangeFailure.UNSUPPORTED, self._of(), "no activity id was recorded for this delivery"
            )
            return
        recipient = StoredReference.from_reference(row.reference, now)
        if self._kind is Kind.RECALL:
            request: Recall | Edit = Recall(row.activity_id)
        else:  # each recipient's own text ({{name}}, their language)
            person = personalize.person_of(recipient)
            request = Edit(row.activity_id, personalize.activity_for(self._header.notification, person))

        result = await self._lifecycle.delivery.send_patiently(
            recipient,
            request,
            deadline=self._deadline,
            claimant=_TakeOnce(records, row),
            lane=lane_of(self._header.notification),
        )
        if result.outcome is Outcome.SKIPPED:
            self._later(BUSY_AGAIN)  # another worker took it; look again in case it dies
            return
        await self._settle(row, result)

    def _of(self) -> str:
        return Kind.RECALL.value if self._kind is Kind.RECALL else f"{Kind.EDIT.value}:{self._header.version}"

    async def _settle(self, row: SentRow, result: Result) -> None:
        """What the row records of this change (merged; the lease ends with it)."""
        records, now = self._lifecycle.records, clock.now()
        attempts = row.change_attempts + result.attempts
        recall = self._kind is Kind.RECALL
        if result.outcome is Outcome.SENT or (recall and result.outcome is Outcome.GONE and result.status == 404):
            # A recall answered 404 finds the message gone already: recalled all the same. A 403
            # (the user blocked the bot, the bot left the team) is GONE too, but the message stays.
            if recall:
                await records.mark_recalled(row, now)
            else:
                await records.mark_edited(row, self._header.version, now)
            return
        if result.unsupported:  # 405 (Direct Line), 501 (the Teams emulator): delivery/retries.py
            log.info(
                "notification %s: the %s channel cannot %s sent messages: %s",
                self._header.notification.id,
                row.channel_id,
                self._kind.value,
                result.detail,
            )
            detail = (
                f"{self._kind.value}: {result.detail or f'the channel cannot change sent messages ({result.status})'}"
            )
            await records.mark_change_failed(row, ChangeFailure.UNSUPPORTED, self._of(), detail, now, attempts=attempts)
            return
        if result.retryable and not NOTIFICATIONS.exhausted(attempts):
            self._later(result.retry_after or 1.0)
            await records.end_change_lease(row, now, attempts=attempts)
            return
        log.warning(
            "notification %s: %s in %s failed: %s",
            self._header.notification.id,
            self._kind.value,
            row.conversation_id,
            result.detail,
        )
        detail = f"{self._kind.value}: {result.detail}"
        await records.mark_change_failed(row, ChangeFailure.FAILED, self._of(), detail, now, attempts=attempts)


class _TakeOnce:
    """A change (edit or recall) holds its row for CHANGE_LEASE from its first attempt on, waits
    included (`delivery.Claimant`): repeated after a crash, a change is harmless (a second DELETE
    finds 404, a second PUT shows the same content), so there is nothing to give back."""

    def __init__(self, records: NotificationStore, row: SentRow) -> None:
        self._records = records
        self._row = row
        self._taken = False

    async def claim(self) -> bool:
        if not self._taken:
            self._taken = await self._records.lease_for_change(self._row, clock.now(), CHANGE_LEASE)
        return self._taken

    async def release(self, failed: Result) -> None:
        pass
