"""Waiting for a condition instead of sleeping for a guess."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = ..., interval: float = ...) -> T: ...
@overload
async def eventually(check: Callable[[], T | None], timeout: float = ..., interval: float = ...) -> T: ...
async def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until check() returns something truthy, and return it; the timeout only bounds a broken run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def drain_queue(
    queue, run: Callable[[object], Awaitable[None]], *, wait_for_delayed: float = 0.0, interval: float = 0.1
) -> int:
    """Play the Functions host for a queue: run every visible message (and any that become
    visible within `wait_for_delayed` seconds) until none is left; returns how many ran."""
    loop = asyncio.get_running_loop()
    ran = 0
    deadline = loop.time() + wait_for_delayed
    while True:
        messages = [m async for m in queue.receive_messages(max_messages=32, visibility_timeout=60)]
        if not messages:
            if loop.time() >= deadline:
                return ran
            await asyncio.sleep(interval)
            continue
        for message in messages:
            await run(message)
            await queue.delete_message(message)
            ran += 1
