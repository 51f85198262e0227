"""A cold start with storage down: the invocation fails at once with what is wrong, nothing is
poisoned or leaked, and the next invocation (storage back) builds the app again."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings

import pytest
from azure.core.exceptions import ServiceRequestError

from devtools import azurite as azurite_process
from proactive_bot import clients
from tests.functions import invoke


def dead_storage() -> str:
    """A connection string to ports nothing listens on (an emulator that died)."""
    host = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={azurite_process.ACCOUNT};AccountKey={azurite_process.ACCOUNT_KEY};"
        + "".join(
            f"{kind}Endpoint={host}:{azurite_process.free_port()}/{azurite_process.ACCOUNT};"
            for kind in ("Blob", "Queue", "Table")
        )
    )


async def test_storage_down_at_cold_start_fails_each_function_with_the_storage_error_then_recovers(
    storage_connection, monkeypatch
):
    notification = json.dumps({"to": {"channelId": "msteams", "userId": "29:nobody"}, "text": "hi"}).encode()
    # The good build would freeze the failed builds' leftovers out of gc.collect()'s sight.
    monkeypatch.setattr(clients, "_spare_collections", lambda: None)

    async def cold_worker() -> list[warnings.WarningMessage]:
        # Its own event loop: a worker process of its own, apart from the session's warm clients.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            monkeypatch.setenv("AzureWebJobsStorage", dead_storage())
            with pytest.raises(ServiceRequestError, match="Cannot connect"):
                await invoke.queue("queue_notify", notification)  # the host retries the message later
            with pytest.raises(ServiceRequestError, match="Cannot connect"):
                await invoke.http("notifications_api", method="GET", route_params={"id": "n-1"})  # the host: 500

            monkeypatch.setenv("AzureWebJobsStorage", storage_connection)  # storage is back
            response = await invoke.http("notifications_api", method="GET", route_params={"id": "n-1"})
            assert response.status_code == 404
            await clients.close()
            gc.collect()
        return [w for w in caught if issubclass(w.category, ResourceWarning)]

    leaked = await asyncio.to_thread(asyncio.run, cold_worker())

    assert [str(w.message)[:40] for w in leaked] == []  # the failed builds closed their storage clients
