"""A batch's delivery: claim each recipient's row right before its send, settle it after.

Whatever runs out of this invocation's retry budget goes back on the work queue with a
visibility delay instead of keeping the function asleep. A roster member without a chat is
claimed, their chat created (teams.chats) and sent to under that one claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import clock
from ..channel.activity import PreparedActivity, outgoing
from ..delivery.lanes import Lane
from ..delivery.outcome import Outcome, Result
from ..delivery.sender import Delivery
from ..references import StoredReference
from ..storage.outage import StorageUnavailable, unavailable
from ..teams.reach import TeamsReach
from ..teams.rows import RosterMember
from ..work import BatchRecipient, BatchWork, InvalidWork, WorkQueue, batches_of
from . import personalize
from .contract import Notification, OnCrash
from .intake import BulkIntake
from .lanes import lane_of
from .receipts import ReadReceipts
from .records import (
    SEND_LEASE,
    Claim,
    NotificationStore,
    RecipientState,
    Settled,
    Verdict,
    recipient_key,
    settled,
    shard_of,
)

log = logging.getLogger(__name__)

FLUSH_EVERY = 0.25  # seconds between writes of settled rows while a batch runs
STOP_GRACE = 10.0  # seconds a cancelled batch gives sends already on their way
# Seconds a bulk batch this process has no room for waits on the queue before it is offered
# again (here or to a sibling); spread so that the batches given back do not return together.
YIELD_DELAY = (1, 2)


def cut_batches(notification_id: str, found: Sequence[BatchRecipient]) -> list[BatchWork]:
    """Recipients as batch messages that fit the queue, one shard per batch."""
    return [BatchWork(notification=notification_id, recipients=tuple(batch)) for batch in batches_of(found, shard_of)]


@dataclass(kw_only=True)
class Deliveries:
    """Delivers batches: what a "batch" work message, an inline notification and a broadcast's
    first batch all come to."""

    records: NotificationStore
    delivery: Delivery
    work: WorkQueue
    receipts: ReadReceipts  # indexes sent deliveries for read receipts
    teams: TeamsReach  # roster members' chats
    retry_budget: float  # seconds of retrying within one invocation
    intake: BulkIntake  # how many bulk recipients this process takes on at once (intake.py)

    async def deliver_batch(self, work: BatchWork) -> None:
        """One "batch" work message: its recipients, unless the notification was cancelled."""
        header = await self.records.header(work.notification)
        if header is None:
            raise InvalidWork(f"no notification {work.notification!r}")
        if header.cancelled:
            return  # none of these is sent; the status counts them cancelled
        await self.deliver(header.notification, work.recipients, header.version)

    async def deliver(
        self,
        notification: Notification,
        recipients: Sequence[BatchRecipient],
        version: int = 0,
        *,
        patience: float | None = None,
        retry_budget: float | None = None,
    ) -> None:
        """Deliver; a bulk batch that finds no room in this process within `patience` (default:
        the intake's) goes back on the queue, for this process later or a sibling with room.
        Retrying stops after `retry_budget` seconds (default: the invocation's, `retry_budget`)."""
        if lane_of(notification) is not Lane.BULK:
            await self._deliver(notification, recipients, version, retry_budget)
            return
        async with self.intake.take(recipients, patience) as taken:
            if taken:
                await self._deliver(notification, recipients, version, retry_budget, done=taken.done)
                return
        again = BatchWork(notification=notification.id, recipients=tuple(recipients))
        await self.work.put(again, delay=random.choice(YIELD_DELAY))
        log.debug("notification %s: %d recipient(s) given back for now", notification.id, len(recipients))

    async def _deliver(
        self,
        notification: Notification,
        recipients: Sequence[BatchRecipient],
        version: int,
        retry_budget: float | None = None,
        done: Callable[[BatchRecipient], None] | None = None,
    ) -> None:
        batch = _Batch(self, notification, version, retry_budget)
        await batch.run(recipients, done)
        if batch.later:
            delay = max(wait for _, wait in batch.later)
            again = BatchWork(notification=notification.id, recipients=tuple(r for r, _ in batch.later))
            await self.work.put(again, delay=delay)
            log.info("notification %s: %d recipient(s) again in %.0f s", notification.id, len(batch.later), delay)


def _told(done: Callable[[BatchRecipient], None], recipient: BatchRecipient, _: asyncio.Task[None]) -> None:
    done(recipient)


class _Batch:
    """One invocation's deliveries of a notification to some recipients."""

    def __init__(
        self, fanout: Deliveries, notification: Notification, version: int = 0, retry_budget: float | None = None
    ) -> None:
        self._fanout = fanout
        self._notification = notification
        self._version = version  # of the content sent
        self._activity = outgoing(notification.activity())  # deserialized once for every recipient
        self._personal = personalize.is_personal(notification)  # {{name}}, per-language texts: one each
        self._deadline = time.monotonic() + (fanout.retry_budget if retry_budget is None else retry_budget)
        if notification.expires_at is not None:
            # No retry after expiresAt: what is not sent by then is not sent.
            left = (notification.expires_at - clock.now()).total_seconds()
            self._deadline = min(self._deadline, time.monotonic() + left)
        self._stop_check = StopCheck(fanout.records, notification.id)
        self._settled: list[Settled] = []
        # Recipients whose claim has been asked for: from then on the send may go out, so a
        # stopping host lets them finish rather than leave a claimed row that never sends.
        self._claiming: set[str] = set()
        self.later: list[tuple[StoredReference | RosterMember, float]] = []  # (recipient, seconds to wait)

    async def run(
        self, recipients: Sequence[StoredReference | RosterMember], done: Callable[[BatchRecipient], None] | None = None
    ) -> None:
        """Each recipient's send, at once; `done` is told of each as its send ends."""
        flusher = asyncio.create_task(self._flush_periodically())
        tasks = {
            asyncio.create_task(self._one_member(r) if isinstance(r, RosterMember) else self._one(r)): recipient_key(r)
            for r in recipients
        }
        if done is not None:
            for task, recipient in zip(tasks, recipients, strict=True):
                task.add_done_callback(functools.partial(_told, done, recipient))
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

    async def _stop(self, tasks: dict[asyncio.Task[None], str]) -> None:
        """The host is stopping us: drop what has not been claimed, let the rest finish."""
        for task, key in tasks.items():
            if key not in self._claiming:
                task.cancel()
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in late:
                task.cancel()  # its row stays "sending" and is reported unconfirmed later

    def _activity_for(self, recipient: StoredReference, member: RosterMember | None = None) -> PreparedActivity:
        if not self._personal:
            return self._activity
        return outgoing(personalize.activity_for(self._notification, personalize.person_of(recipient, member)))

    async def _one(self, recipient: StoredReference) -> None:
        if recipient.opted_out or not recipient.active:
            if recipient.opted_out:
                self._settled.append(Settled(recipient, RecipientState.OPTED_OUT, detail="opted out"))
            else:
                self._settled.append(Settled(recipient, RecipientState.GONE, detail=recipient.inactive_reason))
            return
        claimant = _Claimant(self, recipient)
        result = await self._fanout.delivery.send_patiently(
            recipient,
            [self._activity_for(recipient)],
            deadline=self._deadline,
            claimant=claimant,
            lane=lane_of(self._notification),
        )
        if result.outcome is Outcome.SKIPPED:
            if claimant.busy:
                self.later.append((recipient, SEND_LEASE.total_seconds()))
            return
        row = dataclasses.replace(settled(recipient, claimant.taken[-1], result), version=self._version)
        self._settled.append(row)
        if row.state is RecipientState.RETRY:
            self.later.append((recipient, result.retry_after or 1.0))
        elif row.state is RecipientState.FAILED:
            log.warning("notification %s to %s failed: %s", self._notification.id, recipient.key, row.detail)

    async def may_send(self, recipient: BatchRecipient, claim: Claim) -> bool:
        """Checked after a claim is written: a DELETE that marks the notification first stops
        this send, and one that marks it later finds the row "sending" and waits for it
        (lifecycle.Lifecycle.cancel), so nothing is sent after its answer. An expired one stops too."""
        try:
            stop = await self._stop_reason()
        except Exception as error:
            log.warning(
                "notification %s: could not read whether it was cancelled (%s); %s again later",
                self._notification.id,
                error,
                recipient_key(recipient),
            )
            self._settled.append(
                Settled(
                    recipient,
                    RecipientState.RETRY,
                    claim.attempts,
                    claim.throttled,
                    detail=f"cancel check failed: {error}",
                )
            )
            self.later.append((recipient, 1.0))
            return False
        if stop is not None:
            self._settled.append(Settled(recipient, stop, claim.attempts, claim.throttled))
            return False
        return True

    async def _stop_reason(self) -> RecipientState | None:
        """Why a claimed recipient must not be sent to after all, if it must not."""
        if self._notification.expired(clock.now()):
            return RecipientState.EXPIRED
        if await self._stop_check.stopped():
            return RecipientState.CANCELLED
        return None

    async def _one_member(self, member: RosterMember) -> None:
        """A Teams user known from a roster: through their chat if one is stored, else claim,
        create the chat (stored for every later notification), and send."""
        fanout = self._fanout
        chats = fanout.teams.chats
        existing = await chats.existing(member)
        if existing is not None:
            await self._one(existing)  # the same recipient row: keyed by the Teams user
            return
        # One claim for the create and the send after it: a create's retries hold the row
        # (a second create for the same user would open the same chat, but is not needed).
        claimant = _Claimant(self, member)
        opened = await chats.open(
            member, deadline=self._deadline, claim=claimant.claim, lane=lane_of(self._notification)
        )
        if opened.failure is not None and opened.failure.outcome is Outcome.SKIPPED:
            # Not claimed, or claimed and then stopped (may_send recorded why): nothing created.
            if claimant.busy:
                self.later.append((member, SEND_LEASE.total_seconds()))
            return
        granted = claimant.taken[-1]
        if opened.reference is None:
            assert opened.failure is not None
            failure = dataclasses.replace(opened.failure, attempts=opened.attempts, throttled=opened.throttled)
            row = settled(member, granted, failure, whole_run=True)
            self._settled.append(row)
            if row.state is RecipientState.RETRY:
                self.later.append((member, failure.retry_after or 1.0))
            else:
                log.warning("notification %s to %s: no chat: %s", self._notification.id, member.user_id, row.detail)
            return
        result = await fanout.delivery.send_patiently(
            opened.reference,
            [self._activity_for(opened.reference, member)],
            deadline=self._deadline,
            lane=lane_of(self._notification),
        )
        row = settled(opened.reference, granted, result, whole_run=True)
        row = dataclasses.replace(
            row,
            version=self._version,
            chat_created=True,
            conversation=opened.reference.conversation_id,
            throttled=row.throttled + opened.throttled,  # the create's 429s count as the send's do
        )
        self._settled.append(row)
        if row.state is RecipientState.RETRY:
            self.later.append((opened.reference, result.retry_after or 1.0))

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            with contextlib.suppress(StorageUnavailable):
                await self._flush()  # kept, for the next flush

    async def _flush(self, *, at_once: bool = False) -> None:
        """Write the settled rows. What the process knows is not given up while storage is away:
        the writes wait for it (storage/outage.py), and rows still unwritten after that are kept
        for the next flush (rewriting a row is harmless: outcomes replace). Only the last flush
        lets them go, and then they end as a dead worker's would: unconfirmed after their lease."""
        rows, self._settled = self._settled, []
        if not rows:
            return
        try:
            await self._fanout.records.settle(self._notification.id, rows, clock.now(), at_once=at_once)
            await self._fanout.receipts.expect(self._notification.id, rows, at_once=at_once)
        except Exception as error:
            if not unavailable(error):
                raise
            self._settled[:0] = rows
            log.warning("notification %s: %d outcome(s) wait for storage (%s)", self._notification.id, len(rows), error)
            raise StorageUnavailable(str(error)) from error


class _Claimant:
    """One recipient's row, held only while a request to it is in flight (`delivery.Claimant`);
    for a roster member, `claim` is the hook of their chat's create, held through the send after."""

    def __init__(self, batch: _Batch, recipient: BatchRecipient) -> None:
        self._batch = batch
        self._recipient = recipient
        self.taken: list[Claim] = []

    @property
    def busy(self) -> bool:
        """Its last claim found the row held by another sender: look again once its lease is up."""
        return bool(self.taken) and self.taken[-1].verdict is Verdict.BUSY

    async def claim(self) -> bool:
        batch, recipient = self._batch, self._recipient
        batch._claiming.add(recipient_key(recipient))
        claim = await batch._fanout.records.claim(
            batch._notification.id,
            recipient,
            clock.now(),
            resend_on_crash=batch._notification.on_crash is OnCrash.RESEND,
        )
        self.taken.append(claim)
        return claim.verdict is Verdict.CLAIMED and await batch.may_send(recipient, claim)

    async def release(self, failed: Result) -> None:
        # Written at once and unconditionally: only this sender holds the row while its lease
        # runs, and the channel's answer says nothing was delivered, so RETRY can never lead to a
        # duplicate. Once it is written, a stopping host may drop this recipient (its row is
        # anyone's to take again), so it leaves the set a stop lets finish.
        batch = self._batch
        row = dataclasses.replace(settled(self._recipient, self.taken[-1], failed), state=RecipientState.RETRY)
        await batch._fanout.records.settle(batch._notification.id, [row], clock.now(), at_once=True)
        batch._claiming.discard(recipient_key(self._recipient))


class StopCheck:
    """Whether a notification may no longer be sent (cancelled, or its record gone), as read
    after the caller asked.

    Concurrent askers share one read, as long as it has not been sent yet: a read sent after
    someone's claim was written sees any cancel written before that claim. Claims coalesce into
    transactions and finish together, so a batch pays about one read per transaction.
    """

    def __init__(self, records: NotificationStore, notification_id: str) -> None:
        self._records = records
        self._id = notification_id
        self._next: asyncio.Future[bool] | None = None  # a read not yet sent, for whoever asks now
        self._known = False  # once stopped, always stopped

    async def stopped(self) -> bool:
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
            self._known = await self._records.stopped(self._id)
        except Exception as error:
            result.set_exception(error)
            return
        result.set_result(self._known)
