"""How much bulk work one process takes on at once: a few seconds of sends per budget scope.

The queue hands an instance up to its trigger's batch size of batch messages at once (16 here,
by default), each with dozens of recipients: many times what the instance can send in a few
seconds. Sends taken on wait in the limiter's bulk lane, where urgent sends pass them (lanes),
but held there they still pin claims' turn, memory and concurrency slots, and make the budget
think this instance wants more than it can use. So a bulk batch starts only while this process
holds fewer than `seconds` x the scope's pace of bulk recipients in each scope the batch touches
(a Teams tenant, or another channel); until then it waits at the door, holding nothing but its
queue message (which keeps the host from fetching more: the host's own back-pressure), and
after `patience` seconds without room it goes back on the queue for a sibling
(`Deliveries.deliver`).

Waiting here rather than always giving batches back: a batch given back is out of reach for a
second or two (the queue's visibility counts whole seconds), and the sends held drain faster
than that, which left gaps in the pace (README, Benchmarks), and each give-back costs a header
read, a put and a delete. A scope with nothing taken on always takes one batch, whatever its
size, so a batch larger than the bound still runs.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ..delivery.scopes import scope_of
from ..references import TEAMS
from ..teams.rows import RosterMember
from ..work import BatchRecipient

HORIZON = 5.0  # seconds of sends at the scope's pace that one process takes on (README: why not 3)
PATIENCE = 10.0  # seconds a batch waits for room before it is given back


class Taken:
    """A batch taken on: its recipients count in their scopes until each is done. Counting each
    one off as it is done, not the batch as a whole: a batch whose last sends wait (a 429's
    Retry-After, a conversation's window) would otherwise hold its whole count while its scope's
    line runs dry, and the pace dip until it ends."""

    def __init__(self, intake: BulkIntake, held: Counter[str]) -> None:
        self._intake = intake
        self._held = held

    def done(self, recipient: BatchRecipient) -> None:
        scope = scope_of_recipient(recipient)
        if self._held[scope] > 0:
            self._held[scope] -= 1
            self._intake._release(Counter({scope: 1}))

    def release_all(self) -> None:
        held, self._held = +self._held, Counter()
        if held:
            self._intake._release(held)


def scope_of_recipient(recipient: BatchRecipient) -> str:
    """The budget a recipient's send counts in (delivery/scopes.py): its Teams tenant, or its channel."""
    channel_id = TEAMS if isinstance(recipient, RosterMember) else recipient.channel_id
    return scope_of(channel_id, recipient.tenant_id)


class BulkIntake:
    """The bulk recipients this process holds, counted per scope, and the batches waiting for room."""

    def __init__(self, per_second: float | None, seconds: float = HORIZON, patience: float = PATIENCE) -> None:
        # None: no pace (rate limits off), so nothing waits for one and there is nothing to bound.
        self.bound = sys.maxsize if per_second is None else max(1, round(per_second * seconds))
        self.patience = patience
        self._held: Counter[str] = Counter()
        self._waiters: list[asyncio.Future[None]] = []

    def held(self, scope: str) -> int:
        return self._held[scope]

    @asynccontextmanager
    async def take(
        self, recipients: Sequence[BatchRecipient], patience: float | None = None
    ) -> AsyncIterator[Taken | None]:
        """Waits for room (at most `patience`, default the intake's), then yields the batch as
        taken on (None: not taken). Each recipient counts until it is `done`, or the block ends."""
        wanted = Counter(scope_of_recipient(r) for r in recipients)
        if not await self._room_for(wanted, self.patience if patience is None else patience):
            yield None
            return
        self._held.update(wanted)
        taken = Taken(self, wanted)
        try:
            yield taken
        finally:
            taken.release_all()

    def _release(self, held: Counter[str]) -> None:
        self._held.subtract(held)
        self._held = +self._held  # drop the scopes at zero
        self._wake()

    def _fits(self, wanted: Counter[str]) -> bool:
        return all(not self._held[s] or self._held[s] + n <= self.bound for s, n in wanted.items())

    async def _room_for(self, wanted: Counter[str], patience: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while not self._fits(wanted):
            left = deadline - loop.time()
            if left <= 0:
                return False
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait([waiter], timeout=left)
            finally:
                self._waiters.remove(waiter)
        return True

    def _wake(self) -> None:
        # Every waiter looks again, in the order they came; the first that fits takes the room.
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
