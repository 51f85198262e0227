"""The roster walk when the channel does not serve a page: 429, 403/404.

Real Azurite and the Connector stub (its Teams directory: devtools/connector_stub/teams.py).
"""

from __future__ import annotations

import json

import pytest

from devtools.connector_stub import PAGED_MEMBERS
from proactive_bot.teams.store import RosterState
from tests import activities
from tests.core.teams.test_reach import TEAM, event


def reads(engine) -> list[int]:
    """The statuses the stub answered the paged members reads with, in order."""
    return [r.status for r in engine.stub.received if r.route == PAGED_MEMBERS]


async def test_a_429_on_a_roster_page_is_read_again_only_after_its_retry_after(engine_factory) -> None:
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 3)
    engine.stub.fail(TEAM, statuses=[429], retry_after=3)
    await event(engine, activities.teams_install(engine.stub.url))

    [walk] = [m async for m in engine.work_queue.receive_messages(max_messages=32)]
    await engine.handle(json.loads(walk.content))
    await engine.work_queue.delete_message(walk)

    # Handed back to the queue, invisible until the Retry-After has passed: not read again now.
    assert [m async for m in engine.work_queue.receive_messages(max_messages=32)] == []
    assert reads(engine) == [429]
    assert (await engine.teams.store.team(TEAM)).roster_state is RosterState.WALKING
    await engine.drain(wait_for_delayed=10)
    team = await engine.teams.store.team(TEAM)
    assert (team.roster_state, team.roster_members) == (RosterState.DONE, 3)
    assert reads(engine) == [429, 200]


@pytest.mark.parametrize("status", [403, 404])
async def test_a_roster_the_channel_refuses_fails_after_one_read(engine_factory, status) -> None:
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 3)
    engine.stub.block(TEAM, status)
    await event(engine, activities.teams_install(engine.stub.url))
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert team.roster_state is RosterState.FAILED and str(status) in team.inactive_reason
    assert reads(engine) == [status]
