"""Fan-out: how one notification becomes deliveries, exactly once per recipient.

- To one user or conversation: delivered inline, by the invocation that took the message.
- To everyone: the audience is walked in pages, several per work-queue message. The page cursor lives in
  the notification's record and moves under its ETag, so a redelivered or duplicated page
  message cannot fork the walk; each page becomes batch messages that any instance may take.
  No invocation walks the whole audience.
- A batch claims each recipient's row right before sending (see NotificationStore.claim) and
  settles it after; whatever runs out of this invocation's retry budget goes back on the work
  queue with a visibility delay instead of keeping the function asleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.storage.queue.aio import QueueClient

from .. import clock
from ..channel.activity import outgoing
from ..delivery.outcome import Outcome, Result
from ..delivery.retries import NOTIFICATIONS
from ..delivery.sender import Delivery
from ..references import ReferenceStore, StoredReference
from .contract import Notification, OnCrash
from .records import SEND_LEASE, Claim, Header, NotificationStore, RecipientState, Settled, Verdict, shard_of
from .receipts import ReadReceipts
from .schedule import Schedule

log = logging.getLogger(__name__)

PAGE_SIZE = 500
PAGES_PER_WALK = 20  # at most 10,000 recipients walked by one invocation
WALK_BUDGET = 10.0  # seconds of walking before handing the cursor on
BATCH_BYTES = 40 * 1024  # of reference JSON per batch message; the queue takes 64 KiB
FLUSH_EVERY = 0.25  # seconds between writes of settled rows while a batch runs
STOP_GRACE = 10.0  # seconds a cancelled batch gives sends already on their way


class InvalidWork(ValueError):
    """A work-queue message we cannot act on; it belongs in the poison queue."""


class WorkQueue:
    """The internal queue of broadcast pages and delivery batches."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    async def put(self, work: dict[str, Any], delay: float = 0) -> None:
        # The queue counts whole seconds; rounding down would bring a throttled batch back early.
        await self._client.send_message(
            json.dumps(work, separators=(",", ":")), visibility_timeout=math.ceil(delay) or None
        )


