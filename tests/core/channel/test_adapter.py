"""The channel adapter: inbound auth failures are 401s, outbound sends carry a cached token."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
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
            "user": message["from"],
            "bot": message["recipient"],
            "conversation": message["conversation"],
            "channelId": "msteams",
            "serviceUrl": stub.url,
        }

        for n in range(5):
            await authenticated_app.adapter.send_proactive(reference, [{"type": "message", "text": f"n{n}"}])

        assert stub.texts() == [f"n{n}" for n in range(5)]
    assert len(token_requests) == 1
    assert token_requests[0]["grant_type"] == "client_credentials"
    assert token_requests[0]["scope"] == "https://api.botframework.com/.default"


async def test_a_token_endpoint_that_never_answers_does_not_freeze_the_app(
    storage_connection, openid, serve_app, monkeypatch
):
    from proactive_bot.activities import message
    from proactive_bot.channel import connector
    from proactive_bot.delivery import Outcome
    from tests.conftest import authenticated_settings
    from tests.net import run_while_counting_ticks, silent_server

    monkeypatch.setattr(connector, "TOKEN_TIMEOUT", aiohttp.ClientTimeout(total=0.3))
    async with silent_server() as silent, ConnectorStub() as stub:
        app = await serve_app(authenticated_settings(storage_connection, silent.url + "/token", openid.metadata_url))
        reference = activities.reference(activities.teams_message("hi", stub.url))
        result, ticks = await run_while_counting_ticks(app.delivery.send(activities.stored(reference), [message("hi")]))

        assert stub.received == []  # nothing goes out without a token
    assert ticks >= 5  # the loop kept serving other work while the fetch waited
    assert not isinstance(result, BaseException)
    assert result.outcome is Outcome.FAILED and "Timeout" in result.detail
    assert silent.connections == 1


# --- UserAssignedMSI: the bot's token from the managed identity, no password anywhere ---


async def test_with_a_managed_identity_sends_carry_its_token_fetched_once(
    storage_connection, openid, identity_endpoint, serve_app
):
    from tests.conftest import APP_ID, managed_identity_settings

    app = await serve_app(managed_identity_settings(storage_connection, identity_endpoint, openid.metadata_url))
    async with ConnectorStub() as stub:
        reference = activities.reference(activities.teams_message("hi", stub.url))
        for n in range(5):
            await app.adapter.send_proactive(reference, [{"type": "message", "text": f"n{n}"}])

        assert stub.texts() == [f"n{n}" for n in range(5)]
        authorizations = {r.authorization for r in stub.received}
    [asked] = identity_endpoint.requests  # one fetch, cached for the other four
    assert (asked.resource, asked.client_id, asked.api_version) == (
        "https://api.botframework.com",
        APP_ID,
        "2019-08-01",
    )
    assert asked.header == identity_endpoint.header
    assert authorizations == {"Bearer " + identity_endpoint.issued[0]}


async def test_with_a_managed_identity_concurrent_senders_share_one_fetch(
    storage_connection, openid, identity_endpoint, serve_app
):
    import asyncio

    from tests.conftest import managed_identity_settings

    app = await serve_app(managed_identity_settings(storage_connection, identity_endpoint, openid.metadata_url))
    async with ConnectorStub() as stub:
        reference = activities.reference(activities.teams_message("hi", stub.url))
        await asyncio.gather(
            *(app.adapter.send_proactive(reference, [{"type": "message", "text": f"n{n}"}]) for n in range(20))
        )

        assert len(stub.delivered()) == 20
    assert len(identity_endpoint.requests) == 1


async def test_with_a_managed_identity_inbound_checks_are_unchanged(
    storage_connection, openid, identity_endpoint, serve_app
):
    from tests.conftest import APP_ID, managed_identity_settings

    await serve_app(managed_identity_settings(storage_connection, identity_endpoint, openid.metadata_url))
    async with ConnectorStub() as stub:
        message = activities.teams_message("help", stub.url)
        body = json.dumps(message).encode()
        unsigned = await app_module.receive_activity(body, None)
        forged = await app_module.receive_activity(body, "Bearer " + openid.channel_token("another-bot", stub.url))
        accepted = await app_module.receive_activity(body, "Bearer " + openid.channel_token(APP_ID, stub.url))

        replies = stub.activities(message["conversation"]["id"])
        authorizations = {r.authorization for r in stub.delivered()}
    assert (unsigned.status, forged.status, accepted.status) == (401, 401, 200)
    assert len(replies) == 1 and authorizations == {"Bearer " + identity_endpoint.issued[0]}


async def test_with_a_managed_identity_a_refused_token_request_fails_the_send_not_the_app(
    storage_connection, openid, identity_endpoint, serve_app
):
    from proactive_bot.activities import message
    from proactive_bot.delivery import Outcome
    from tests.conftest import managed_identity_settings

    # A stale header (Azure rotates it): the endpoint answers 401; nothing goes out without a token.
    app = await serve_app(
        managed_identity_settings(storage_connection, identity_endpoint, openid.metadata_url, identity_header="stale")
    )
    async with ConnectorStub() as stub:
        reference = activities.reference(activities.teams_message("hi", stub.url))
        result = await app.delivery.send(activities.stored(reference), [message("hi")])

        assert stub.received == []
    assert result.outcome is Outcome.FAILED and "TokenRequestFailed" in result.detail
    assert identity_endpoint.issued == []


async def test_with_a_managed_identity_an_endpoint_that_never_answers_does_not_freeze_the_app(
    storage_connection, openid, serve_app, monkeypatch
):
    from devtools.identity_stub import IdentityStub
    from proactive_bot.activities import message
    from proactive_bot.channel import connector
    from proactive_bot.delivery import Outcome
    from tests.conftest import managed_identity_settings
    from tests.net import run_while_counting_ticks, silent_server

    monkeypatch.setattr(connector, "TOKEN_TIMEOUT", aiohttp.ClientTimeout(total=0.3))
    async with silent_server() as silent, ConnectorStub() as stub:
        identity = IdentityStub(client_ids=[])
        identity.endpoint = silent.url + "/msi/token"
        app = await serve_app(managed_identity_settings(storage_connection, identity, openid.metadata_url))
        reference = activities.reference(activities.teams_message("hi", stub.url))
        result, ticks = await run_while_counting_ticks(app.delivery.send(activities.stored(reference), [message("hi")]))

        assert stub.received == []
    assert ticks >= 5  # the loop kept serving other work while the fetch waited
    assert not isinstance(result, BaseException)
    assert result.outcome is Outcome.FAILED and "Timeout" in result.detail


async def test_updates_and_deletes_address_the_activity_and_carry_the_token(authenticated_app):
    async with ConnectorStub() as stub:
        stub.expect_bearer(ACCESS_TOKEN)
        message = activities.teams_message("hi", stub.url)
        reference = {
            "activityId": message["id"],
            "user": message["from"],
            "bot": message["recipient"],
            "conversation": message["conversation"],
            "channelId": "msteams",
            "serviceUrl": stub.url,
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


# --- A token endpoint that refuses: the channel never answered, so nobody is "gone" ---


@contextlib.asynccontextmanager
async def token_endpoint_answering(status: int) -> AsyncIterator[tuple[str, list[int]]]:
    """An OAuth token endpoint on loopback that answers every request with `status` and an
    AAD-shaped error body."""
    from aiohttp import web

    answered: list[int] = []

    async def refuse(request: web.Request) -> web.Response:
        answered.append(status)
        return web.json_response({"error": "server_error", "error_description": "AADSTS50000: refused"}, status=status)

    application = web.Application()
    application.router.add_post("/token", refuse)
    runner = web.AppRunner(application)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/token", answered
    finally:
        await runner.cleanup()


async def send_and_look_again(app, stub: ConnectorStub):
    """Store a Teams user, send to them once, and read their stored row back."""
    from proactive_bot.activities import message

    reference = activities.reference(activities.teams_message("hi", stub.url))
    await app.references.save(reference)
    recipient = await app.references.get("msteams", reference["conversation"]["id"])
    result = await app.delivery.send(recipient, [message("hi")])
    return result, await app.references.get("msteams", reference["conversation"]["id"])


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_a_token_endpoint_refusing_fails_the_send_and_marks_nobody_gone(
    storage_connection, openid, serve_app, status
):
    """A 403 or 404 from the token endpoint (a wrong TokenEndpoint, a disabled app) is not the
    channel saying the user is gone: read so, every recipient of a broadcast would be marked
    inactive. It is a configuration problem: not retried, and the address stays active."""
    from proactive_bot.delivery import Outcome
    from tests.conftest import authenticated_settings

    async with token_endpoint_answering(status) as (endpoint, answered), ConnectorStub() as stub:
        app = await serve_app(authenticated_settings(storage_connection, endpoint, openid.metadata_url))
        result, after = await send_and_look_again(app, stub)

        assert stub.received == []  # nothing goes out without a token
    assert answered == [status]
    assert result.outcome is Outcome.FAILED and "TokenRequestFailed" in result.detail
    assert not result.retryable
    assert after.active


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_token_endpoint_failing_for_a_while_is_retried_and_not_cached(
    storage_connection, openid, serve_app, status, monkeypatch
):
    """5xx (or 429) from the token endpoint: the send is worth another try, not the recipient's
    failure (`channel_down`), and the next one after TOKEN_RETRY asks for a token again rather
    than reusing the failure."""
    from proactive_bot.channel import connector
    from proactive_bot.delivery import Outcome
    from tests.conftest import authenticated_settings

    monkeypatch.setattr(connector, "TOKEN_RETRY", 0.0)

    async with token_endpoint_answering(status) as (endpoint, answered), ConnectorStub() as stub:
        app = await serve_app(authenticated_settings(storage_connection, endpoint, openid.metadata_url))
        first, after = await send_and_look_again(app, stub)
        second, _ = await send_and_look_again(app, stub)

        assert stub.received == []
    assert answered == [status, status]
    assert first.outcome is second.outcome is Outcome.FAILED
    assert first.retryable and first.channel_down and "TokenRequestFailed" in first.detail
    assert after.active


async def test_senders_meeting_a_failed_token_fetch_do_not_each_fetch_again(storage_connection, openid, serve_app):
    """For TOKEN_RETRY after a failed fetch, every send fails at once with the same answer: a
    broadcast's senders do not queue up one token request each behind the lock."""
    from tests.conftest import authenticated_settings

    async with token_endpoint_answering(503) as (endpoint, answered), ConnectorStub() as stub:
        app = await serve_app(authenticated_settings(storage_connection, endpoint, openid.metadata_url))
        results = [(await send_and_look_again(app, stub))[0] for _ in range(3)]

    assert answered == [503]
    assert all(r.retryable and r.channel_down for r in results)


async def test_with_a_managed_identity_an_unknown_identity_fails_the_send_and_marks_nobody_gone(
    storage_connection, openid, identity_endpoint, serve_app
):
    """The identity endpoint's 400 for a client id the app has no identity of (MicrosoftAppId
    names another identity): not retried, nobody marked gone."""
    from proactive_bot.delivery import Outcome
    from tests.conftest import managed_identity_settings

    app = await serve_app(
        managed_identity_settings(
            storage_connection, identity_endpoint, openid.metadata_url, app_id="00000000-0000-4000-8000-000000000bad"
        )
    )
    async with ConnectorStub() as stub:
        result, after = await send_and_look_again(app, stub)

        assert stub.received == []
    assert [r.client_id for r in identity_endpoint.requests] == ["00000000-0000-4000-8000-000000000bad"]
    assert identity_endpoint.issued == []
    assert result.outcome is Outcome.FAILED and "TokenRequestFailed" in result.detail
    assert not result.retryable
    assert after.active
