"""The bound on Connector requests in flight in a process, with room kept for urgent ones.

A slot is held from before the rate limiter's wait until the request's answer, so a broadcast
that took every slot would leave an urgent send unable even to start waiting for its turn in
the limiter's line. Bulk calls therefore have slots of their own, `total - reserved` of them,
and **per budget scope**: held while they wait for their scope's pace, one pool for every scope
let the sends of the batch that started first (one tenant's) hold all of them while the other
tenants' lines stood empty, each tenant in turn at its full pace and the others at none
(README, Benchmarks: bench.tenants). Interactive and urgent calls share the `total` slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from .lanes import Lane

RESERVED_SHARE = 4  # a quarter of the slots (at least one) is kept for interactive and urgent calls


class Slots(asyncio.Semaphore):
    """`async with slots` takes a slot as a plain semaphore (callers that know no lane: counted
    as urgent); `async with slots.hold(lane, scope)` takes a bulk call's from its scope's pool."""

    def __init__(self, total: int, reserved: int | None = None) -> None:
        super().__init__(total)
        self.total = total
        self.reserved = max(1, total // RESERVED_SHARE) if reserved is None else reserved
        # With one slot there is nothing to keep back: bulk would never start.
        self.bulk = max(1, total - self.reserved)
        # Each scope's bulk pool lives while a call holds or waits for it (the call's reference):
        # memory follows the scopes in use, not every tenant ever sent to.
        self._pools: weakref.WeakValueDictionary[str, asyncio.Semaphore] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def hold(self, lane: Lane, scope: str = "") -> AsyncIterator[None]:
        if lane is not Lane.BULK:
            async with self:
                yield
            return
        pool = self._pools.get(scope)
        if pool is None:
            pool = self._pools[scope] = asyncio.Semaphore(self.bulk)
        async with pool:
            yield