@dataclass
class Fanout:
    references: ReferenceStore
    records: NotificationStore
    delivery: Delivery
    work: WorkQueue
    retry_budget: float = 45.0  # seconds of retrying within one invocation
    schedule: Schedule | None = None  # where notBefore waits (None: scheduling is refused)
    receipts: ReadReceipts | None = None  # indexes sent deliveries for read receipts

    async def start(self, notification: Notification, source: str) -> None:
        """A notification arrived: record it and deliver (or begin walking a broadcast), or
        schedule it for its notBefore."""
        header = await self.records.create(notification, clock.now(), source)
        await self._begin(header)

    async def release(self, notification_id: str) -> None:
        """Its notBefore came (a "release" work message from the timer): start it, unless it
        was cancelled meanwhile. Starting again is harmless: the records make it idempotent."""
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        await self._begin(header)

    async def release_due(self, now: datetime) -> int:
        """Timer: hand every scheduled notification that is due to the work queue."""
        if self.schedule is None:
            return 0
        released = 0
        async for page in self.schedule.due(now):
            for due in page:
                # Message first, then the row: a run that dies between them releases it twice,
                # which `release` shrugs off; the other order could lose it.
                await self.work.put({"kind": "release", "notification": due.notification_id})
                await self.schedule.remove(due)
                released += 1
        return released

    async def _begin(self, header: Header) -> None:
        notification = header.notification  # as it now reads (an edit may have come first)
        if header.cancelled:
            return
        now = clock.now()
        if notification.scheduled(now) and not (header.pages or header.planned):
            if self.schedule is None:
                raise InvalidWork("notBefore needs a schedule")
            assert notification.not_before is not None
            await self.schedule.add(notification.id, notification.not_before)
            return
        if notification.is_broadcast:
            if not header.planned and header.pages == 0:
                await self.work.put({"kind": "page", "notification": notification.id})
            return
        recipient = await self._resolve(notification)
        if not header.planned:  # else a redelivery: the recipient's row says what is left to do
            note = "" if recipient else "recipient not known"
            await self._advance(header, found=int(bool(recipient)), cursor=None, planned=True, note=note)
        if recipient is None:
            log.warning("notification %s: recipient %s is not known; nothing sent", notification.id, notification.to)
            return
        await self.deliver(notification, [recipient], header.version)

    async def _resolve(self, notification: Notification) -> StoredReference | None:
        to = notification.to
        if "userId" in to:
            return await self.references.find_user(to["channelId"], to["userId"])
        if "conversationId" in to:
            return await self.references.get(to["channelId"], to["conversationId"])
        return await self.references.find_aad_user(to["aadObjectId"])

    async def next_page(self, notification_id: str) -> None:
        """Walk the next pages of a broadcast's audience into batch messages, then hand on the cursor.

        Several pages per invocation (up to PAGES_PER_WALK, within WALK_BUDGET): each step of the
        walk through the queue costs a poll, and the batches wait for the walk.
        """
        started = time.monotonic()
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        if header.planned or header.cancelled:
            return  # walked, or cancelled: the rest of the audience is never looked at
        for _ in range(PAGES_PER_WALK):
            to = header.notification.to
            found, cursor = await self.references.broadcast_page(
                channel_id=to.get("channelId"), tenant_id=to.get("tenantId"), cursor=header.cursor, size=PAGE_SIZE
            )
            for batch in _batches(found):
                await self.work.put({"kind": "batch", "notification": notification_id, "recipients": batch})
            moved = await self._advance(header, found=len(found), cursor=cursor, planned=cursor is None)
            if moved is None:
                return  # another copy of this page message moved the cursor first and carries on
            header = moved
            if header.planned:
                return
            if time.monotonic() - started > WALK_BUDGET:
                break
        await self.work.put({"kind": "page", "notification": notification_id})

    async def _advance(self, header: Header, **moves: Any) -> Header | None:
        """records.advance, again after a write that did not move the walk (an edit, say); None
        when another copy of the page message moved it first, or the notification was cancelled."""
        while True:
            moved = await self.records.advance(header, **moves)
            if moved is not None:
                return moved
            current = await self.records.header(header.notification.id)
            if current is None or current.cancelled or (current.pages, current.planned) != (header.pages, header.planned):
                return None
            header = current

    async def deliver_batch(self, notification_id: str, references: Sequence[dict[str, Any]]) -> None:
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        now = clock.now()
        try:
            recipients = [StoredReference.from_reference(reference, now) for reference in references]
        except (ValueError, AttributeError, TypeError) as error:
            raise InvalidWork(f"a batch recipient is not a conversation reference: {error}") from None
        if header.cancelled:
            return  # none of these is sent; the status counts them cancelled
        await self.deliver(header.notification, recipients, header.version)

    async def deliver(
        self, notification: Notification, recipients: Sequence[StoredReference], version: int = 0
    ) -> None:
        batch = _Batch(self, notification, version)
        await batch.run(recipients)
        if batch.later:
            delay = max(wait for _, wait in batch.later)
            await self.work.put(
                {"kind": "batch", "notification": notification.id, "recipients": [r.reference for r, _ in batch.later]},
                delay=delay,
            )
            log.info("notification %s: %d recipient(s) again in %.0f s", notification.id, len(batch.later), delay)

    async def resend(self, notification_id: str, state: RecipientState) -> int | None:
        """Send once more to the recipients in `state` (unconfirmed): the operator's call, since
        only they know whether a duplicate is worse than a miss. Returns how many, None if there
        is no such notification."""
        if await self.records.header(notification_id) is None:
            return None
        rows = await self.records.hand_out_again(notification_id, state, clock.now())
        found = []
        for row in rows:
            # References are never deleted (a gone one is only marked inactive, and the batch
            # settles it `gone`), so every row's address is still there.
            recipient = await self.references.get(row.channel_id, row.conversation_id)
            if recipient is not None:
                found.append(recipient)
        for batch in _batches(found):
            await self.work.put({"kind": "batch", "notification": notification_id, "recipients": batch})
        log.info("notification %s: %d %s recipient(s) handed out again", notification_id, len(found), state.public)
        return len(rows)

    async def handle(self, work: Any) -> None:
        """One work-queue message."""
        if not isinstance(work, dict) or not isinstance(work.get("notification"), str):
            raise InvalidWork("expected an object with a 'notification' id")
        if work.get("kind") == "page":
            await self.next_page(work["notification"])
        elif work.get("kind") == "batch" and isinstance(work.get("recipients"), list):
            await self.deliver_batch(work["notification"], work["recipients"])
        elif work.get("kind") == "release":
            await self.release(work["notification"])
        else:
            raise InvalidWork(f"unknown work kind {work.get('kind')!r}")


