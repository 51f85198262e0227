"""Teams reach through the functions: an install turn on messages/, the roster read by deliver_batch,
and the Teams audiences on notifications_api/."""

from __future__ import annotations

import json
import uuid
from typing import Any

from devtools.connector_stub import CREATE, PAGED_MEMBERS
from tests import activities
from tests.functions import invoke


def a_team() -> dict:
    return {**activities.TEAM, "id": f"19:{uuid.uuid4().hex}@thread.tacv2"}


async def test_an_install_turn_answers_at_once_and_the_roster_is_read_in_the_background(app, channel, work):
    team = a_team()
    roster = channel.teams.add_team(team["id"], 600)

    response = await invoke.http("messages", activities.teams_install(channel.url, team=team))

    assert response.status_code == 200
    assert [r for r in channel.received if r.route == PAGED_MEMBERS] == []  # not inside the turn
    await work.drain()
    assert [r.route for r in channel.received].count(PAGED_MEMBERS) == 2
    stored = await app.teams.store.team(team["id"])
    assert stored.active and stored.roster_members == 600 and stored.service_url == channel.url
    assert (await app.teams.store.reachable_user(roster[599]["id"])).aad_object_id == roster[599]["aadObjectId"]

    newcomer = activities.teams_user()
    joined = activities.teams_team_update(channel.url, "teamMemberAdded", team=team, members_added=[newcomer])
    assert (await invoke.http("messages", joined)).status_code == 200
    assert channel.activities(team["id"]) == []  # no welcome flooding the channel
    assert (await app.teams.store.reachable_user(newcomer["id"])) is not None

    removed = activities.teams_team_update(
        channel.url, "teamMemberRemoved", team=team, members_removed=[{"id": activities.BOT["id"]}]
    )
    assert (await invoke.http("messages", removed)).status_code == 200
    assert not (await app.teams.store.team(team["id"])).active


async def test_ten_thousand_aad_object_ids_over_http(app, channel, work):
    team = a_team()
    roster = channel.teams.add_team(team["id"], 50)
    await invoke.http("messages", activities.teams_install(channel.url, team=team))
    await work.drain()
    channel.clear()
    ids = [m["aadObjectId"] for m in roster] + [str(uuid.uuid4()) for _ in range(9950)]
    document = {"to": {"aadObjectIds": ids}, "text": "Open enrollment starts today"}

    accepted = await invoke.http("notifications_api", document)

    assert accepted.status_code == 202
    notification_id = json.loads(accepted.get_body())["id"]
    await work.drain()
    status = json.loads(
        (
            await invoke.http("notifications_api", method="GET", route_params={"id": notification_id}, params={})
        ).get_body()
    )
    assert status["state"] == "done"
    assert status["counts"]["recipients"] == 10_000
    assert status["counts"]["sent"] == 50 and status["counts"]["failed"] == 9950
    assert len([r for r in channel.received if r.route == CREATE]) == 50
    assert len(channel.delivered()) == 50


async def test_a_teams_event_whose_team_id_is_not_a_string_names_no_team(app, channel, work):
    # channelData is kept as sent; str() once made these a team "123" and walked its roster.
    for team_id in (123, {"id": "19:x@thread.tacv2"}, ["19:x@thread.tacv2"], None):
        install = activities.teams_install(channel.url, team={"id": team_id, "name": "Contoso Sales"})
        install["conversation"]["id"] = a_team()["id"]
        no_team = activities.teams_install(channel.url, team=a_team())
        del no_team["channelData"]["team"]
        joined = activities.teams_team_update(
            channel.url, "teamMemberAdded", team={"id": team_id}, members_added=[activities.teams_user()]
        )
        joined["conversation"]["id"] = install["conversation"]["id"]

        for event in (install, no_team, joined):
            assert (await invoke.http("messages", event)).status_code == 200
        await work.drain()

        assert await app.teams.store.team(str(team_id)) is None
    assert [r for r in channel.received if r.route == PAGED_MEMBERS] == []


async def test_null_members_in_a_team_event_are_ignored_and_a_member_without_a_string_id_is_400(app, channel, work):
    team = a_team()
    channel.teams.add_team(team["id"], 2)
    await invoke.http("messages", activities.teams_install(channel.url, team=team))
    await work.drain()
    newcomer = activities.teams_user()

    nulls = activities.teams_team_update(channel.url, "teamMemberAdded", team=team, members_added=[None, newcomer])
    no_list = {**activities.teams_team_update(channel.url, "teamMemberRemoved", team=team), "membersRemoved": None}
    assert (await invoke.http("messages", nulls)).status_code == 200
    assert (await invoke.http("messages", no_list)).status_code == 200
    assert await app.teams.store.reachable_user(newcomer["id"]) is not None

    for member in ({"id": 7}, {"id": {"id": newcomer["id"]}}, {"name": "Nobody"}, {"id": ""}):
        for field in ("members_added", "members_removed"):
            members: dict[str, Any] = {field: [member]}
            event = activities.teams_team_update(channel.url, "teamMemberAdded", team=team, **members)
            response = await invoke.http("messages", event)
            assert response.status_code == 400, (field, member)
            assert "needs an id" in json.loads(response.get_body())["error"]["message"]
    members, _ = await app.teams.store.roster_page(team["id"], None, 500)
    assert len(members) == 3
