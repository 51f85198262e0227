"""The channel adapter: inbound auth failures are 401s, outbound sends carry a cached token."""

from __future__ import annotations

import json

import pytest

from devtools.connector_stub import ConnectorStub
from proactive_bot import app as app_module
from tests import activities
from tests.conftest import ACCESS_TOKEN


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
        stub.expect_bearer(ACCESS_TOKEN)
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


async def test_a_token_endpoint_that_never_answers_does_not_freeze_the_app(storage_connection, openid, serve_app, monkeypatch):
    from proactive_bot.channel import connector
    from proactive_bot.activities import message
    from proactive_bot.delivery import Outcome
    from tests.conftest import authenticated_settings
    from tests.net import run_while_counting_ticks, silent_server

    monkeypatch.setattr(connector, "TOKEN_TIMEOUT", connector.aiohttp.ClientTimeout(total=0.3))
    async with silent_server() as silent, ConnectorStub() as stub:
        app = await serve_app(authenticated_settings(storage_connection, silent.url + "/token", openid.metadata_url))
        reference = activities.reference(activities.teams_message("hi", stub.url))
        result, ticks = await run_while_counting_ticks(app.delivery.send(activities.stored(reference), [message("hi")]))

        assert stub.received == []  # nothing goes out without a token
    assert ticks >= 5  # the loop kept serving other work while the fetch waited
    assert result.outcome is Outcome.FAILED and "Timeout" in result.detail
    assert silent.connections == 1


async def test_updates_and_deletes_address_the_activity_and_carry_the_token(authenticated_app):
    async with ConnectorStub() as stub:
        stub.expect_bearer(ACCESS_TOKEN)
        message = activities.teams_message("hi", stub.url)
        reference = {
            "activityId": message["id"], "user": message["from"], "bot": message["recipient"],
            "conversation": message["conversation"], "channelId": "msteams", "serviceUrl": stub.url,
        }
        [sent] = await authenticated_app.adapter.send_proactive(reference, [{"type": "message", "text": "v0"}])

        await authenticated_app.adapter.update_activity(reference, sent, {"type": "message", "text": "v1"})
        [shown] = stub.shown(message["conversation"]["id"])
        await authenticated_app.adapter.delete_activity(reference, sent)

    update, delete = stub.received[1:]
    assert (update.method, update.activity_id, delete.method, delete.activity_id) == ("PUT", sent, "DELETE", sent)
    assert update.body["id"] == sent and update.body["text"] == "v1" and "replyToId" not in update.body
    assert update.body["from"]["id"] == message["recipient"]["id"]
    assert update.body["recipient"]["id"] == message["from"]["id"]
    assert update.body["conversation"]["id"] == message["conversation"]["id"]
    assert shown.activity["text"] == "v1" and stub.shown(message["conversation"]["id"]) == []