class _Batch:
    """One invocation's deliveries of a notification to some recipients."""

    def __init__(self, fanout: Fanout, notification: Notification, version: int = 0) -> None:
        self._fanout = fanout
        self._notification = notification
        self._version = version  # of the content sent
        self._activity = outgoing(notification.activity())  # deserialized once for every recipient
        self._deadline = time.monotonic() + fanout.retry_budget
        if notification.expires_at is not None:
            # No retry after expiresAt: what is not sent by then is not sent.
            left = (notification.expires_at - clock.now()).total_seconds()
            self._deadline = min(self._deadline, time.monotonic() + left)
        self._cancellation = Cancellation(fanout.records, notification.id)
        self._settled: list[Settled] = []
        # Recipients whose claim has been asked for: from then on the send may go out, so a
        # stopping host lets them finish rather than leave a claimed row that never sends.
        self._claiming: set[tuple[str, str]] = set()
        self.later: list[tuple[StoredReference, float]] = []  # (recipient, seconds to wait)

    async def run(self, recipients: Sequence[StoredReference]) -> None:
        flusher = asyncio.create_task(self._flush_periodically())
        tasks = {asyncio.create_task(self._one(r)): r.key for r in recipients}
        try:
            # wait(), not gather(): being cancelled must not cancel sends already on their way.
            if tasks:
                await asyncio.wait(tasks)
            for task in tasks:
                task.result()  # surface the first error, after every send has settled
        except asyncio.CancelledError:
            await self._stop(tasks)
            raise
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await asyncio.shield(self._flush(at_once=True))

    async def _stop(self, tasks: dict[asyncio.Task[None], tuple[str, str]]) -> None:
        """The host is stopping us: drop what has not been claimed, let the rest finish."""
        for task, key in tasks.items():
            if key not in self._claiming:
                task.cancel()
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in late:
                task.cancel()  # its row stays "sending" and is reported unconfirmed later

    async def _one(self, recipient: StoredReference) -> None:
        if recipient.opted_out or not recipient.active:
            if recipient.opted_out:
                self._settled.append(Settled(recipient, RecipientState.SKIPPED, detail="opted out"))
            else:
                self._settled.append(Settled(recipient, RecipientState.GONE, detail=recipient.inactive_reason))
            return
        claimant = _Claimant(self, recipient)
        result = await self._fanout.delivery.send_patiently(
            recipient, [self._activity], deadline=self._deadline, claimant=claimant
        )
        if result.outcome is Outcome.SKIPPED:
            if claimant.taken and claimant.taken[-1].verdict is Verdict.BUSY:
                self.later.append((recipient, SEND_LEASE.total_seconds()))
            return
        row = dataclasses.replace(settled(recipient, claimant.taken[-1], result), version=self._version)
        self._settled.append(row)
        if row.state is RecipientState.RETRY:
            self.later.append((recipient, result.retry_after or 1.0))
        elif row.state is RecipientState.FAILED:
            log.warning("notification %s to %s failed: %s", self._notification.id, recipient.key, row.detail)

    async def _stop_reason(self) -> RecipientState | None:
        """Why a claimed recipient must not be sent to after all, if it must not."""
        if self._notification.expired(clock.now()):
            return RecipientState.EXPIRED
        if await self._cancellation.cancelled():
            return RecipientState.CANCELLED
        return None

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self._flush()

    async def _flush(self, *, at_once: bool = False) -> None:
        rows, self._settled = self._settled, []
        if rows:
            await self._fanout.records.settle(self._notification.id, rows, clock.now(), at_once=at_once)
            if self._fanout.receipts is not None:
                await self._fanout.receipts.expect(self._notification.id, rows, at_once=at_once)


