"""Roster page reads and channel posts are Connector calls like sends: they take a slot of the
process's bound on requests in flight, and a 429 answering them widens the app's margin (Teams
counts them in the same per-app limit)."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

from devtools.connector_stub import CREATE, PAGED_MEMBERS
from proactive_bot.delivery.rate_limits import APP_MARGIN_MIN
from proactive_bot.teams.chats import ChatOpener
from proactive_bot.teams.roster import RosterWalk
from proactive_bot.teams.rows import RosterState
from proactive_bot.work import Posted, Work, WorkQueue
from tests import activities
from tests.core.teams.test_reach import TEAM, event, installed


class CountedSlots(asyncio.Semaphore):
    """A bound on requests in flight that counts how often it was taken."""

    def __init__(self, value: int = 4) -> None:
        super().__init__(value)
        self.taken = 0

    async def acquire(self) -> Literal[True]:
        self.taken += 1
        return await super().acquire()


class Requeued(WorkQueue):
    """A work queue that keeps what it is given (the walk hands itself on through it)."""

    def __init__(self) -> None:  # no queue behind it
        self.put_messages: list[tuple[Work, float]] = []

    async def put(self, work: Work, delay: float = 0) -> Posted:
        self.put_messages.append((work, delay))
        return Posted(f"kept-{len(self.put_messages)}", None)


async def test_a_roster_page_answered_429_widens_the_apps_margin(engine_factory) -> None:
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 3)
    engine.stub.fail(TEAM, statuses=[429], retry_after=1)
    await event(engine, activities.teams_install(engine.stub.url))
    assert engine.limiter.app_margin == APP_MARGIN_MIN

    [walk] = [m async for m in engine.work_queue.receive_messages(max_messages=32)]
    await engine.handle(json.loads(walk.content))

    assert [r.status for r in engine.stub.received if r.route == PAGED_MEMBERS] == [429]
    assert engine.limiter.app_margin > APP_MARGIN_MIN  # as a send's 429 does


async def test_roster_page_reads_take_a_slot_each(engine_factory) -> None:
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 1200)  # three pages of at most 500
    await event(engine, activities.teams_install(engine.stub.url))
    slots = CountedSlots()
    walk = RosterWalk(engine.teams.store, engine.delivery._adapter, engine.limiter, Requeued(), slots=slots)

    await walk.next_pages(TEAM)

    team = await engine.teams.store.team(TEAM)
    assert (team.roster_state, team.roster_members) == (RosterState.DONE, 1200)
    assert slots.taken == len([r for r in engine.stub.received if r.route == PAGED_MEMBERS]) == 3


async def test_a_channel_post_takes_a_slot_and_its_429_widens_the_apps_margin(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)
    team = await engine.teams.store.team(TEAM)
    slots = CountedSlots()
    chats = ChatOpener(engine.delivery._adapter, engine.references, engine.limiter, slots)
    engine.stub.clear()
    engine.stub.fail(None, statuses=[429], retry_after=1)

    refused = await chats.post_to_channel(team.service_url, team.tenant_id, "19:general@thread.tacv2", {"text": "hi"})
    posted = await chats.post_to_channel(team.service_url, team.tenant_id, "19:general@thread.tacv2", {"text": "hi"})

    assert not isinstance(refused, dict) and refused.status == 429 and refused.retry_after == 1
    assert isinstance(posted, dict) and posted["id"]
    assert engine.limiter.app_margin > APP_MARGIN_MIN
    assert slots.taken == 2 == len([r for r in engine.stub.received if r.route == CREATE])
