"""Clients: built once per process from settings."""

from __future__ import annotations

from typing import Any

import pytest

from proactive_bot import clients


def test_storage_reads_proxy_settings_only_when_a_proxy_is_set(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert clients.storage_uses_environment() is False  # no ~/.netrc or proxy lookups per request

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert clients.storage_uses_environment() is True


async def test_a_malformed_rate_limits_setting_fails_the_cold_start_not_a_later_send(storage_connection):
    from proactive_bot.settings import Settings

    with pytest.raises(ValueError):
        await clients.build(
            Settings(storage_connection=storage_connection, rate_limits='{"msteams": {"channel": [[0, 1]]}}')
        )


async def test_a_malformed_allowed_service_url_hosts_fails_the_cold_start(storage_connection):
    from proactive_bot.settings import Settings

    with pytest.raises(ValueError, match="AllowedServiceUrlHosts takes host names"):
        await clients.build(
            Settings(
                storage_connection=storage_connection, allowed_service_url_hosts=("https://smba.trafficmanager.net/",)
            )
        )


async def test_what_the_cold_start_made_is_kept_out_of_every_full_collection(storage_connection):
    """The modules, SDK classes and clients live as long as the process; a full collection would
    walk them all (about 50 ms), stopping every send then due. build() moves them out of its sight."""
    import gc

    from proactive_bot.settings import Settings

    app = await clients.build(Settings(storage_connection=storage_connection))
    try:
        assert gc.get_freeze_count() > 0
    finally:
        await app.close()


async def test_a_queue_call_that_failed_is_tried_again_within_a_second_and_for_about_a_minute(storage_connection):
    """The queue SDK's default waits 15 s + 3 before its first retry: one failed attempt held a
    POST's enqueue (and the urgent notification in it) that long."""
    from proactive_bot.settings import Settings

    tables, queues, _ = clients.storage_clients(Settings(storage_connection=storage_connection))
    async with tables, queues:
        policy: Any = queues._config.retry_policy  # the storage SDK's ExponentialRetry
        # The policy counts the attempt that failed before it asks how long to wait: from 1.
        waits = [policy.get_backoff_time({"count": count}) for count in range(1, policy.total_retries + 1)]
    assert waits[0] <= 1.0
    assert 45 <= sum(waits) <= 90  # a storage blip is waited out as long as with the default
