"""Networks that misbehave, and a way to see whether the event loop kept running meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class SilentServer:
    """Accepts connections, reads what is sent, and never answers."""

    url: str
    connections: int = 0
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[SilentServer]:
    silent: SilentServer | None = None

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert silent is not None
        silent.connections += 1
        silent._writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = SilentServer(f"http://127.0.0.1:{port}")
    try:
        yield silent
    finally:
        for writer in silent._writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def run_while_counting_ticks(work: Awaitable[T]) -> tuple[T | BaseException, int]:
    """Run `work`; count how often this coroutine got the loop back while it was in flight.

    If `work` blocked the loop (synchronous I/O), the count stays near zero whatever its duration.
    """
    task: asyncio.Task[Any] = asyncio.ensure_future(work)
    ticks = 0
    while not task.done():
        ticks += 1
        await asyncio.sleep(0.01)
    try:
        return task.result(), ticks
    except Exception as error:
        return error, ticks
