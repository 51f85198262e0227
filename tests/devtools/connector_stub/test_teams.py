"""The stub's Teams routes: paged team rosters and creating 1:1 chats and channel threads."""

from __future__ import annotations

from urllib.parse import quote

from devtools.connector_stub import ConnectorStub
from devtools.connector_stub.teams import TENANT

TEAM = "19:team-a@thread.tacv2"


def paged(stub: ConnectorStub, team: str) -> str:
    return stub.url + f"v3/conversations/{quote(team, safe='')}/pagedmembers"


async def test_paged_members_walks_a_roster_in_pages_of_at_most_500(stub, http) -> None:
    stub.teams.add_team(TEAM, 1200)
    seen, token, pages = [], None, 0
    while True:
        params = {"pageSize": "1000"} | ({"continuationToken": token} if token else {})
        async with http.get(paged(stub, TEAM), params=params) as response:
            assert response.status == 200
            body = await response.json()
        pages += 1
        assert len(body["members"]) <= 500
        seen += body["members"]
        token = body.get("continuationToken")
        if not token:
            break
    assert pages == 3 and len({m["id"] for m in seen}) == 1200
    member = seen[0]
    assert member["id"].startswith("29:") and member["tenantId"] == TENANT and member["userRole"] == "user"
    assert {"aadObjectId", "name", "userPrincipalName"} <= set(member)


async def test_paged_members_refuses_a_foreign_token_and_an_unknown_team(stub, http) -> None:
    stub.teams.add_team(TEAM, 10)
    async with http.get(paged(stub, TEAM), params={"continuationToken": "bm9wZXwx"}) as response:
        assert response.status == 400
    async with http.get(paged(stub, "19:nope@thread.tacv2")) as response:
        assert response.status == 404


async def test_paged_members_are_limited_per_team_like_teams(stub, http) -> None:
    stub.teams.add_team(TEAM, 10)
    stub.limits()
    statuses = []
    for _ in range(15):
        async with http.get(paged(stub, TEAM), params={"pageSize": "50"}) as response:
            statuses.append(response.status)
    assert statuses.count(200) == 14 and statuses[-1] == 429


async def test_create_one_to_one_gives_the_same_chat_and_403_where_not_installed(stub, http) -> None:
    first, second = stub.teams.add_team(TEAM, 2)
    stub.teams.not_installed_for(second["id"])

    async def create(member_id: str) -> tuple[int, dict]:
        body = {
            "bot": {"id": "28:bot"},
            "isGroup": False,
            "members": [{"id": member_id}],
            "tenantId": TENANT,
            "channelData": {"tenant": {"id": TENANT}},
        }
        async with http.post(stub.url + "v3/conversations", json=body) as response:
            return response.status, await response.json()

    status, body = await create(first["id"])
    assert status == 201 and body["id"].startswith("a:")  # Created, as Teams answers
    assert await create(first["id"]) == (201, body)
    assert await create("8:orgid:" + first["aadObjectId"]) == (201, body)
    status, body = await create(second["id"])
    assert status == 403 and body["error"]["code"] == "BotNotInConversationRoster"
    status, body = await create("8:orgid:00000000-0000-0000-0000-0000000000ff")  # nobody Teams knows
    assert status == 404 and body["error"]["code"] == "NotFound"
    assert stub.teams.creates_by_user == {first["id"]: 3}


async def test_channel_post_starts_a_thread(stub, http) -> None:
    body = {
        "isGroup": True,
        "channelData": {"channel": {"id": TEAM}, "tenant": {"id": TENANT}},
        "activity": {"type": "message", "text": "hello channel"},
    }
    async with http.post(stub.url + "v3/conversations", json=body) as response:
        assert response.status == 201
        answer = await response.json()
    assert answer["id"] == f"{TEAM};messageid={answer['activityId']}"
    assert stub.texts(answer["id"]) == ["hello channel"]


async def test_a_garbled_page_is_answered_once_as_it_is(stub, http) -> None:
    stub.teams.add_team(TEAM, 3)
    stub.teams.garble_next_page(TEAM, b"<html>Bad gateway")
    stub.teams.garble_next_page(TEAM, None)

    async with http.get(paged(stub, TEAM)) as response:
        assert (response.status, await response.read()) == (200, b"<html>Bad gateway")
    async with http.get(paged(stub, TEAM)) as response:
        assert (response.status, await response.read()) == (200, b"")
    async with http.get(paged(stub, TEAM)) as response:
        assert len((await response.json())["members"]) == 3
