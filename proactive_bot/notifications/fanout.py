"""Fan-out: how one notification becomes deliveries, exactly once per recipient.

- To one user or conversation: delivered inline, by the invocation that took the message.
- To everyone: the audience is walked in pages, several per work-queue message. The page cursor lives in
  the notification's record and moves under its ETag, so a redelivered or duplicated page
  message cannot fork the walk; each page becomes batch messages that any instance may take.
  No invocation walks the whole audience.
- Teams audiences walk the same way: a team's stored roster (`teamId`), a list of Entra object
  ids (`aadObjectIds`, stored beside the record), every roster user after everyone with a
  conversation (`includeRoster`). A roster member without a chat travels in the batch as a
  member; the batch claims them, creates the chat (teams.chats) and sends. A `teamChannel`
  notification is one new thread (or a reply in one), delivered inline (posts.py).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.queue.aio import QueueClient

from .. import clock
from ..channel.activity import outgoing
from ..delivery.outcome import Outcome, Result
from ..delivery.sender import Delivery
from ..references import TEAMS, ReferenceStore, StoredReference
from ..teams.reach import ROSTER_PHASE, Page, TeamsReach
from ..teams.store import RosterMember
from . import personalize
from .contract import Notification, OnCrash
from .posts import ChannelPosts
from .receipts import ReadReceipts
from .records import (
    SEND_LEASE,
    Claim,
    Header,
    NotificationStore,
    Recipient,
    RecipientRow,
    RecipientState,
    Settled,
    Verdict,
    recipient_key,
    settled,
    shard_of,
)
from .schedule import Schedule

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

    async def put(self, work: dict[str, Any], delay: float = 0) -> Posted:
        # The queue counts whole seconds; rounding down would bring a throttled batch back early.
        sent = await self._client.send_message(
            json.dumps(work, separators=(",", ":")), visibility_timeout=math.ceil(delay) or None
        )
        return Posted(sent.id, sent.pop_receipt)

    async def withdraw(self, posted: Posted) -> None:
        """Delete a message put here, if it is still waiting. One a worker has taken meanwhile
        (it has a new pop receipt), or that cannot be deleted now, is left to run: every message
        here is safe to run late or twice."""
        try:
            await self._client.delete_message(posted.id, posted.pop_receipt)
        except (AzureError, OSError, TimeoutError) as error:  # as the budget's storage calls
            log.info("work message %s left to run: %s", posted.id, type(error).__name__)


@dataclass(frozen=True)
class Posted:
    """A message as put on the work queue: what it takes to withdraw it."""

    id: str
    pop_receipt: str | None


@dataclass
class Fanout:
    references: ReferenceStore
    records: NotificationStore
    delivery: Delivery
    work: WorkQueue
    retry_budget: float = 45.0  # seconds of retrying within one invocation
    schedule: Schedule | None = None  # where notBefore waits (None: scheduling is refused)
    receipts: ReadReceipts | None = None  # indexes sent deliveries for read receipts
    teams: TeamsReach | None = None  # Teams audiences (teamId, aadObjectIds, teamChannel, includeRoster)

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
                # The first pages are walked here, not through the work queue, and the first
                # batch is delivered here too: two queue hops (each a poll, up to
                # maxPollingInterval when idle) less before the first delivery. A redelivered
                # message walks nothing twice: the cursor moves under its ETag.
                first: list[asyncio.Task[None]] = []

                async def deliver_first(recipients: list[StoredReference | RosterMember], net: Posted) -> None:
                    await self.deliver(notification, recipients, header.version)
                    # Done: its copy on the queue would only find every recipient settled, after
                    # taking a rate slot for each (the claim comes just before the send).
                    await self.work.withdraw(net)

                def start_first(recipients: list[StoredReference | RosterMember], net: Posted) -> None:
                    # While the walk goes on: the first users need not wait for the last page.
                    first.append(asyncio.create_task(deliver_first(recipients, net)))

                try:
                    await self.next_page(notification.id, first_batch=start_first)
                finally:
                    if first:
                        await first[0]  # cancelled with us: it stops as any batch does
            return
        if "teamChannel" in notification.to:
            await self._posts.post(header)
            return
        recipient = await self._resolve(notification)
        if not header.planned:  # else a redelivery: the recipient's row says what is left to do
            note = "" if recipient else "recipient not known"
            await self.records.advance(header, found=int(bool(recipient)), cursor=None, planned=True, note=note)
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

    async def next_page(
        self,
        notification_id: str,
        *,
        first_batch: Callable[[list[StoredReference | RosterMember], Posted], None] | None = None,
    ) -> None:
        """Walk the next pages of a broadcast's audience into batch messages, then hand on the cursor.

        Several pages per invocation (up to PAGES_PER_WALK, within WALK_BUDGET): each step of the
        walk through the queue costs a poll, and the batches wait for the walk.

        `first_batch`: the caller delivers the first batch itself, handed to it as soon as it is
        cut. Its message is still written, hidden for FIRST_BATCH_NET seconds: if the caller dies
        before it is done, the batch is delivered from the queue; if not, the caller withdraws it.
        """
        started = time.monotonic()
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        if not header.notification.is_broadcast:
            # Its one recipient is delivered inline; walking would reach everyone its `to` filters by.
            raise InvalidWork(f"notification {notification_id!r} is not a broadcast: no audience to walk")
        if header.planned or header.cancelled:
            return  # walked, or cancelled: the rest of the audience is never looked at
        audience: list[str] | None = None
        for _ in range(PAGES_PER_WALK):
            if "aadObjectIds" in header.notification.to and audience is None:
                audience = await self.records.audience(notification_id)
            page = await self._page(header, audience or [])
            if page.wait:
                await self.work.put({"kind": "page", "notification": notification_id}, delay=page.wait)
                return
            for batch in _batches(page.found):
                if first_batch is None:
                    await self.work.put(_batch_message(notification_id, batch))
                    continue
                net = await self.work.put(_batch_message(notification_id, batch), FIRST_BATCH_NET)
                first_batch(batch, net)
                first_batch = None
            cursor = page.cursor
            moved = await self.records.advance(
                header, found=len(page.found) + page.recorded, cursor=cursor, planned=cursor is None, note=page.note
            )
            if moved is None:
                return  # another copy of this page message moved the cursor first and carries on
            header = moved
            if header.planned:
                return
            if time.monotonic() - started > WALK_BUDGET:
                break
        await self.work.put({"kind": "page", "notification": notification_id})

    async def _page(self, header: Header, audience: Sequence[str]) -> Page:
        """The next page of a notification's audience, whichever kind it is."""
        to, cursor = header.notification.to, header.cursor
        if ("teamId" in to or "aadObjectIds" in to or to.get("includeRoster")) and self.teams is None:
            return Page([], None, note="Teams audiences are not configured (TeamsTable)")
        if "teamId" in to:
            assert self.teams is not None
            return await self.teams.team_page(to["teamId"], cursor, PAGE_SIZE)
        if "aadObjectIds" in to:
            assert self.teams is not None
            offset = int((cursor or {}).get("offset", 0))
            known, unknown = await self.teams.resolve_aad(audience[offset : offset + PAGE_SIZE], to.get("tenantId"))
            if unknown:
                # Recorded at once: nothing can ever be sent to them, and the status counts them.
                await self.records.settle(
                    header.notification.id,
                    [
                        Settled(
                            u, RecipientState.FAILED, detail="not known: no chat, no roster, no install in the tenant"
                        )
                        for u in unknown
                    ],
                    clock.now(),
                    at_once=True,
                )
            following = offset + PAGE_SIZE
            return Page(
                known,
                {"offset": str(following)} if following < len(audience) else None,
                note="some recipients are not known" if unknown else "",
                recorded=len(unknown),
            )
        if cursor is not None and ROSTER_PHASE in cursor:
            assert self.teams is not None
            return await self.teams.roster_users_page(cursor, PAGE_SIZE)
        found, following = await self.references.broadcast_page(
            channel_id=to.get("channelId"), tenant_id=to.get("tenantId"), cursor=cursor, size=PAGE_SIZE
        )
        if following is None and to.get("includeRoster") and to.get("channelId") in (None, TEAMS):
            following = {ROSTER_PHASE: "1"}  # then every user known from a roster
        return Page(list(found), following)

    async def deliver_batch(
        self, notification_id: str, references: Sequence[dict[str, Any]], members: Sequence[dict[str, Any]] = ()
    ) -> None:
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        now = clock.now()
        try:
            recipients = _recipients_of(references, members, now)
        except (ValueError, AttributeError, TypeError) as error:
            raise InvalidWork(f"a batch recipient is not a conversation reference or roster member: {error}") from None
        if header.cancelled:
            return  # none of these is sent; the status counts them cancelled
        await self.deliver(header.notification, recipients, header.version)

    async def deliver(
        self, notification: Notification, recipients: Sequence[StoredReference | RosterMember], version: int = 0
    ) -> None:
        batch = _Batch(self, notification, version)
        await batch.run(recipients)
        if batch.later:
            delay = max(wait for _, wait in batch.later)
            await self.work.put(_batch_message(notification.id, [r for r, _ in batch.later]), delay=delay)
            log.info("notification %s: %d recipient(s) again in %.0f s", notification.id, len(batch.later), delay)

    async def resend(self, notification_id: str, state: RecipientState) -> int | None:
        """Send once more to the recipients in `state` (unconfirmed): the operator's call, since
        only they know whether a duplicate is worse than a miss. Returns how many, None if there
        is no such notification."""
        header = await self.records.header(notification_id)
        if header is None:
            return None
        rows = await self.records.hand_out_again(notification_id, state, clock.now())
        if rows and "teamChannel" in header.notification.to:
            # Its one row is the channel's: posted again as at first (a new thread, or a reply).
            await self.work.put({"kind": "post", "notification": notification_id})
            return len(rows)
        found = [r for r in await asyncio.gather(*(self._recipient_of(row) for row in rows)) if r is not None]
        for batch in _batches(found):
            await self.work.put(_batch_message(notification_id, batch))
        log.info("notification %s: %d %s recipient(s) handed out again", notification_id, len(found), state.public)
        return len(rows)

    async def _recipient_of(self, row: RecipientRow) -> StoredReference | RosterMember | None:
        """Whom a row is about, found again: its conversation, or (a Teams user known from a
        roster, claimed before their chat was created) the roster member."""
        if row.conversation_id:
            # References are never deleted (a gone one is only marked inactive, and the batch
            # settles it `gone`), so every row's address is still there.
            return await self.references.get(row.channel_id, row.conversation_id)
        if self.teams is not None and row.user_id:
            return await self.teams.store.reachable_user(row.user_id)
        log.warning("a %s row of no conversation, and no Teams reach to find its user", row.state.public)
        return None

    @property
    def _posts(self) -> ChannelPosts:
        return ChannelPosts(self.records, self.delivery, self.work, self.teams, self.retry_budget)

    async def handle(self, work: Any) -> None:
        """One work-queue message; one it cannot act on raises InvalidWork (for the poison queue)."""
        if not isinstance(work, dict):
            raise InvalidWork("expected an object with a 'notification' id")
        kind = work.get("kind")
        if kind == "roster":
            if not isinstance(work.get("team"), str):
                raise InvalidWork("a roster walk needs a 'team' id")
            if self.teams is None:
                raise InvalidWork("a roster walk, but Teams reach is not configured")
            failures = work.get("failures", 0)
            await self.teams.roster.next_pages(work["team"], failures if isinstance(failures, int) else 0)
            return
        if not isinstance(work.get("notification"), str):
            raise InvalidWork("expected an object with a 'notification' id")
        notification_id = work["notification"]
        if kind == "page":
            await self.next_page(notification_id)
        elif kind == "batch":
            references, members = work.get("recipients", []), work.get("members", [])
            if not isinstance(references, list) or not isinstance(members, list):
                raise InvalidWork("a batch's recipients and members are lists")
            await self.deliver_batch(notification_id, references, members)
        elif kind == "release":
            await self.release(notification_id)
        elif kind == "post":
            header = await self.records.header(notification_id)
            if header is None:
                raise InvalidWork(f"no notification {notification_id!r}")
            if "teamChannel" not in header.notification.to:
                raise InvalidWork(f"notification {notification_id!r} is not a teamChannel post")
            await self._posts.post(header)
        else:
            raise InvalidWork(f"unknown work kind {kind!r}")


