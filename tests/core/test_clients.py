"""Clients: built once per process from settings."""

from __future__ import annotations

import pytest

from proactive_bot import clients


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
