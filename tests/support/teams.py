"""Teams scenarios on the engine (tests/core/conftest.py): installs, events, chat creates."""

from __future__ import annotations

from collections import Counter

from devtools.connector_stub import CREATE
from proactive_bot.channel import activity as channel_module
from tests import activities

TEAM = activities.TEAM["id"]


async def event(engine, body: dict) -> None:
    """Run the bot's handling of a Teams event as a turn would (the stored reference, then the event)."""
    parsed = channel_module.parse_activity(body)
    await engine.references.save(channel_module.conversation_reference(parsed))
    found = channel_module.teams_event_of(parsed)
    assert found is not None
    await engine.installs.handle(found)


async def installed(engine, members: int) -> list[dict]:
    roster = engine.stub.teams.add_team(TEAM, members)
    await event(engine, activities.teams_install(engine.stub.url))
    await engine.drain()
    return roster


def creates(engine) -> Counter:
    """1:1 chat creates the stub was asked for, per user (answered or refused)."""
    return Counter(
        r.body["members"][0]["id"] for r in engine.stub.received if r.route == CREATE and not r.body.get("isGroup")
    )
