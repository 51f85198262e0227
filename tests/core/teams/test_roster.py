"""The roster walk when the channel does not serve a page: 429, 403/404, a malformed page.

Real Azurite and the Connector stub (its Teams directory: devtools/connector_stub/teams.py).
"""

from __future__ import annotations

import json

import pytest

from devtools.connector_stub import PAGED_MEMBERS
from proactive_bot import clock
from proactive_bot.delivery.retries import RetryPolicy
from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.records import RecipientState
from proactive_bot.teams import roster as roster_module
from proactive_bot.teams.rows import RosterState
from tests import activities
from tests.support.teams import TEAM, event


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


@pytest.mark.parametrize(
    "body",
    [{"members": "x"}, [], None, b"<html>Bad gateway", {"members": [], "continuationToken": 5}],
    ids=["members-not-a-list", "a-list", "empty", "not-json", "token-not-a-string"],
)
async def test_a_malformed_roster_page_fails_the_roster_instead_of_ending_it_as_complete(engine_factory, body) -> None:
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 3)
    engine.stub.teams.garble_next_page(TEAM, body)
    await event(engine, activities.teams_install(engine.stub.url))
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert team.roster_state is RosterState.FAILED and "malformed page" in team.inactive_reason
    assert reads(engine) == [200]  # not read again and again


async def test_after_a_malformed_page_the_members_already_read_are_reached(engine_factory, monkeypatch) -> None:
    monkeypatch.setattr(roster_module, "WALK_BUDGET", 0.0)  # one page per work message
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 600)
    await event(engine, activities.teams_install(engine.stub.url))
    [first] = [m async for m in engine.work_queue.receive_messages(max_messages=32)]
    await engine.handle(json.loads(first.content))  # page 1: 500 members
    await engine.work_queue.delete_message(first)
    engine.stub.teams.garble_next_page(TEAM, {"value": []})
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert (team.roster_state, team.roster_members) == (RosterState.FAILED, 500)
    await engine.fanout.start(validate({"id": "part", "to": {"teamId": TEAM}, "text": "x"}), "test")
    await engine.drain()
    status = await engine.records.status("part")
    assert status.state.value == "done" and "only part of the roster" in status.header.note
    assert status.counts[RecipientState.SENT] == 500


async def test_a_roster_whose_service_url_is_no_longer_allowed_fails_instead_of_waiting_forever(engine_factory) -> None:
    engine = await engine_factory()
    # Stored by an install when the setting allowed it; AllowedServiceUrlHosts has changed since.
    await engine.teams.store.install_team(
        TEAM, "Contoso Sales", activities.TENANT, "https://smba.example.org/", "", clock.now()
    )
    await engine.teams.roster.start(TEAM)
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert team.roster_state is RosterState.FAILED and "serviceUrl not allowed" in team.inactive_reason
    assert reads(engine) == []


async def test_a_roster_page_the_channel_keeps_failing_is_given_up_after_the_policys_attempts(engine_factory) -> None:
    engine = await engine_factory()
    engine.teams.roster._retries = RetryPolicy(max_attempts=3, first_delay=0.0, max_delay=0.0)
    engine.stub.teams.add_team(TEAM, 3)
    engine.stub.fail(TEAM, statuses=[500] * 10)
    await event(engine, activities.teams_install(engine.stub.url))
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert team.roster_state is RosterState.FAILED and "3 failed reads" in team.inactive_reason
    assert reads(engine) == [500] * 3


async def test_failed_reads_are_counted_in_a_row_a_page_served_between_them_resets_the_count(
    engine_factory, monkeypatch
) -> None:
    monkeypatch.setattr(roster_module, "WALK_BUDGET", 0.0)  # one page per work message
    engine = await engine_factory()
    engine.teams.roster._retries = RetryPolicy(max_attempts=3, first_delay=0.0, max_delay=0.0)
    engine.stub.teams.add_team(TEAM, 600)  # two pages
    engine.stub.fail(TEAM, statuses=[503, 502])
    await event(engine, activities.teams_install(engine.stub.url))
    while (await engine.teams.store.team(TEAM)).roster_pages == 0:
        [walk] = [m async for m in engine.work_queue.receive_messages(max_messages=1)]
        await engine.handle(json.loads(walk.content))
        await engine.work_queue.delete_message(walk)
    engine.stub.fail(TEAM, statuses=[503, 502])  # two more: four in all, but never three in a row
    await engine.drain()

    team = await engine.teams.store.team(TEAM)
    assert (team.roster_state, team.roster_members) == (RosterState.DONE, 600)
    assert reads(engine) == [503, 502, 200, 503, 502, 200]
