"""The audience walk: a broadcast's recipients found page by page, cut into batch messages.

The page cursor lives in the notification's record and moves under its ETag, so a redelivered
or duplicated page message cannot fork the walk; each page becomes batch messages that any
instance may take. No invocation walks the whole audience. Teams audiences walk the same way: a
team's stored roster (`teamId`), a list of Entra object ids (`aadObjectIds`, stored beside the
record), every roster user after everyone with a conversation (`includeRoster`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import clock
from ..references import TEAMS, ReferenceStore
from ..teams.reach import ROSTER_PHASE, Page, TeamsReach
from ..work import BatchRecipient, BatchWork, InvalidWork, PageWork, Posted, WorkQueue
from .audience import ToAadUsers, ToEveryone, ToTeam, audience_of
from .batch import cut_batches
from .intake import scope_of_recipient
from .records import Header, NotificationStore, RecipientState, Settled

log = logging.getLogger(__name__)

PAGE_SIZE = 500
PAGES_PER_WALK = 20  # pages one invocation walks at most
WALK_BUDGET = 10.0  # seconds of walking before handing the cursor on
# The first batch of a broadcast is delivered by the invocation that walked it; its queued copy
# stays hidden this long (longer than that delivery may take), as the net if that invocation dies.
FIRST_BATCH_NET = 60.0
# Seconds of pages whose batches are queued together, interleaved by scope: an audience stored
# tenant by tenant (the table's order) then reaches the queue mixed, so that the batches an
# instance takes at once span its tenants' budgets instead of waiting for one tenant's pace.
INTERLEAVE_SPAN = 3.0

FirstBatch = Callable[[list[BatchRecipient], Posted], None]


@dataclass
class Walked:
    """Pages walked since the cursor last moved: what they found and the batches cut from them."""

    cursor: dict[str, str] | None
    since: float = field(default_factory=time.monotonic)
    pages: int = 0
    found: int = 0
    note: str = ""
    batches: list[BatchWork] = field(default_factory=list)

    def add(self, page: Page, batches: Sequence[BatchWork]) -> None:
        self.cursor = page.cursor
        self.pages += 1
        self.found += len(page.found) + page.recorded
        self.note = page.note or self.note
        self.batches.extend(batches)


def interleaved(batches: Sequence[BatchWork]) -> list[BatchWork]:
    """Batches in turn by the scope most of each one's recipients count in, in order within a scope."""
    by_scope: dict[str, list[BatchWork]] = {}
    for batch in batches:
        main, _ = Counter(scope_of_recipient(r) for r in batch.recipients).most_common(1)[0]
        by_scope.setdefault(main, []).append(batch)
    rounds = itertools.zip_longest(*by_scope.values())
    return [batch for round_ in rounds for batch in round_ if batch is not None]


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
        walked = Walked(header.cursor)
        for n in range(PAGES_PER_WALK):
            page = await self._page(header, audience, walked.cursor)
            if page.wait:
                if await self._hand_on(header, walked) is not None:
                    await self.work.put(PageWork(notification=notification_id), delay=page.wait)
                return
            batches = cut_batches(notification_id, page.found)
            if first_batch is not None and batches:
                net = await self.work.put(batches[0], FIRST_BATCH_NET)
                first_batch(list(batches[0].recipients), net)
                first_batch, batches = None, batches[1:]
            walked.add(page, batches)
            if n == 0 or walked.cursor is None or time.monotonic() - walked.since > INTERLEAVE_SPAN:
                moved = await self._hand_on(header, walked)
                if moved is None or moved.planned:
                    return  # another copy of this page message moved the cursor first; or walked
                header, walked = moved, Walked(moved.cursor)
            if time.monotonic() - started > WALK_BUDGET:
                break
        if walked.pages and (await self._hand_on(header, walked)) is None:
            return
        await self.work.put(PageWork(notification=notification_id))

    async def _hand_on(self, header: Header, walked: Walked) -> Header | None:
        """The pages walked since the cursor last moved: their batches queued, scope by scope in
        turn, then the cursor moved past them (in that order, so a walk that dies between the two
        queues its batches again rather than never)."""
        if not walked.pages:
            return header
        for batch in interleaved(walked.batches):
            await self.work.put(batch)
        return await self.records.advance(
            header,
            found=walked.found,
            cursor=walked.cursor,
            planned=walked.cursor is None,
            note=walked.note,
            pages=walked.pages,
        )

    async def _page(
        self, header: Header, audience: ToEveryone | ToTeam | ToAadUsers, cursor: dict[str, str] | None
    ) -> Page:
        """The page of a notification's audience at `cursor`, whichever kind it is."""
        match audience:
            case ToTeam(team_id=team_id):
                return await self.teams.team_page(team_id, cursor, PAGE_SIZE)
            case ToAadUsers(aad_object_ids=ids, tenant_id=tenant_id):
                return await self._aad_page(header, cursor, ids, tenant_id)
            case ToEveryone() if cursor is not None and ROSTER_PHASE in cursor:
                return await self.teams.roster_users_page(cursor, PAGE_SIZE)
            case ToEveryone(channel_id=channel_id, tenant_id=tenant_id, include_roster=include_roster):
                found, following = await self.references.broadcast_page(
                    channel_id=channel_id, tenant_id=tenant_id, cursor=cursor, size=PAGE_SIZE
                )
                if following is None and include_roster and channel_id in (None, TEAMS):
                    following = {ROSTER_PHASE: "1"}  # then every user known from a roster
                return Page(list(found), following)

    async def _aad_page(
        self, header: Header, cursor: dict[str, str] | None, ids: Sequence[str], tenant_id: str | None
    ) -> Page:
        offset = int((cursor or {}).get("offset", 0))
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
