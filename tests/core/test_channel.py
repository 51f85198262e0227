"""The channel adapter: inbound auth failures are 401s, outbound sends carry a cached token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from devtools.connector_stub import ConnectorStub
from proactive_bot import app as app_module
from proactive_bot import clients
from proactive_bot.settings import Settings
from tests import activities

APP_ID = "b0c6a3e2-1d53-4d8b-9d1e-5c8f7e9a0b11"


@pytest.fixture
async def token_server() -> AsyncIterator[tuple[str, list[dict]]]:
    """An OAuth token endpoint on loopback, standing in for login.microsoftonline.com."""
    requests: list[dict] = []

    async def issue(request: web.Request) -> web.Response:
        requests.append(dict(await request.post()))
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "access_token": "token-1"})

    application = web.Application()
    application.router.add_post("/token", issue)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp has no public accessor
    yield f"http://127.0.0.1:{port}/token", requests
    await runner.cleanup()


@pytest.fixture
async def authenticated_app(storage_connection, token_server, monkeypatch) -> AsyncIterator[clients.Clients]:
    settings = Settings(
        storage_connection=storage_connection,
        app_id=APP_ID,
        app_password="not-a-real-secret",
        token_endpoint=token_server[0],
    )
    built = await clients.build(settings)

    async def get() -> clients.Clients:
        return built

    monkeypatch.setattr(clients, "get", get)
    yield built
    await built.close()


@pytest.mark.parametrize("header", [None, "", "Bearer garbage", "Basic dXNlcjpwYXNz", "Bearer a.b.c"])
async def test_requests_without_a_valid_token_are_401(authenticated_app, header):
    async with ConnectorStub() as stub:
        body = json.dumps(activities.teams_message("hi", stub.url)).encode()
        result = await app_module.receive_activity(body, header)
        assert result.status == 401
        assert stub.received == []  # no turn ran


async def test_proactive_sends_fetch_one_token_and_reuse_it(authenticated_app, token_server):
    _, token_requests = token_server
    async with ConnectorStub() as stub:
        stub.expect_bearer("token-1")
        message = activities.teams_message("hi", stub.url)
        reference = {
            "user": message["from"], "bot": message["recipient"], "conversation": message["conversation"],
            "channelId": "msteams", "serviceUrl": stub.url,
        }

        for n in range(5):
            await authenticated_app.adapter.send_proactive(reference, [{"type": "message", "text": f"n{n}"}])

        assert stub.texts() == [f"n{n}" for n in range(5)]
    assert len(token_requests) == 1
    assert token_requests[0]["grant_type"] == "client_credentials"
    assert token_requests[0]["scope"] == "https://api.botframework.com/.default"
