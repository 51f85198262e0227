"""`python -m devtools.connector_stub`: the console channel in its own process."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from devtools.connector_stub import REPLY

from .client import message

pytestmark = pytest.mark.timeout(60)

REPO_ROOT = Path(__file__).resolve().parents[3]


async def _read_line_matching(stream: asyncio.StreamReader, wanted: Callable[[str], bool], seen: list[str]) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), timeout=20)).decode()
        if not line:
            raise AssertionError(f"stream ended; saw {seen!r}")
        seen.append(line)
        if wanted(line):
            return line.rstrip("\n")


async def test_standalone_console_channel_prints_and_serves_results(
    http: aiohttp.ClientSession,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.connector_stub",
        "--port",
        "0",
        "--teams-limits",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    seen: list[str] = []
    try:
        banner = await _read_line_matching(process.stdout, lambda s: "serviceUrl=" in s, seen)
        service_url = re.search(r"serviceUrl=(\S+)", banner).group(1)  # type: ignore[union-attr]
        stub_url = URL(service_url)
        url = URL(
            f"{service_url}v3/conversations/{quote('19:c@thread.tacv2', safe='')}/activities/1",
            encoded=True,
        )

        async with http.post(url, json=message("hello console")) as response:
            assert response.status == 200
        line = await _read_line_matching(process.stdout, lambda s: "hello console" in s, seen)
        async with http.get(stub_url / "_stub/received") as response:
            received = await response.json()
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(process.wait(), timeout=20)

    assert line == "[19:c@thread.tacv2] bot: hello console"
    assert [(r["route"], r["conversation_id"]) for r in received] == [(REPLY, "19:c@thread.tacv2")]
    assert exit_code == 0
