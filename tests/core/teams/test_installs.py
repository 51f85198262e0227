"""Install events when storage fails half-way: what was recorded is finished by the next event.

Real Azurite and the Connector stub; the storage that fails is a queue endpoint nobody listens on.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import aiohttp
import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.queue.aio import QueueClient

from devtools.connector_stub import PAGED_MEMBERS
from proactive_bot import clock
from proactive_bot.channel import ChannelAdapter
from proactive_bot.channel import activity as channel_module
from proactive_bot.delivery.limits import LimitsConfig
from proactive_bot.delivery.rate_limits import RateLimiter
from proactive_bot.settings import Settings
from proactive_bot.teams.installs import TeamsInstalls
from proactive_bot.teams.roster import RosterWalk
from proactive_bot.teams.rows import RosterState
from proactive_bot.work import WorkQueue
from tests import activities
from tests.conftest import unreachable_connection
from tests.support.present import present
from tests.support.teams import TEAM, event


@pytest.fixture
async def unreachable_queue():
    async with QueueClient.from_connection_string(unreachable_connection(), "work", retry_total=0) as queue:
        yield queue


async def test_an_install_whose_roster_walk_could_not_be_queued_is_walked_when_teams_sends_it_again(
    engine_factory, unreachable_queue
) -> None:
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 3)
    install = activities.teams_install(engine.stub.url)
    async with aiohttp.ClientSession() as http:
        adapter = ChannelAdapter(Settings(storage_connection=""), http)
        cut_off = RosterWalk(
            engine.teams.store, adapter, RateLimiter(LimitsConfig(enabled=False)), WorkQueue(unreachable_queue)
        )
        with pytest.raises(ServiceRequestError):  # the turn fails loudly: the channel may resend it
            await TeamsInstalls(engine.teams.store, cut_off, engine.references).handle(
                present(channel_module.teams_event_of(channel_module.parse_activity(install)))
            )

    team = await engine.teams.store.team(TEAM)
    assert team.active and team.roster_state is RosterState.WALKING  # recorded; no walk queued
    assert await engine.drain() == 0

    await event(engine, install)  # the channel resends it (or sends its conversationUpdate twin)
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert (team.roster_state, team.roster_members) == (RosterState.DONE, 3)
    assert [r.route for r in engine.stub.received].count(PAGED_MEMBERS) == 1


async def test_a_repeated_install_of_a_read_roster_reads_nothing_again(engine_factory) -> None:
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 3)
    for _ in range(2):
        await event(engine, activities.teams_install(engine.stub.url))
        await engine.drain()

    assert [r.route for r in engine.stub.received].count(PAGED_MEMBERS) == 1
    assert (await engine.teams.store.team(TEAM)).roster_pages == 1


async def test_a_user_is_welcomed_once_a_day_in_a_conversation_however_often_teams_installs(engine_factory) -> None:
    engine = await engine_factory()
    welcomed = functools.partial(engine.installs.first_welcome, "msteams", "a:1chat")
    day = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    with patch.object(clock, "now", lambda: day):
        # installationUpdate and conversationUpdate for one install, then a page reload's pair.
        assert await asyncio.gather(welcomed("29:alex"), welcomed("29:alex")) in ([True, False], [False, True])
        assert not await welcomed("29:alex")
        assert await welcomed("29:megan")  # someone else, in the same conversation
    with patch.object(clock, "now", lambda: day + timedelta(hours=25)):
        assert await welcomed("29:alex")  # a reinstall a day later is welcomed again
