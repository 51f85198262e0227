"""Shared fixtures: a real Azurite per test session, the app's settings, fresh tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime

import pytest
from azure.data.tables.aio import TableClient, TableServiceClient

from devtools import azurite as azurite_process


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite_process.Azurite]:
    emulator = azurite_process.start(tmp_path_factory.mktemp("azurite"))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def storage_connection(azurite: azurite_process.Azurite) -> str:
    return azurite.connection_string


@pytest.fixture
async def new_table(storage_connection: str) -> AsyncIterator:
    """A factory for empty tables, so a test sees only its own rows."""
    service = TableServiceClient.from_connection_string(storage_connection)
    made: list[TableClient] = []

    async def make() -> TableClient:
        table = await service.create_table(f"t{uuid.uuid4().hex}")
        made.append(table)
        return table

    yield make
    for table in made:
        await service.delete_table(table.table_name)
        await table.close()
    await service.close()


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session", autouse=True)
async def _close_app_clients() -> AsyncIterator[None]:
    """The app builds its clients once per process, as in a Functions worker; close them at the end."""
    yield
    from proactive_bot import clients

    await clients.close()


# --- The app with credentials: a local token endpoint and a local Bot Framework key issuer ---

APP_ID = "b0c6a3e2-1d53-4d8b-9d1e-5c8f7e9a0b11"
APP_PASSWORD = "test-secret-Xq9~rTbW.KlmN0pQrS"
ACCESS_TOKEN = "token-1-eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9"


@pytest.fixture
async def token_server() -> AsyncIterator[tuple[str, list[dict]]]:
    """An OAuth token endpoint on loopback, standing in for login.microsoftonline.com."""
    from aiohttp import web

    requests: list[dict] = []

    async def issue(request: web.Request) -> web.Response:
        requests.append(dict(await request.post()))
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN})

    application = web.Application()
    application.router.add_post("/token", issue)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/token", requests
    await runner.cleanup()


@pytest.fixture(scope="session")
async def openid() -> AsyncIterator:
    """The Bot Framework's OpenID metadata and signing key, on loopback (devtools/openid_stub.py)."""
    from devtools.openid_stub import OpenIdStub

    async with OpenIdStub() as stub:
        yield stub


def authenticated_settings(storage_connection: str, token_endpoint: str, metadata_url: str, **changes):
    from proactive_bot.settings import Settings

    values = dict(
        storage_connection=storage_connection,
        app_id=APP_ID,
        app_password=APP_PASSWORD,
        token_endpoint=token_endpoint,
        open_id_metadata=metadata_url,
        # The channel stub listens on loopback; with credentials it has to be listed.
        allowed_service_url_hosts=("default", "127.0.0.1"),
    )
    return Settings(**{**values, **changes})


def managed_identity_settings(storage_connection: str, identity, metadata_url: str, **changes):
    """The bot as deployed by infra/: UserAssignedMSI, tokens from the platform's identity endpoint."""
    values = dict(
        app_password="",
        app_type="UserAssignedMSI",
        app_tenant_id=identity.tenant_id,
        identity_endpoint=identity.endpoint,
        identity_header=identity.header,
    )
    return authenticated_settings(storage_connection, "", metadata_url, **{**values, **changes})


@pytest.fixture
async def serve_app(monkeypatch) -> AsyncIterator:
    """`await serve_app(settings)`: clients built from these settings become what `clients.get()`
    (and so every function) uses for the rest of the test; closed at its end."""
    from proactive_bot import clients

    built: list[clients.Clients] = []

    async def serve(settings, **storage_options) -> clients.Clients:
        app = await clients.build(settings, **storage_options)
        built.append(app)

        async def get() -> clients.Clients:
            return app

        monkeypatch.setattr(clients, "get", get)
        return app

    yield serve
    for app in built:
        await app.close()


@pytest.fixture
async def authenticated_app(storage_connection, token_server, openid, serve_app):
    """The app's clients with MicrosoftAppId/Password set."""
    return await serve_app(authenticated_settings(storage_connection, token_server[0], openid.metadata_url))


@pytest.fixture
async def local_app(storage_connection, serve_app):
    """The app's clients in local mode (no app id)."""
    from proactive_bot.settings import Settings

    return await serve_app(Settings(storage_connection=storage_connection))


# --- Keyless: a managed identity endpoint, and Azurite over https taking Entra tokens ---

STORAGE_CLIENT_ID = "5e7a1c2d-0b3f-4e8a-9c6d-7f1e2a3b4c5d"  # the user-assigned identity's client id


@pytest.fixture(scope="session")
def oauth_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite_process.Azurite]:
    """Azurite serving https with a certificate made here, accepting bearer tokens (`--oauth basic`)."""
    folder = tmp_path_factory.mktemp("azurite-oauth")
    emulator = azurite_process.start(folder / "data", oauth=azurite_process.self_signed_certificate(folder))
    yield emulator
    emulator.stop()


@pytest.fixture
async def identity_endpoint(monkeypatch) -> AsyncIterator:
    """The platform's managed identity endpoint (devtools/identity_stub.py), in the environment as
    Azure sets it, knowing the storage identity and the bot's."""
    from devtools.identity_stub import IdentityStub

    async with IdentityStub(client_ids=[STORAGE_CLIENT_ID, APP_ID]) as stub:
        monkeypatch.setenv("IDENTITY_ENDPOINT", stub.endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", stub.header)
        yield stub


def identity_storage(emulator: azurite_process.Azurite):
    """AzureWebJobsStorage__* as the template writes them (service URIs: the emulator's ports)."""
    from proactive_bot.settings import StorageIdentity

    return StorageIdentity(
        blob_uri=emulator.service_uri("blob"),
        queue_uri=emulator.service_uri("queue"),
        table_uri=emulator.service_uri("table"),
        credential="managedidentity",
        client_id=STORAGE_CLIENT_ID,
    )


def unreachable_connection() -> str:
    """A connection string to a storage account that does not answer: nothing listens on its port."""
    endpoint = f"http://127.0.0.1:{azurite_process.free_port()}/{azurite_process.ACCOUNT}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={azurite_process.ACCOUNT};"
        f"AccountKey={azurite_process.ACCOUNT_KEY};"
        f"BlobEndpoint={endpoint};QueueEndpoint={endpoint};TableEndpoint={endpoint};"
    )


def clock_at(start: datetime) -> Callable[..., Callable[[datetime], None]]:
    """A test module's `at` fixture: the app's clock reads `start`, and `at(moment)` moves it.

    In a test module: `at = clock_at(NOW)`.
    """

    @pytest.fixture
    def at(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
        from proactive_bot import clock

        def set_clock(moment: datetime) -> None:
            monkeypatch.setattr(clock, "now", lambda: moment)

        set_clock(start)
        return set_clock

    return at
