"""The bound on Connector requests in flight in a process, with room kept for urgent ones.

A slot is held from before the rate limiter's wait until the request's answer, so a broadcast
that took every slot would leave an urgent send unable even to start waiting for its turn in
the limiter's line. Bulk calls therefore use a sub-bound: `reserved` slots only interactive
and urgent calls can take.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from .lanes import Lane

RESERVED_SHARE = 4  # a quarter of the slots (at least one) is kept for interactive and urgent calls


class Slots(asyncio.Semaphore):
    """`async with slots` takes a slot as a plain semaphore (callers that know no lane: counted
    as urgent); `async with slots.hold(lane)` keeps bulk calls within their sub-bound."""

    def __init__(self, total: int, reserved: int | None = None) -> None:
        super().__init__(total)
        self.total = total
        self.reserved = max(1, total // RESERVED_SHARE) if reserved is None else reserved
        # With one slot there is nothing to keep back: bulk would never start.
        self._bulk = asyncio.Semaphore(max(1, total - self.reserved))

    @contextlib.asynccontextmanager
    async def hold(self, lane: Lane) -> AsyncIterator[None]:
        if lane is Lane.BULK:
            async with self._bulk, self:
                yield
        else:
            async with self:
                yield