class _Batch:
    """One invocation's deliveries of a notification to some recipients."""

    def __init__(self, fanout: Fanout, notification: Notification, version: int = 0) -> None:
        self._fanout = fanout
        self._notification = notification
        self._version = version  # of the content sent
        self._activity = outgoing(notification.activity())  # deserialized once for every recipient
        self._personal = personalize.is_personal(notification)  # {{name}}, per-language texts: one each
        self._deadline = time.monotonic() + fanout.retry_budget
        if notification.expires_at is not None:
            # No retry after expiresAt: what is not sent by then is not sent.
            left = (notification.expires_at - clock.now()).total_seconds()
            self._deadline = min(self._deadline, time.monotonic() + left)
        self._cancellation = Cancellation(fanout.records, notification.id)
        self._settled: list[Settled] = []
        # Recipients whose claim has been asked for: from then on the send may go out, so a
        # stopping host lets them finish rather than leave a claimed row that never sends.
        self._claiming: set[str] = set()
        self.later: list[tuple[StoredReference | RosterMember, float]] = []  # (recipient, seconds to wait)

    async def run(self, recipients: Sequence[StoredReference | RosterMember]) -> None:
        flusher = asyncio.create_task(self._flush_periodically())
        tasks = {
            asyncio.create_task(self._one_member(r) if isinstance(r, RosterMember) else self._one(r)): recipient_key(r)
            for r in recipients
        }
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

    def _activity_for(self, recipient: StoredReference, member: RosterMember | None = None) -> Any:
        if not self._personal:
            return self._activity
        person = personalize.person_of(recipient, member)
        return outgoing(personalize.activity_for(self._notification, person))

    async def _one(self, recipient: StoredReference) -> None:
        if recipient.opted_out or not recipient.active:
            if recipient.opted_out:
                self._settled.append(Settled(recipient, RecipientState.SKIPPED, detail="opted out"))
            else:
                self._settled.append(Settled(recipient, RecipientState.GONE, detail=recipient.inactive_reason))
            return
        claimant = _Claimant(self, recipient)
        result = await self._fanout.delivery.send_patiently(
            recipient, [self._activity_for(recipient)], deadline=self._deadline, claimant=claimant
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

    async def may_send(self, recipient: Recipient, claim: Claim) -> bool:
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
        if await self._cancellation.cancelled():
            return RecipientState.CANCELLED
        return None

    async def _one_member(self, member: RosterMember) -> None:
        """A Teams user known from a roster: through their chat if one is stored, else claim,
        create the chat (stored for every later notification), and send."""
        fanout = self._fanout
        assert fanout.teams is not None
        chats = fanout.teams.chats
        existing = await chats.existing(member)
        if existing is not None:
            await self._one(existing)  # the same recipient row: keyed by the Teams user
            return
        # One claim for the create and the send after it: a create's retries hold the row
        # (a second create for the same user would open the same chat, but is not needed).
        claimant = _Claimant(self, member)
        opened = await chats.open(member, deadline=self._deadline, claim=claimant.claim)
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
            opened.reference, [self._activity_for(opened.reference, member)], deadline=self._deadline
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
            await self._flush()

    async def _flush(self, *, at_once: bool = False) -> None:
        rows, self._settled = self._settled, []
        if rows:
            await self._fanout.records.settle(self._notification.id, rows, clock.now(), at_once=at_once)
            if self._fanout.receipts is not None:
                await self._fanout.receipts.expect(self._notification.id, rows, at_once=at_once)


class _Claimant:
    """One recipient's row, held only while a request to it is in flight (`delivery.Claimant`);
    for a roster member, `claim` is the hook of their chat's create, held through the send after."""

    def __init__(self, batch: _Batch, recipient: Recipient) -> None:
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


def _batches(found: Sequence[StoredReference | RosterMember]) -> list[list[StoredReference | RosterMember]]:
    """Split a page into batches that fit a queue message, one shard per batch, so that a
    batch's claims and outcomes go to one partition together."""
    by_shard: dict[int, list[StoredReference | RosterMember]] = {}
    for recipient in found:
        by_shard.setdefault(shard_of(recipient), []).append(recipient)
    batches: list[list[StoredReference | RosterMember]] = []
    for shard in sorted(by_shard):
        size = BATCH_BYTES  # start a new batch for every shard
        for recipient in by_shard[shard]:
            weight = len(json.dumps(_json_of(recipient))) + 1
            if size + weight > BATCH_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(recipient)
            size += weight
    return batches


def _batch_message(notification_id: str, recipients: Sequence[StoredReference | RosterMember]) -> dict[str, Any]:
    """A batch work message: stored conversations' references, and roster members (their chat to
    be created) apart. `_recipients_of` reads them back."""
    message: dict[str, Any] = {
        "kind": "batch",
        "notification": notification_id,
        "recipients": [r.reference for r in recipients if isinstance(r, StoredReference)],
    }
    members = [r.to_json() for r in recipients if isinstance(r, RosterMember)]
    if members:
        message["members"] = members
    return message


def _recipients_of(
    references: Sequence[dict[str, Any]], members: Sequence[dict[str, Any]], now: datetime
) -> list[StoredReference | RosterMember]:
    """A batch message's recipients (see _batch_message): stored conversations, then roster members."""
    recipients: list[StoredReference | RosterMember] = [
        StoredReference.from_reference(reference, now) for reference in references
    ]
    return recipients + [RosterMember.from_json(member) for member in members]


def _json_of(recipient: StoredReference | RosterMember) -> dict[str, Any]:
    return recipient.to_json() if isinstance(recipient, RosterMember) else recipient.reference


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
            self._known = await self._records.cancelled(self._id)
        except Exception as error:
            result.set_exception(error)
            return
        result.set_result(self._known)
