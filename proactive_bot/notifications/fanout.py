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
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from azure.storage.queue.aio import QueueClient

from .. import clock
from ..channel.activity import outgoing
from ..delivery.outcome import Outcome, Result
from ..delivery.retries import NOTIFICATIONS
from ..delivery.sender import Delivery
from ..references import ReferenceStore, StoredReference
from .contract import Notification
from .records import SEND_LEASE, Claim, NotificationStore, RecipientState, Settled, Verdict, shard_of

log = logging.getLogger(__name__)

PAGE_SIZE = 500
PAGES_PER_WALK = 20  # at most 10,000 recipients walked by one invocation
WALK_BUDGET = 10.0  # seconds of walking before handing the cursor on
BATCH_BYTES = 40 * 1024  # of reference JSON per batch message; the queue takes 64 KiB
FLUSH_EVERY = 0.25  # seconds between writes of settled rows while a batch runs
STOP_GRACE = 10.0  # seconds a cancelled batch gives sends already on their way
# The first batch of a broadcast is delivered by the invocation that walked it; its queued copy
# stays hidden this long (longer than that delivery may take), as the net if that invocation dies.
FIRST_BATCH_NET = 60.0


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

    async def start(self, notification: Notification, source: str) -> None:
        """A notification arrived: record it and deliver (or begin walking a broadcast)."""
        header = await self.records.create(notification, clock.now(), source)
        if notification.is_broadcast:
            if not header.planned and header.pages == 0:
                # The first pages are walked here, not through the work queue, and the first
                # batch is delivered here too: two queue hops (each a poll, up to
                # maxPollingInterval when idle) less before the first delivery. A redelivered
                # message walks nothing twice: the cursor moves under its ETag.
                first: list[asyncio.Task[None]] = []

                def deliver_first(recipients: list[StoredReference]) -> None:
                    # While the walk goes on: the first users need not wait for the last page.
                    first.append(asyncio.create_task(self.deliver(notification, recipients)))

                try:
                    await self.next_page(notification.id, first_batch=deliver_first)
                finally:
                    if first:
                        await first[0]  # cancelled with us: it stops as any batch does
            return
        recipient = await self._resolve(notification)
        if not header.planned:  # else a redelivery: the recipient's row says what is left to do
            note = "" if recipient else "recipient not known"
            await self.records.advance(header, found=int(bool(recipient)), cursor=None, planned=True, note=note)
        if recipient is None:
            log.warning("notification %s: recipient %s is not known; nothing sent", notification.id, notification.to)
            return
        await self.deliver(notification, [recipient])

    async def _resolve(self, notification: Notification) -> StoredReference | None:
        to = notification.to
        if "userId" in to:
            return await self.references.find_user(to["channelId"], to["userId"])
        if "conversationId" in to:
            return await self.references.get(to["channelId"], to["conversationId"])
        return await self.references.find_aad_user(to["aadObjectId"])

    async def next_page(
        self, notification_id: str, *, first_batch: Callable[[list[StoredReference]], None] | None = None
    ) -> None:
        """Walk the next pages of a broadcast's audience into batch messages, then hand on the cursor.

        Several pages per invocation (up to PAGES_PER_WALK, within WALK_BUDGET): each step of the
        walk through the queue costs a poll, and the batches wait for the walk.

        `first_batch`: the caller delivers the first batch itself, handed to it as soon as it is
        cut. Its message is still written, hidden for FIRST_BATCH_NET seconds: if the caller dies
        before it is done, the batch is delivered from the queue; if not, that copy finds it done.
        """
        started = time.monotonic()
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        if header.planned:
            return
        for _ in range(PAGES_PER_WALK):
            to = header.notification.to
            found, cursor = await self.references.broadcast_page(
                channel_id=to.get("channelId"), tenant_id=to.get("tenantId"), cursor=header.cursor, size=PAGE_SIZE
            )
            for batch in _batches(found):
                if first_batch is None:
                    await self.work.put({"kind": "batch", "notification": notification_id, "recipients": batch})
                    continue
                await self.work.put(
                    {"kind": "batch", "notification": notification_id, "recipients": batch}, FIRST_BATCH_NET
                )
                now = clock.now()
                first_batch([StoredReference.from_reference(reference, now) for reference in batch])
                first_batch = None
            moved = await self.records.advance(header, found=len(found), cursor=cursor, planned=cursor is None)
            if moved is None:
                return  # another copy of this page message moved the cursor first and carries on
            header = moved
            if header.planned:
                return
            if time.monotonic() - started > WALK_BUDGET:
                break
        await self.work.put({"kind": "page", "notification": notification_id})

    async def deliver_batch(self, notification_id: str, references: Sequence[dict[str, Any]]) -> None:
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        now = clock.now()
        try:
            recipients = [StoredReference.from_reference(reference, now) for reference in references]
        except (ValueError, AttributeError, TypeError) as error:
            raise InvalidWork(f"a batch recipient is not a conversation reference: {error}") from None
        await self.deliver(header.notification, recipients)

    async def deliver(self, notification: Notification, recipients: Sequence[StoredReference]) -> None:
        batch = _Batch(self, notification)
        await batch.run(recipients)
        if batch.later:
            delay = max(wait for _, wait in batch.later)
            await self.work.put(
                {"kind": "batch", "notification": notification.id, "recipients": [r.reference for r, _ in batch.later]},
                delay=delay,
            )
            log.info("notification %s: %d recipient(s) again in %.0f s", notification.id, len(batch.later), delay)

    async def handle(self, work: Any) -> None:
        """One work-queue message."""
        if not isinstance(work, dict) or not isinstance(work.get("notification"), str):
            raise InvalidWork("expected an object with a 'notification' id")
        if work.get("kind") == "page":
            await self.next_page(work["notification"])
        elif work.get("kind") == "batch" and isinstance(work.get("recipients"), list):
            await self.deliver_batch(work["notification"], work["recipients"])
        else:
            raise InvalidWork(f"unknown work kind {work.get('kind')!r}")


