"""Shared fixtures: a real Azurite per test session, the app's settings, fresh tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

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
