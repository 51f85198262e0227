"""Reading a team's roster in the background: page by page, through the work queue.

The install turn must answer in seconds, so it only records the team and puts a "roster" work
message on the queue. Each such message reads pages of
`GET {serviceUrl}/v3/conversations/{teamId}/pagedmembers?pageSize=500&continuationToken=...`
(paced by the same RateLimiter as sends: Teams counts roster reads in the app's limit), stores
the members, and moves the cursor kept on the team's row under its ETag. A crash resumes from
the last stored cursor; a duplicated message cannot fork the walk (the ETag lets one copy move
the cursor, the other stops); storing members is an upsert, so a page read twice is harmless.
A page the channel fails to serve is read again later, and given up after `ROSTERS` allows
(delivery/retries.py); a 403/404 or a malformed page fails the roster at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..channel.adapter import ChannelAdapter
from ..delivery.calls import Calls
from ..delivery.lanes import Lane
from ..delivery.outcome import Outcome, Result
from ..delivery.rate_limits import RateLimiter
from ..delivery.retries import ROSTERS, RetryPolicy
from ..references import TEAMS
from ..work import RosterWork, WorkQueue
from .rows import RosterMember, RosterState, Team
from .store import TeamsStore

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # the most Teams serves in one page
WALK_BUDGET = 10.0  # seconds of reading before handing the cursor on through the queue


class RosterWalk:
    def __init__(
        self,
        store: TeamsStore,
        adapter: ChannelAdapter,
        limiter: RateLimiter,
        work: WorkQueue,
        retries: RetryPolicy = ROSTERS,
        *,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        self._store = store
        self._adapter = adapter
        # Page reads count in the app's limit as sends do: the same limiter, and (`slots`:
        # Delivery.slots) the same bound on requests in flight.
        self._calls = Calls(limiter, slots)
        self._work = work
        self._retries = retries

    async def start(self, team_id: str) -> None:
        await self._work.put(RosterWork(team=team_id))

    async def next_pages(self, team_id: str, failures: int = 0) -> None:
        """Read pages of the team's roster until done, the budget is spent (then hand on), or
        the channel asks to wait (then come back after its Retry-After). `failures`: the reads
        the channel failed in a row before this one (carried by the work message)."""
        started = time.monotonic()
        while True:
            team = await self._store.team(team_id)
            if team is None or not team.active or team.roster_state is not RosterState.WALKING:
                return
            try:
                # Bulk: a roster is read for walked audiences; its tenant's budget pays for it.
                reply = await self._calls.make(
                    TEAMS, "members|" + team_id, self._page(team), lane=Lane.BULK, tenant_id=team.tenant_id
                )
            except ValueError as error:  # a body that is not JSON
                page: dict[str, Any] = {"error": f"{type(error).__name__}: {error}"}
            else:
                if reply.value is None:
                    await self._unread(team_id, failures, reply.result)
                    return
                page = reply.value
            listed, token = page.get("members"), page.get("continuationToken")
            if not isinstance(listed, list) or not isinstance(token, (str, type(None))):
                # Not a page: neither "the last one" (that would end the walk as if complete)
                # nor worth reading again and again. What was read stands, as for a 403.
                log.warning("roster of %s: the channel answered a malformed page: %.200s", team_id, page)
                await self._store.fail_roster(team_id, "roster not readable: the channel answered a malformed page")
                return
            members = [
                RosterMember.from_teams(m, team.tenant_id, team.service_url)
                for m in listed
                if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]
            ]
            failures = 0
            await self._store.save_members(team_id, members)
            moved = await self._store.advance_roster(team, cursor=token or None, found=len(members))
            if moved is None:
                return  # another copy of this message moved the cursor first and carries on
            if moved.roster_state is RosterState.DONE:
                log.info("roster of %s read: %d members in %d pages", team_id, moved.roster_members, moved.roster_pages)
                return
            if time.monotonic() - started > WALK_BUDGET:
                await self._work.put(RosterWork(team=team_id))
                return

    def _page(self, team: Team) -> Callable[[], Awaitable[dict[str, Any]]]:
        """The call that reads the team's next page (from its stored cursor)."""
        return lambda: self._adapter.paged_members(team.service_url, team.team_id, PAGE_SIZE, team.roster_cursor)

    async def _unread(self, team_id: str, failures: int, result: Result) -> None:
        """What a page the channel did not serve means to the walk."""
        if result.outcome is Outcome.THROTTLED:
            # Not a failure: read again after the Retry-After, the count of failures unchanged.
            delay = result.retry_after if result.retry_after is not None else self._retries.first_delay
            log.info("roster of %s: %s; again in %.0f s", team_id, result.detail, delay)
            await self._work.put(RosterWork(team=team_id, failures=failures), delay=delay)
        elif result.retryable:  # 5xx, 412, network
            await self._failed_read(team_id, failures + 1, result)
        else:
            # 403/404 (gone: the bot is no longer in the team; its uninstall event says so too),
            # or a serviceUrl no longer allowed: final, or the team's notifications would wait
            # for the walk forever. Notifications to the team reach what was read.
            log.warning("roster of %s cannot be read: %s", team_id, result.detail)
            await self._store.fail_roster(team_id, f"roster not readable: {result.detail}")

    async def _failed_read(self, team_id: str, failures: int, failed: Result) -> None:
        """The channel failed to serve a page (5xx, 412, network): again later, or give up."""
        if self._retries.exhausted(failures):
            log.warning(
                "roster of %s: %d failed reads in a row, the last: %s; giving up", team_id, failures, failed.detail
            )
            await self._store.fail_roster(
                team_id, f"roster not readable: {failures} failed reads, the last: {failed.detail}"
            )
            return
        delay = self._retries.delay(failures, failed.retry_after)
        log.info("roster of %s: %s; again in %.0f s", team_id, failed.detail, delay)
        await self._work.put(RosterWork(team=team_id, failures=failures), delay=delay)