class _Batch:
    """One invocation's deliveries of a notification to some recipients."""

    def __init__(self, fanout: Fanout, notification: Notification) -> None:
        self._fanout = fanout
        self._notification = notification
        self._activity = outgoing(notification.activity())  # deserialized once for every recipient
        self._deadline = time.monotonic() + fanout.retry_budget
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
        taken: list[Claim] = []

        async def claim() -> bool:
            self._claiming.add(recipient.key)
            taken.append(await self._fanout.records.claim(self._notification.id, recipient, clock.now()))
            return taken[-1].verdict is Verdict.CLAIMED

        result = await self._fanout.delivery.send_patiently(
            recipient, [self._activity], deadline=self._deadline, claim=claim
        )
        if result.outcome is Outcome.SKIPPED:
            if taken and taken[-1].verdict is Verdict.BUSY:
                self.later.append((recipient, SEND_LEASE.total_seconds()))
            return
        row = settled(recipient, taken[-1], result)
        self._settled.append(row)
        if row.state is RecipientState.RETRY:
            self.later.append((recipient, result.retry_after or 1.0))
        elif row.state is RecipientState.FAILED:
            log.warning("notification %s to %s failed: %s", self._notification.id, recipient.key, row.detail)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self._flush()

    async def _flush(self, *, at_once: bool = False) -> None:
        rows, self._settled = self._settled, []
        if rows:
            await self._fanout.records.settle(self._notification.id, rows, clock.now(), at_once=at_once)


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
    """The row a delivery result leads to, counting what earlier deliveries tried; whether to
    try again is the notifications' retry policy (delivery.retries.NOTIFICATIONS)."""
    attempts = claim.attempts + result.attempts
    if result.outcome is Outcome.SENT:
        state = RecipientState.SENT
    elif result.outcome is Outcome.GONE:
        state = RecipientState.GONE
    elif result.retryable and not NOTIFICATIONS.exhausted(attempts):
        state = RecipientState.RETRY
    else:
        state = RecipientState.FAILED
    return Settled(recipient, state, attempts, claim.throttled + result.throttled, result.status, result.detail)
