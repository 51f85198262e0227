"""The Functions app under test: settings pointing at Azurite and a Connector-API channel stub."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.connector_stub import ConnectorStub
from proactive_bot import clients


@pytest.fixture(scope="session", autouse=True)
def app_settings(storage_connection: str) -> Iterator[None]:
    previous = dict(os.environ)
    os.environ.update(
        {
            "AzureWebJobsStorage": storage_connection,
            "MicrosoftAppId": "",
            "MicrosoftAppPassword": "",
            "NotificationsQueue": "notifications",
            "TasksQueue": "tasks",
        }
    )
    yield
    os.environ.clear()
    os.environ.update(previous)


@pytest.fixture(scope="session")
async def app(app_settings: None) -> clients.Clients:
    """The clients the functions use (built once, like a warm Functions worker)."""
    return await clients.get()


@pytest.fixture(scope="session")
async def channel_stub() -> AsyncIterator[ConnectorStub]:
    async with ConnectorStub() as stub:
        yield stub


@pytest.fixture
def channel(channel_stub: ConnectorStub) -> ConnectorStub:
    channel_stub.clear()
    return channel_stub
