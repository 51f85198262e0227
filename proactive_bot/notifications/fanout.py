"""Fan-out's intake: how one notification becomes deliveries, exactly once per recipient.

- To one user or conversation: delivered inline, by the invocation that took the message.
- To everyone (or a team, or a list of Entra users): the audience is walked in pages (walk.py)
  into batches (batch.py); the first pages and the first batch right here.
- A `teamChannel` notification is one new thread (or a reply in one), delivered inline (posts.py).
- notBefore: put on the timetable, and started when due (`Timetable.start_due` from the timer, then a
  "start" work message, "release" on the wire).
- An operator's resend hands the unconfirmed recipients out again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from .. import clock
from ..references import ReferenceStore
from ..teams.reach import TeamsReach
from ..work import BatchRecipient, InvalidWork, Posted, PostWork, WorkQueue
from . import walk
from .audience import Audience, ToAadUser, ToConversation, ToTeamChannel, ToUser, audience_of
from .batch import Deliveries, cut_batches
from .contract import Notification
from .posts import TeamsChannelPosts
from .records import Header, NotificationStore, RecipientRow, RecipientState
from .timetable import Timetable

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Fanout:
    references: ReferenceStore
    records: NotificationStore
    work: WorkQueue
    timetable: Timetable  # where notBefore waits
    teams: TeamsReach  # Teams audiences (teamId, aadObjectIds, teamChannel, includeRoster)
    walk: walk.AudienceWalk
    deliveries: Deliveries
    posts: TeamsChannelPosts

    async def start(self, notification: Notification, source: str) -> None:
        """A notification arrived: record it and deliver (or begin walking a broadcast), or
        schedule it for its notBefore."""
        header = await self.records.create(notification, clock.now(), source)
        await self._begin(header)

    async def start_recorded(self, header: Header, *, retry_budget: float) -> None:
        """Start a notification the caller has just recorded (the front door's request), retrying
        its sends for `retry_budget` seconds at most before handing them to the work queue."""
        await self._begin(header, retry_budget)

    async def start_scheduled(self, notification_id: str) -> None:
        """Its notBefore came (a start work message from the timer): start it, unless it
        was cancelled meanwhile. Starting again is harmless: the records make it idempotent."""
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        await self._begin(header)

    async def _begin(self, header: Header, retry_budget: float | None = None) -> None:
        notification = header.notification  # as it now reads (an edit may have come first)
        if header.cancelled:
            return
        now = clock.now()
        if notification.scheduled(now) and not (header.pages or header.planned):
            assert notification.not_before is not None
            await self.timetable.add(notification.id, notification.not_before)
            return
        audience = audience_of(notification.to)
        if notification.is_broadcast:
            if not header.planned and header.pages == 0:
                # The first pages are walked here, not through the work queue, and the first
                # batch is delivered here too: two queue hops (each a poll, up to
                # maxPollingInterval when idle) less before the first delivery. A redelivered
                # message walks nothing twice: the cursor moves under its ETag.
                first: list[asyncio.Task[None]] = []

                async def deliver_first(recipients: list[BatchRecipient], net: Posted) -> None:
                    # No waiting for room here (the caller may be an HTTP request): without it,
                    # the batch goes back on the queue at once (its net stays hidden a minute).
                    await self.deliveries.deliver(notification, recipients, header.version, patience=0)
                    # Done: its copy on the queue would only find every recipient settled, after
                    # taking a rate slot for each (the claim comes just before the send).
                    await self.work.withdraw(net)

                def start_first(recipients: list[BatchRecipient], net: Posted) -> None:
                    # While the walk goes on: the first users need not wait for the last page.
                    first.append(asyncio.create_task(deliver_first(recipients, net)))

                try:
                    await self.walk.next_page(notification.id, first_batch=start_first)
                finally:
                    if first:
                        await first[0]  # cancelled with us: it stops as any batch does
            return
        if isinstance(audience, ToTeamChannel):
            await self.posts.post(header, retry_budget)
            return
        recipient = await self._resolve(audience)
        if not header.planned:  # else a redelivery: the recipient's row says what is left to do
            note = "" if recipient else "recipient not known"
            await self.records.advance(header, found=int(bool(recipient)), cursor=None, planned=True, note=note)
        if recipient is None:
            log.warning("notification %s: recipient %s is not known; nothing sent", notification.id, notification.to)
            return
        await self.deliveries.deliver(notification, [recipient], header.version, retry_budget=retry_budget)

    async def _resolve(self, audience: Audience) -> BatchRecipient | None:
        """The one recipient of a notification that is not walked."""
        match audience:
            case ToUser(channel_id=channel_id, user_id=user_id):
                return await self.references.find_user(channel_id, user_id)
            case ToConversation(channel_id=channel_id, conversation_id=conversation_id):
                return await self.references.get(channel_id, conversation_id)
            case ToAadUser(aad_object_id=aad_object_id, tenant_id=tenant_id):
                # Their chat, else their roster entry (the chat created at delivery): teams/reach.py.
                return await self.teams.one_aad(aad_object_id, tenant_id)
            case _:
                raise InvalidWork(f"no one recipient in {type(audience).__name__}")

    async def resend(self, notification_id: str, state: RecipientState) -> int | None:
        """Send once more to the recipients in `state` (unconfirmed): the operator's call, since
        only they know whether a duplicate is worse than a miss. Returns how many, None if there
        is no such notification."""
        header = await self.records.header(notification_id)
        if header is None:
            return None
        rows = await self.records.hand_out_again(notification_id, state, clock.now())
        if rows and isinstance(audience_of(header.notification.to), ToTeamChannel):
            # Its one row is the channel's: posted again as at first (a new thread, or a reply).
            await self.work.put(PostWork(notification=notification_id))
            return len(rows)
        found = [r for r in await asyncio.gather(*(self._recipient_of(row) for row in rows)) if r is not None]
        for batch in cut_batches(notification_id, found):
            await self.work.put(batch)
        log.info("notification %s: %d %s recipient(s) handed out again", notification_id, len(found), state.public)
        return len(rows)

    async def _recipient_of(self, row: RecipientRow) -> BatchRecipient | None:
        """Whom a row is about, found again: its conversation, or (a Teams user known from a
        roster, claimed before their chat was created) the roster member."""
        if row.conversation_id:
            # References are never deleted (a gone one is only marked inactive, and the batch
            # settles it `gone`), so every row's address is still there.
            return await self.references.get(row.channel_id, row.conversation_id)
        if row.user_id:
            return await self.teams.store.reachable_user(row.user_id)
        log.warning("a %s row of no conversation and no user", row.state.public)
        return None

    async def post_again(self, work: PostWork) -> None:
        """One "post" work message: a teamChannel post whose last try ran out of time or found it busy."""
        header = await self.records.header(work.notification)
        if header is None:
            raise InvalidWork(f"no notification {work.notification!r}")
        if not isinstance(audience_of(header.notification.to), ToTeamChannel):
            raise InvalidWork(f"notification {work.notification!r} is not a teamChannel post")
        await self.posts.post(header)
