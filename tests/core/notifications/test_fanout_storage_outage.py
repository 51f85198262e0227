"""A broadcast through a storage blip: what the channel accepted is reported sent, nothing twice.

Storage here is an Azurite of this module's own, so that freezing it (SIGSTOP, then SIGCONT: it
answers nothing, loses nothing, as in a latency spike or a partition) or taking it away (killed,
then started again on its ports from the same files: connections refused) touches no other test.
The blips last seconds; bench/storage_outage.py has the issue's 15 s in a 1,500-user broadcast.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from devtools import azurite as azurite_process
from proactive_bot.app import status_body
from proactive_bot.delivery.limits import LimitsConfig
from proactive_bot.notifications import Notification
from tests.support.polling import eventually

BLIP_SECONDS = 4.0
# Longer than Azurite's keep-alive (5 s, Node's default): when it wakes, it closes the idle
# connections the app had meanwhile sent requests on, and those requests fail (connection reset).
FREEZE_SECONDS = 7.0
USERS = 150  # three seconds at Teams' 50/s: the blip lands mid-broadcast


class Storage:
    """This module's Azurite, which a test may freeze or take away for a while."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.emulator = azurite_process.start(folder)

    async def frozen(self, seconds: float) -> None:
        os.killpg(self.emulator.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.killpg(self.emulator.process.pid, signal.SIGCONT)

    async def away(self, seconds: float) -> None:
        emulator = self.emulator
        ports = (emulator.blob_port, emulator.queue_port, emulator.table_port)
        await asyncio.to_thread(emulator.stop)  # SIGTERM: Azurite writes its files out first
        await asyncio.sleep(seconds)
        self.emulator = await asyncio.to_thread(azurite_process.start, self.folder, ports=ports)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    own = Storage(tmp_path_factory.mktemp("azurite-blips"))
    yield own
    own.emulator.stop()


@pytest.fixture(scope="module")
def storage_connection(storage: Storage) -> str:
    return storage.emulator.connection_string  # the same ports after a restart


async def broadcast_through(engine, blip: Callable[[], Awaitable[None]]) -> dict:
    """A broadcast; `blip` once a third has arrived; the host played to the end; the status."""
    notification = Notification(id="b-storage", to={"all": True}, text="Maintenance at 22:00")

    async def run() -> None:
        await engine.fanout.start(notification, source="test")
        await engine.drain(wait_for_delayed=5)

    broadcast = asyncio.create_task(run())
    await eventually(lambda: len(engine.stub.delivered()) >= USERS // 3)
    await blip()
    await broadcast  # no invocation failed: a batch waits for storage instead
    return status_body(await engine.records.status(notification.id))


def delivered_once_each(engine, users: list[dict]) -> bool:
    delivered = Counter(r.conversation_id for r in engine.stub.delivered())
    return delivered == Counter({u["conversation"]["id"]: 1 for u in users})


async def test_storage_frozen_mid_broadcast_the_status_counts_what_the_channel_accepted(engine_factory, storage):
    engine = await engine_factory(limits=LimitsConfig(), retry_budget=30)
    users = await engine.users(USERS)

    status = await broadcast_through(engine, lambda: storage.frozen(FREEZE_SECONDS))

    assert status["state"] == "done"
    assert (status["counts"]["sent"], status["counts"]["unconfirmed"], status["counts"]["failed"]) == (USERS, 0, 0)
    assert delivered_once_each(engine, users)


async def test_storage_refusing_connections_mid_broadcast_the_status_counts_what_the_channel_accepted(
    engine_factory, storage
):
    engine = await engine_factory(limits=LimitsConfig(), retry_budget=30)
    users = await engine.users(USERS)

    status = await broadcast_through(engine, lambda: storage.away(BLIP_SECONDS))

    assert status["state"] == "done"
    assert (status["counts"]["sent"], status["counts"]["unconfirmed"], status["counts"]["failed"]) == (USERS, 0, 0)
    assert delivered_once_each(engine, users)
    assert engine.records.gate.up
