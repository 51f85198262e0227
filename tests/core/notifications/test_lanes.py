"""Lanes: which lane each notification's Connector calls are asked for, and the tenant they count
in (read from what the limiter was asked; how lanes overtake is the limiter's, tests/core/delivery)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from proactive_bot.app import status_body
from proactive_bot.delivery.lanes import Lane
from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.lanes import class_of, lane_of
from tests import activities
from tests.support.lanes import Asked
from tests.support.teams import TEAM, event, installed

ONE = {"userId": "29:1u", "channelId": "msteams"}


@pytest.mark.parametrize(
    ("to", "priority", "lane"),
    [
        (ONE, None, Lane.URGENT),
        ({"conversationId": "a:1c", "channelId": "msteams"}, None, Lane.URGENT),
        ({"aadObjectId": "00000000-0000-0000-0000-000000000001"}, None, Lane.URGENT),
        ({"teamChannel": {"teamId": "19:t@thread.tacv2", "channelId": "19:c@thread.tacv2"}}, None, Lane.URGENT),
        ({"all": True}, None, Lane.BULK),
        ({"all": True}, "normal", Lane.BULK),
        ({"teamId": "19:t@thread.tacv2"}, None, Lane.BULK),
        ({"aadObjectIds": ["00000000-0000-0000-0000-000000000001"]}, None, Lane.BULK),
        ({"all": True}, "high", Lane.URGENT),
        ({"teamId": "19:t@thread.tacv2"}, "high", Lane.URGENT),
        (ONE, "high", Lane.URGENT),
    ],
)
def test_one_recipient_or_high_priority_is_urgent_a_walked_audience_bulk(to, priority, lane):
    document: dict[str, Any] = {"to": to, "text": "x"} | ({"priority": priority} if priority else {})

    notification = validate(document)

    assert lane_of(notification) is lane
    assert class_of(notification) == lane.name.lower()


async def test_a_one_to_one_notification_is_sent_urgent_in_its_tenant(engine_factory, monkeypatch):
    engine = await engine_factory()
    [user] = await engine.users(1)
    asked = Asked(engine.limiter, monkeypatch)
    to = {"conversationId": user["conversation"]["id"], "channelId": "msteams"}

    await engine.fanout.start(validate({"id": "alert", "to": to, "text": "disk full"}), "test")
    await engine.drain()

    assert asked.lanes() == Counter({(Lane.URGENT, activities.TENANT): 1})
    assert status_body(await engine.records.status("alert"))["class"] == "urgent"


@pytest.mark.parametrize(("priority", "lane"), [("normal", Lane.BULK), ("high", Lane.URGENT)])
async def test_a_broadcast_is_bulk_unless_it_asks_for_high_priority(engine_factory, monkeypatch, priority, lane):
    engine = await engine_factory()
    await engine.users(5)
    asked = Asked(engine.limiter, monkeypatch)

    notification = validate({"id": "all", "to": {"all": True}, "text": "hi", "priority": priority})
    await engine.fanout.start(notification, "test")
    await engine.drain()

    assert asked.lanes() == Counter({(lane, activities.TENANT): 5})
    status = status_body(await engine.records.status("all"))
    assert status["class"] == lane.name.lower() and status["counts"]["sent"] == 5


async def test_its_edit_and_recall_go_in_the_lane_of_its_sends(engine_factory, monkeypatch):
    engine = await engine_factory()
    await engine.users(3)
    await engine.fanout.start(validate({"id": "all", "to": {"all": True}, "text": "v1"}), "test")
    await engine.drain()
    asked = Asked(engine.limiter, monkeypatch)

    await engine.lifecycle.edit("all", "v2", None)
    await engine.drain()
    await engine.lifecycle.cancel("all")
    await engine.drain()

    assert asked.lanes() == Counter({(Lane.BULK, activities.TENANT): 6})  # 3 edits, 3 recalls


async def test_roster_reads_and_chat_creates_count_in_the_teams_tenant(engine_factory, monkeypatch):
    engine = await engine_factory()
    asked = Asked(engine.limiter, monkeypatch)
    await installed(engine, 3)  # one roster page read
    assert asked.lanes() == Counter({(Lane.BULK, activities.TENANT): 1})

    asked.calls.clear()
    high = {"id": "urgent-team", "to": {"teamId": TEAM}, "text": "evacuate", "priority": "high"}
    await engine.fanout.start(validate(high), "test")
    await engine.drain()

    # For each member a create and the send it precedes, both urgent, as the notification is.
    assert asked.lanes() == Counter({(Lane.URGENT, activities.TENANT): 6})


async def test_a_teams_channel_post_is_one_urgent_request_in_its_tenant(engine_factory, monkeypatch):
    engine = await engine_factory()
    engine.stub.teams.add_team(TEAM, 1)
    await event(engine, activities.teams_install(engine.stub.url))
    await engine.drain()
    asked = Asked(engine.limiter, monkeypatch)
    to = {"teamChannel": {"teamId": TEAM, "channelId": "19:general@thread.tacv2"}}

    await engine.fanout.start(validate({"id": "post", "to": to, "text": "launch today"}), "test")
    await engine.drain()

    assert asked.lanes() == Counter({(Lane.URGENT, activities.TENANT): 1})