class _Claimant:
    """One recipient's row, held only while a request to it is in flight (`delivery.Claimant`)."""

    def __init__(self, batch: _Batch, recipient: StoredReference) -> None:
        self._batch = batch
        self._recipient = recipient
        self.taken: list[Claim] = []

    async def claim(self) -> bool:
        batch, recipient = self._batch, self._recipient
        batch._claiming.add(recipient.key)
        claim = await batch._fanout.records.claim(
            batch._notification.id, recipient, clock.now(),
            resend_on_crash=batch._notification.on_crash is OnCrash.RESEND,
        )
        self.taken.append(claim)
        if claim.verdict is not Verdict.CLAIMED:
            return False
        # Checked after the claim is written: a DELETE that marks the notification first
        # stops this send, and one that marks it later finds this row "sending" and waits
        # for it (lifecycle.Lifecycle.cancel), so nothing is sent after its answer.
        try:
            stop = await batch._stop_reason()
        except Exception as error:  # noqa: BLE001 - storage failed us: hand it back, do not guess
            log.warning("notification %s: could not read whether it was cancelled (%s); %s again later",
                        batch._notification.id, error, recipient.key)
            batch._settled.append(Settled(recipient, RecipientState.RETRY, claim.attempts,
                                          claim.throttled, detail=f"cancel check failed: {error}"))
            batch.later.append((recipient, 1.0))
            return False
        if stop is not None:
            batch._settled.append(Settled(recipient, stop, claim.attempts, claim.throttled))
            return False
        return True

    async def release(self, failed: Result) -> None:
        # Written at once and unconditionally: only this sender holds the row while its lease
        # runs, and the channel's answer says nothing was delivered, so RETRY can never lead to a
        # duplicate. Once it is written, a stopping host may drop this recipient (its row is
        # anyone's to take again), so it leaves the set a stop lets finish.
        batch = self._batch
        row = dataclasses.replace(settled(self._recipient, self.taken[-1], failed), state=RecipientState.RETRY)
        await batch._fanout.records.settle(batch._notification.id, [row], clock.now(), at_once=True)
        batch._claiming.discard(self._recipient.key)


def _batches(found: Sequence[StoredReference]) -> list[list[dict[str, Any]]]:
    """Split a page into lists of references that fit a queue message, one shard per list, so that
    a batch's claims and outcomes go to one partition together."""
    by_shard: dict[int, list[StoredReference]] = {}
    for recipient in found:
        by_shard.setdefault(shard_of(recipient), []).append(recipient)
    batches: list[list[dict[str, Any]]] = []
    for shard in sorted(by_shard):
        size = BATCH_BYTES  # start a new batch for every shard
        for recipient in by_shard[shard]:
            weight = len(json.dumps(recipient.reference)) + 1
            if size + weight > BATCH_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(recipient.reference)
            size += weight
    return batches


def settled(recipient: StoredReference, claim: Claim, result: Result) -> Settled:
    """The row the attempt made under `claim` leads to. Earlier attempts are counted in the
    claim (each was released with its counts); whether to try again is the notifications'
    retry policy (delivery.retries.NOTIFICATIONS)."""
    attempts = claim.attempts + 1
    if result.outcome is Outcome.SENT:
        state = RecipientState.SENT
    elif result.outcome is Outcome.GONE:
        state = RecipientState.GONE
    elif result.retryable and not NOTIFICATIONS.exhausted(attempts):
        state = RecipientState.RETRY
    else:
        state = RecipientState.FAILED
    throttled = claim.throttled + (result.outcome is Outcome.THROTTLED)
    return Settled(
        recipient, state, attempts, throttled, result.status, result.detail, claim.resends, claim.claimed_at,
        activity_id=result.activity_id,
    )


class Cancellation:
    """Whether a notification has been cancelled, as read after the caller asked.

    Concurrent askers share one read, as long as it has not been sent yet: a read sent after
    someone's claim was written sees any cancel written before that claim. Claims coalesce into
    transactions and finish together, so a batch pays about one read per transaction.
    """

    def __init__(self, records: NotificationStore, notification_id: str) -> None:
        self._records = records
        self._id = notification_id
        self._next: asyncio.Future[bool] | None = None  # a read not yet sent, for whoever asks now
        self._known = False  # once cancelled, always cancelled

    async def cancelled(self) -> bool:
        if self._known:
            return True
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._read(self._next))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
        return await asyncio.shield(self._next)

    async def _read(self, result: asyncio.Future[bool]) -> None:
        self._next = None  # from here on the read is on its way: later askers need a new one
        try:
            header = await self._records.header(self._id)
        except Exception as error:  # noqa: BLE001 - every asker hears it
            result.set_exception(error)
            return
        self._known = header is None or header.cancelled
        result.set_result(self._known)
