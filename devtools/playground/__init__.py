"""Microsoft 365 Agents Playground (npm `@microsoft/m365agentsplayground`): Microsoft's Teams
emulator, a Teams-like web client and a Connector API server, started from the repo's
node_modules and pointed at the local host's /api/messages.

Used by `make run --teams` and by tests/test_playground.py. It runs offline, its telemetry off
(`--dt`), with the mock tenant, team, channels and group chat of `.m365agentsplayground.yml`
in this folder (it reads that file from its working directory). The bot reaches it at
`service_url`: every activity it sends carries that serviceUrl.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from devtools.azurite import free_port

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PLAYGROUND_BIN = REPO_ROOT / "node_modules" / ".bin" / "agentsplayground"
CONFIG = HERE / ".m365agentsplayground.yml"
# What it prints once it listens; it falls back to a random port when the asked one is taken.
_LISTENING = re.compile(r"Listening on (\d+)")
# Ids of the mock tenant in .m365agentsplayground.yml that the banner and the tests name.
TEAM = "19:playground-team-general@thread.tacv2"  # the team, and its General channel
RELEASES = "19:playground-team-releases@thread.tacv2"  # its second channel
STARTUP_TIMEOUT = 60.0  # seconds; node loads a 15 MB bundle, slow on a busy machine


@dataclass
class Playground:
    """A running Playground process (`start`) and where it listens."""

    process: asyncio.subprocess.Process
    port: int
    output: list[str] = field(default_factory=list)  # its stdout lines, for a failing test to show
    reader: asyncio.Task[None] | None = None  # reads on after start (the loop keeps tasks weakly)

    @property
    def url(self) -> str:
        """The web client."""
        return f"http://localhost:{self.port}"

    @property
    def service_url(self) -> str:
        """Its Connector API, as the serviceUrl of the activities it sends the bot."""
        return f"http://localhost:{self.port}/_connector"

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        if self.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reader, 5)  # ends with its output


async def start(bot_endpoint: str, port: int = 0, *, echo: IO[str] | None = None) -> Playground:
    """Start it on `port` (0: a free one) for the bot at `bot_endpoint` (…/api/messages).
    `echo`: a stream its output is copied to (`make run` shows it; tests keep it)."""
    if not PLAYGROUND_BIN.exists():
        raise RuntimeError(f"{PLAYGROUND_BIN} is missing: run `npm ci` (make does it for you)")
    asked = port or free_port()
    process = await asyncio.create_subprocess_exec(
        str(PLAYGROUND_BIN),
        "start",
        "--app-endpoint",
        bot_endpoint,
        "--channel-id",
        "msteams",
        "--port",
        str(asked),
        "--disable-telemetry",
        cwd=HERE,  # where it reads .m365agentsplayground.yml
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() ends node and its children
        env={**os.environ, "BROWSER": "none", "NO_COLOR": "1"},  # never opens a browser itself
    )
    playground = Playground(process, asked)
    try:
        playground.port = await asyncio.wait_for(_listening_port(playground, echo), STARTUP_TIMEOUT)
    except BaseException:
        await playground.stop()
        raise
    playground.reader = asyncio.get_running_loop().create_task(_drain(playground, echo))
    return playground


async def _listening_port(playground: Playground, echo: IO[str] | None) -> int:
    assert playground.process.stdout is not None
    while line := (await playground.process.stdout.readline()).decode(errors="replace"):
        _keep(playground, line, echo)
        found = _LISTENING.search(line)
        if found:
            return int(found.group(1))
    raise RuntimeError("the Playground exited before it listened:\n" + "".join(playground.output[-20:]))


async def _drain(playground: Playground, echo: IO[str] | None) -> None:
    # Read on, so a full pipe never blocks it.
    assert playground.process.stdout is not None
    while line := (await playground.process.stdout.readline()).decode(errors="replace"):
        _keep(playground, line, echo)


def _keep(playground: Playground, line: str, echo: IO[str] | None) -> None:
    playground.output.append(line)
    del playground.output[:-500]
    if echo is not None:
        echo.write(f"[playground] {line}")
        echo.flush()
