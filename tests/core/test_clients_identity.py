"""Keyless storage: the app's clients with Entra tokens from the managed identity, against real
storage (Azurite over https with `--oauth basic`), no account key anywhere."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.data.tables.aio import TableServiceClient

from proactive_bot import clients
from proactive_bot.settings import Settings
from proactive_bot.storage import services
from tests import activities
from tests.conftest import STORAGE_CLIENT_ID, identity_storage

STORAGE_RESOURCE = "https://storage.azure.com"


async def test_the_app_reaches_storage_with_tokens_from_its_managed_identity(
    oauth_azurite, identity_endpoint, serve_app
):
    settings = Settings(
        storage_identity=identity_storage(oauth_azurite),
        references_table="KeylessReferences",
        notifications_queue="keyless-notifications",
    )
    app = await serve_app(settings, connection_verify=str(oauth_azurite.certificate.cert))

    # Tables: created at build; an entity written and read back.
    reference = activities.reference(activities.teams_message("hi", "https://smba.trafficmanager.net/emea/"))
    await app.references.save(reference)
    stored = await app.references.get(reference["channelId"], reference["conversation"]["id"])
    # Queues: created at build; a message sent and received.
    await app.notifications_queue.send_message(json.dumps({"id": "n1"}))
    received = [m async for m in app.notifications_queue.receive_messages(max_messages=1)]

    assert stored is not None and stored.reference["serviceUrl"] == reference["serviceUrl"]
    assert [json.loads(m.content) for m in received] == [{"id": "n1"}]
    asked = identity_endpoint.requests_for(STORAGE_RESOURCE)
    assert asked and {r.client_id for r in asked} == {STORAGE_CLIENT_ID}
    assert all(r.api_version == "2019-08-01" and r.header == identity_endpoint.header for r in asked)


async def test_the_emulator_really_checks_the_token(oauth_azurite, identity_endpoint):
    """The path above proves something only if a wrong token is refused: one for the Bot Framework's
    audience is."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(
            identity_endpoint.endpoint,
            headers={"X-IDENTITY-HEADER": identity_endpoint.header},
            params={
                "resource": "https://api.botframework.com",
                "api-version": "2019-08-01",
                "client_id": STORAGE_CLIENT_ID,
            },
        ) as resp:
            wrong_audience = (await resp.json())["access_token"]

    class Fixed:
        async def get_token(self, *scopes, **kwargs) -> AccessToken:
            return AccessToken(wrong_audience, 2**31)

        async def close(self) -> None:
            pass

        async def __aenter__(self) -> Fixed:
            return self

        async def __aexit__(self, *exc_info: object) -> None:
            await self.close()

    service = TableServiceClient(
        oauth_azurite.service_uri("table"), credential=Fixed(), connection_verify=str(oauth_azurite.certificate.cert)
    )
    async with service:
        with pytest.raises((ClientAuthenticationError, HttpResponseError)) as refused:
            await service.create_table_if_not_exists("NeverMade")
    assert refused.value.status_code in (401, 403)


def test_identity_settings_reach_the_clients_endpoints():
    identity = Settings.from_env(
        {
            "AzureWebJobsStorage__accountName": "contosobot",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": STORAGE_CLIENT_ID,
        }
    ).storage_identity
    tables, queues, credential = services.storage_clients(Settings(storage_identity=identity))

    assert tables.url.startswith("https://contosobot.table.core.windows.net")
    assert queues.url.startswith("https://contosobot.queue.core.windows.net")
    assert credential is not None


async def test_an_identity_the_platform_does_not_know_fails_the_cold_start_with_its_answer(
    oauth_azurite, identity_endpoint
):
    """A client id of no identity assigned to the app (a typo, or the assignment not made yet)."""
    storage = dataclasses.replace(identity_storage(oauth_azurite), client_id="00000000-0000-4000-8000-000000000000")

    running = asyncio.all_tasks()
    with pytest.raises(HttpResponseError, match="Unable to load the proper Managed Identity"):
        await clients.build(Settings(storage_identity=storage), connection_verify=str(oauth_azurite.certificate.cert))

    assert identity_endpoint.requests_for(STORAGE_RESOURCE)  # it asked, and was refused
    # The first refusal is the answer: the other tables' and queues' requests were stopped, not
    # left retrying against clients that are closed.
    steps = ("TableServiceClient.create_table_if_not_exists", "_queue")  # what build makes sure of
    assert [t for t in asyncio.all_tasks() - running if not t.done() and t.get_coro().__qualname__ in steps] == []  # type: ignore[union-attr]  # typeshed's Coroutine/Generator omit __qualname__, which every coroutine has
