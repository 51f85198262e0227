"""The audience walk: a broadcast's recipients found page by page, cut into batch messages.

The page cursor lives in the notification's record and moves under its ETag, so a redelivered
or duplicated page message cannot fork the walk; each page becomes batch messages that any
instance may take. No invocation walks the whole audience. Teams audiences walk the same way: a
team's stored roster (`teamId`), a list of Entra object ids (`aadObjectIds`, stored beside the
record), every roster user after everyone with a conversation (`includeRoster`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import clock
from ..references import TEAMS, ReferenceStore
from ..teams.reach import ROSTER_PHASE, Page, TeamsReach
from ..work import BatchRecipient, InvalidWork, PageWork, Posted, WorkQueue
from .audience import ToAadUsers, ToEveryone, ToTeam, audience_of
from .batch import cut_batches
from .records import Header, NotificationStore, RecipientState, Settled

log = logging.getLogger(__name__)

PAGE_SIZE = 500
PAGES_PER_WALK = 20  # pages one invocation walks at most
WALK_BUDGET = 10.0  # seconds of walking before handing the cursor on
# The first batch of a broadcast is delivered by the invocation that walked it; its queued copy
# stays hidden this long (longer than that delivery may take), as the net if that invocation dies.
FIRST_BATCH_NET = 60.0

FirstBatch = Callable[[list[BatchRecipient], Posted], None]


@dataclass(kw_only=True)
class AudienceWalk:
    references: ReferenceStore
    records: NotificationStore
    work: WorkQueue
    teams: TeamsReach

    async def next_page(
        self,
        notification_id: str,
        *,
        first_batch: FirstBatch | None = None,
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
        audience = audience_of(header.notification.to)
        if not isinstance(audience, ToEveryone | ToTeam | ToAadUsers):
            # Its one recipient is delivered inline; walking would reach everyone its `to` filters by.
            raise InvalidWork(f"notification {notification_id!r} is not a broadcast: no audience to walk")
        if header.planned or header.cancelled:
            return  # walked, or cancelled: the rest of the audience is never looked at
        if isinstance(audience, ToAadUsers):  # the list is stored beside the record, not in it
            audience = ToAadUsers(
                aad_object_ids=tuple(await self.records.audience(notification_id)), tenant_id=audience.tenant_id
            )
        for _ in range(PAGES_PER_WALK):
            page = await self._page(header, audience)
            if page.wait:
                await self.work.put(PageWork(notification=notification_id), delay=page.wait)
                return
            for batch in cut_batches(notification_id, page.found):
                if first_batch is None:
                    await self.work.put(batch)
                    continue
                net = await self.work.put(batch, FIRST_BATCH_NET)
                first_batch(list(batch.recipients), net)
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
        await self.work.put(PageWork(notification=notification_id))

    async def _page(self, header: Header, audience: ToEveryone | ToTeam | ToAadUsers) -> Page:
        """The next page of a notification's audience, whichever kind it is."""
        cursor = header.cursor
        match audience:
            case ToTeam(team_id=team_id):
                return await self.teams.team_page(team_id, cursor, PAGE_SIZE)
            case ToAadUsers(aad_object_ids=ids, tenant_id=tenant_id):
                return await self._aad_page(header, ids, tenant_id)
            case ToEveryone() if cursor is not None and ROSTER_PHASE in cursor:
                return await self.teams.roster_users_page(cursor, PAGE_SIZE)
            case ToEveryone(channel_id=channel_id, tenant_id=tenant_id, include_roster=include_roster):
                found, following = await self.references.broadcast_page(
                    channel_id=channel_id, tenant_id=tenant_id, cursor=cursor, size=PAGE_SIZE
                )
                if following is None and include_roster and channel_id in (None, TEAMS):
                    following = {ROSTER_PHASE: "1"}  # then every user known from a roster
                return Page(list(found), following)

    async def _aad_page(self, header: Header, ids: Sequence[str], tenant_id: str | None) -> Page:
        offset = int((header.cursor or {}).get("offset", 0))
        known, unknown = await self.teams.resolve_aad(ids[offset : offset + PAGE_SIZE], tenant_id)
        if unknown:
            # Recorded at once: nothing can ever be sent to them, and the status counts them.
            detail = "not known: no chat, no roster, no install in the tenant"
            await self.records.settle(
                header.notification.id,
                [Settled(u, RecipientState.FAILED, detail=detail) for u in unknown],
                clock.now(),
                at_once=True,
            )
        following = offset + PAGE_SIZE
        return Page(
            known,
            {"offset": str(following)} if following < len(ids) else None,
            note="some recipients are not known" if unknown else "",
            recorded=len(unknown),
        )
