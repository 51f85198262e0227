"""`python -m devtools.funchost --instances K`: K hosts of one app on one storage, K processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from devtools.azurite import free_port

REPO = Path(__file__).resolve().parents[2]


async def status(http: aiohttp.ClientSession, port: int) -> int | None:
    try:
        async with http.get(f"http://127.0.0.1:{port}/admin/host/status") as response:
            return response.status
    except aiohttp.ClientError:
        return None


@pytest.mark.timeout(90)
async def test_instances_start_as_processes_on_the_next_ports_and_stop_together(copy_sample_app, funchost_azurite):
    app = copy_sample_app("instances")
    port = free_port()  # and the one after it, for the sibling
    env = {**os.environ, "AzureWebJobsStorage": funchost_azurite.connection_string}
    host = subprocess.Popen(
        [sys.executable, "-m", "devtools.funchost", "--app-root", str(app), "--port", str(port), "--instances", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if await status(http, port) == 200 and await status(http, port + 1) == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("both instances should answer")

            host.send_signal(signal.SIGTERM)  # as `make run` or a terminal's Ctrl-C ends it
            assert await asyncio.to_thread(host.wait, 60) == 0
            assert await status(http, port + 1) is None  # the sibling went with it
    finally:
        if host.poll() is None:
            os.killpg(host.pid, signal.SIGKILL)
