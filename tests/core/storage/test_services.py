"""The storage service clients: what they read of the environment, and how they retry."""

from __future__ import annotations

from typing import Any

from proactive_bot.settings import Settings
from proactive_bot.storage import services


def test_storage_reads_proxy_settings_only_when_a_proxy_is_set(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert services.storage_uses_environment() is False  # no ~/.netrc or proxy lookups per request

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert services.storage_uses_environment() is True


async def test_a_queue_call_that_failed_is_tried_again_within_a_second_and_for_about_a_minute(storage_connection):
    """The queue SDK's default waits 15 s + 3 before its first retry: one failed attempt held a
    POST's enqueue (and the urgent notification in it) that long."""
    tables, queues, _ = services.storage_clients(Settings(storage_connection=storage_connection))
    async with tables, queues:
        policy: Any = queues._config.retry_policy  # the storage SDK's ExponentialRetry
        # The policy counts the attempt that failed before it asks how long to wait: from 1.
        waits = [policy.get_backoff_time({"count": count}) for count in range(1, policy.total_retries + 1)]
    assert waits[0] <= 1.0
    assert 45 <= sum(waits) <= 90  # a storage blip is waited out as long as with the default
