"""Fixtures for the Connector stub tests: a started stub and an HTTP client to call it with."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from devtools.connector_stub import ConnectorStub


@pytest.fixture
async def stub() -> AsyncIterator[ConnectorStub]:
    async with ConnectorStub() as started:
        yield started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
