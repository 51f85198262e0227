"""The storage service clients (tables and queues) the app's clients are built on: from a
connection string or from a managed identity, with the retry and proxy settings the app needs."""

from __future__ import annotations

import os
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from ..settings import Settings, StorageIdentity


def storage_uses_environment() -> bool:
    """Whether storage requests read proxy settings (and ~/.netrc): only when a proxy is set, since
    aiohttp's trust_env looks both up on every request, much of a broadcast's CPU (README, Benchmarks)."""
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")  # what aiohttp reads


def storage_credential(identity: StorageIdentity) -> AsyncTokenCredential:
    """The managed identity storage requests are made as (tokens via the platform's endpoint)."""
    from azure.identity.aio import ManagedIdentityCredential  # only identity-based deployments need it

    return ManagedIdentityCredential(client_id=identity.client_id or None)


# The queue SDK's own retry waits 18 s (+-3) before its first retry (the tables SDK: none), so
# one failed attempt (a dropped connection, a request that timed out) held a POST's enqueue, and
# the urgent notification in it, for 16-18 s (README, Lanes and tenant budgets). Retry n waits
# initial_backoff + increment_base**n (n from 1), so a first retry within a second needs an
# initial_backoff below zero: then 0-1 s, 2-3 s, 6-7 s, 14-15 s, 30-31 s, about a minute in
# all (the default's three: 18, 24 and 42 s), so a storage blip is still waited out.
_FIRST_RETRY, _RETRY_BASE = 0.5, 2
QUEUE_RETRY: dict[str, Any] = {
    "initial_backoff": _FIRST_RETRY - _RETRY_BASE,
    "increment_base": _RETRY_BASE,
    "random_jitter_range": 0.5,
    "retry_total": 5,
}


def storage_clients(
    settings: Settings, **options: Any
) -> tuple[TableServiceClient, QueueServiceClient, AsyncTokenCredential | None]:
    """Table and queue service clients: from the connection string, or from the identity settings
    (AzureWebJobsStorage__*) with Entra tokens. `options` go to both (tests pass
    `connection_verify` for a self-signed emulator)."""
    options.setdefault("use_env_settings", storage_uses_environment())
    queue_options = {**QUEUE_RETRY, **options}
    if settings.storage_identity is None:
        return (
            TableServiceClient.from_connection_string(settings.storage_connection, **options),
            QueueServiceClient.from_connection_string(settings.storage_connection, **queue_options),
            None,
        )
    identity = settings.storage_identity
    credential = storage_credential(identity)
    return (
        TableServiceClient(identity.table_endpoint, credential=credential, **options),
        QueueServiceClient(identity.queue_endpoint, credential=credential, **queue_options),
        credential,
    )
