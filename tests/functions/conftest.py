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
            # Function tests are about wiring, not pacing; tests/core/test_rate_limits.py is.
            "RateLimitsEnabled": "false",
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


class WorkQueueDrainer:
    """Plays the Functions host for the internal work queue: runs deliver_batch until it is empty."""

    def __init__(self, app: clients.Clients) -> None:
        self._queue = app.queues.get_queue_client(app.settings.work_queue)

    async def drain(self, *, wait_for_delayed: float = 0.0) -> int:
        """Run every visible work message (and any that become visible within the wait)."""
        from tests.functions import invoke
        from tests.support.polling import drain_queue

        async def run(message) -> None:
            outputs = await invoke.queue("deliver_batch", message.content.encode(), dequeue_count=message.dequeue_count)
            assert outputs["poison"].value is None, f"work message poisoned: {message.content[:200]}"

        return await drain_queue(self._queue, run, wait_for_delayed=wait_for_delayed, interval=0.2)


@pytest.fixture
async def work(app: clients.Clients) -> WorkQueueDrainer:
    return WorkQueueDrainer(app)
