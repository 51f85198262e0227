"""Teams' global limit is per app per tenant: each tenant has its own window, every request counts
in its tenant's (sends, creates, roster reads, edits, deletions), and a request's tenant is the one
it names or, failing that, the one its conversation is known by."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest

from devtools.connector_stub import ConnectorStub
from devtools.connector_stub.teams_limits import RateLimits

from .client import conversation_url, message, post
from .test_teams_limits import FakeClock

pytestmark = pytest.mark.timeout(60)


def in_tenant(tenant: str, conversation_id: str, text: str = "x") -> dict:
    """A message as botbuilder sends one proactively: the stored conversation, tenant and all."""
    return message(text, conversation={"id": conversation_id, "tenantID": tenant})


async def frozen_stub(*, per_tenant: bool = True) -> ConnectorStub:
    stub = ConnectorStub(clock=FakeClock())  # frozen: every request lands in the same instant
    await stub.start()
    stub.limits(None, global_=[(3, 1.0)], per_tenant=per_tenant)
    return stub


async def send(http: aiohttp.ClientSession, stub: ConnectorStub, tenant: str, conversation_id: str) -> int:
    url = conversation_url(stub, conversation_id, "activities")
    return (await post(http, url, in_tenant(tenant, conversation_id)))[0]


async def test_each_tenant_gets_its_own_window(http: aiohttp.ClientSession) -> None:
    stub = await frozen_stub()
    try:
        contoso = [await send(http, stub, "contoso", f"a:c{n}") for n in range(4)]
        fabrikam = [await send(http, stub, "fabrikam", f"a:f{n}") for n in range(4)]
    finally:
        await stub.stop()

    assert contoso == [200, 200, 200, 429]
    assert fabrikam == [200, 200, 200, 429]  # contoso's full window does not slow fabrikam
    assert stub.tenant_stats() == {
        "contoso": {"received": 4, "throttled": 1, "delivered": 3},
        "fabrikam": {"received": 4, "throttled": 1, "delivered": 3},
    }
    assert [r.tenant_id for r in stub.received[:2]] == ["contoso", "contoso"]


async def test_per_tenant_false_is_one_window_for_the_whole_app(http: aiohttp.ClientSession) -> None:
    stub = await frozen_stub(per_tenant=False)
    try:
        statuses = [await send(http, stub, tenant, f"a:{tenant}{n}") for tenant in ("c", "f") for n in range(2)]
    finally:
        await stub.stop()

    assert statuses == [200, 200, 200, 429]


async def test_a_delete_counts_in_the_tenant_its_conversation_was_sent_in(http: aiohttp.ClientSession) -> None:
    stub = await frozen_stub()
    try:
        sent = (await post(http, conversation_url(stub, "a:1", "activities"), in_tenant("contoso", "a:1")))[1]
        await send(http, stub, "contoso", "a:2")
        async with http.delete(conversation_url(stub, "a:1", "activities", sent["id"])) as response:
            third = response.status  # no body: the tenant is the one a:1 was sent in
        fourth = await send(http, stub, "contoso", "a:3")
        other = await send(http, stub, "fabrikam", "a:4")
    finally:
        await stub.stop()

    assert (third, fourth, other) == (200, 429, 200)
    assert stub.tenant_of("a:1") == "contoso" and stub.received[2].tenant_id == "contoso"


async def test_creates_and_roster_reads_count_in_their_tenant(http: aiohttp.ClientSession) -> None:
    stub = await frozen_stub()
    team = "19:team@thread.tacv2"
    try:
        roster = stub.teams.add_team(team, 2, tenant_id="contoso")
        pages = stub.url + f"v3/conversations/{quote(team, safe='')}/pagedmembers"
        async with http.get(pages) as response:
            read = response.status
        create = {
            "bot": {"id": "28:bot"},
            "members": [{"id": roster[0]["id"]}],
            "tenantId": "contoso",
            "channelData": {"tenant": {"id": "contoso"}},
        }
        created_status, created, _ = await post(http, stub.url + "v3/conversations", create)
        chat = created["id"]
        in_chat = await send(http, stub, "", chat)  # names no tenant: the chat's is contoso
        past_ceiling = await send(http, stub, "contoso", "a:other")
    finally:
        await stub.stop()

    assert (read, created_status, in_chat, past_ceiling) == (200, 201, 200, 429)
    assert stub.tenant_of(chat) == "contoso" and stub.tenant_of(team) == "contoso"
    assert [r.tenant_id for r in stub.received] == ["contoso"] * 4


async def test_a_blocked_conversation_still_counts(http: aiohttp.ClientSession) -> None:
    stub = await frozen_stub()
    stub.block("a:gone")
    try:
        statuses = [await send(http, stub, "contoso", conversation) for conversation in ("a:gone", "a:1", "a:2", "a:3")]
    finally:
        await stub.stop()

    assert statuses == [403, 200, 200, 429]  # Teams counts every request, whatever it answers


async def test_requests_naming_no_tenant_share_one_window(http: aiohttp.ClientSession) -> None:
    stub = await frozen_stub()
    try:
        statuses = [
            (await post(http, conversation_url(stub, f"a:{n}", "activities"), message("x")))[0] for n in range(4)
        ]
    finally:
        await stub.stop()

    assert statuses == [200, 200, 200, 429]
    assert set(stub.tenant_stats()) == {""}


async def test_another_process_blocks_fails_and_limits_through_control_routes(
    stub: ConnectorStub, http: aiohttp.ClientSession
) -> None:
    async with http.post(stub.url + "_stub/block", json={"conversation_ids": ["a:gone"]}) as response:
        assert response.status == 200
    async with http.post(stub.url + "_stub/fail", json={"conversation_id": "a:flaky", "statuses": [500, 500]}) as r:
        assert r.status == 200
    async with http.post(stub.url + "_stub/limits", json={"global_": [[1, 60]]}) as r:
        assert r.status == 200
    async with http.post(stub.url + "_stub/limits", json={"nonsense": 1}) as r:
        assert r.status == 400

    flaky = [await send(http, stub, "t", "a:flaky") for _ in range(2)]
    gone = await send(http, stub, "u", "a:gone")
    async with http.get(stub.url + "_stub/tenants") as response:
        per_tenant = await response.json()

    assert flaky == [500, 429]  # the window of one a minute took the first; the second is throttled
    assert gone == 403
    assert per_tenant["t"] == {"received": 2, "throttled": 1, "delivered": 0}


def test_retry_after_counts_nothing_and_admit_counts_regardless() -> None:
    limits = RateLimits(per_conversation=[(1, 10.0)], global_=[(2, 10.0)])

    assert limits.retry_after("a:1", 0.0, "t") is None
    assert limits.retry_after("a:1", 0.0, "t") is None  # asking twice takes no slot
    limits.admit("a:1", 0.0, "t")
    assert limits.retry_after("a:1", 0.0, "t") == 10
    assert limits.try_admit("a:2", 0.0, "t") is None
    assert limits.try_admit("a:3", 0.0, "t") == 10  # t's two are taken
    assert limits.try_admit("a:3", 0.0, "u") is None  # u's are not
