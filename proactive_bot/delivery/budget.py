"""One app-wide send budget (Teams: about 50 sends/s per app), shared by every instance of the app.

Azure Functions scales a queue-triggered app out on its own, and a limiter in each process
cannot know how many siblings it has: with the whole ceiling each, they overrun the channel
(429s); with a fixed split, an idle instance wastes its part. So the instances divide the
ceiling between them through a table, by what each one currently wants.

How (`SharedBudget`, one per process; `BudgetTable` is its storage):

- Each instance that has sends to make heartbeats a row of its own, about every `period`
  (0.5 s): `demand` (sends in the last second + sends waiting for the app's pace now) and
  `granted` (an upper bound of the rate it may use). Then it reads the partition: every row,
  one query. Storage cost: two operations per instance per period, none per send.
- Shares are max-min fair over the demands (water-filling, integers summing to the ceiling,
  ties by instance id): a light sender gets what it wants, the busy ones split the rest
  evenly, and every instance is counted as wanting at least 1/s, so one that just woke up
  holds a slot and can start at once. Whatever nobody wants is split evenly as headroom.
- Never over the ceiling, whatever the timing: an instance lowers the rate it uses *before*
  it writes a lower grant, and raises it only *after* writing the higher grant and then
  reading every other row, to at most `ceiling − Σ others' grants` as read. Of any set of
  instances, the one that read last read everyone's rows after they were written, so the
  rates in use at any moment add up to at most the ceiling (the linearizable single-partition
  reads of Table Storage make "after" mean something). Each grant is an integer rate per
  second, paced evenly by the RateLimiter, so the sum also holds in every one-second window.
- Joining: a process with no recent view reads before it writes, so its first grant asks only
  for what is free; the others see its demand at their next heartbeat and make room.
- Idle: after `idle_stop` seconds without demand an instance stops heartbeating and deletes
  its row, handing its share back at once; its next send starts a new round.
- Scale: every busy instance reads every busy instance's row each period, so rows read grow as
  the square of the busy instances (10 of them: 200 entities/s in all; 100: 20,000/s, past a
  partition's ~2,000/s). A 50/s ceiling has no use for that many senders: cap the instances
  (WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT) at about 10.

What can go wrong, and what happens:

- Clock skew between instances: no instance's clock is compared with another's. A row's age
  is the difference between two *storage* timestamps (its `Timestamp` and that of the reader's
  own row, written just before the read), so skewed or jumping instance clocks change nothing.
  Only each instance's monotonic clock is used, for its own timeouts.
- A dead instance (killed, scaled in, partitioned): its row stops changing; once it is more
  than `dead_after` (3 s) older than a reader's own heartbeat the reader leaves it out, so its
  share returns to the others within about `dead_after + period`. Rows dead for a minute are
  deleted by whoever sees them (under their ETag, so a revived row is never deleted).
- A storage latency spike or error: every call has a timeout (2 s). A failed round keeps what
  is known: the rate in use drops at once to at most `ceiling / live instances` (as last seen).
  And an instance whose last successful heartbeat *started* more than `self_expiry` (2.5 s,
  less than `dead_after`) ago stops sending on its own, before any sibling can count it dead
  and hand its share out again. (The monotonic time since the request started bounds the
  storage time since its Timestamp, so this holds without comparing clocks; clock rate drift is
  negligible.) Its next successful heartbeat brings it back, asking only for what is free.
- A storage outage: the same rules, for everyone: at most `ceiling / live` each at first, then
  nothing until storage answers. Never the full ceiling per instance, and never a floor that a
  sibling could have been given too. Nothing is lost by stopping: every send of a notification
  or reminder is claimed in the same storage first, so none could leave during an outage anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ..storage.keys import table_key

log = logging.getLogger(__name__)

PERIOD = 0.5  # seconds between heartbeats
DEAD_AFTER = 3.0  # storage seconds without a heartbeat after which a row no longer counts
SELF_EXPIRY = 2.5  # an instance without a successful heartbeat for this long stops sending
IDLE_STOP = 30.0  # seconds without demand before an instance leaves the table
STORAGE_TIMEOUT = 2.0  # seconds for one call to the budget table
FORGET_AFTER = 60.0  # dead rows older than this are deleted
MIN_DEMAND = 1.0  # every live instance is counted as wanting at least this many sends/s


@dataclass(frozen=True)
class Row:
    """One instance's heartbeat, as read."""

    instance: str
    demand: float
    granted: int
    written: datetime  # the storage's Timestamp of the heartbeat
    etag: str = ""


def allocate(ceiling: int, demands: Mapping[str, float]) -> dict[str, int]:
    """Max-min fair integer shares of `ceiling` (sends/s), summing to it.

    Water-filling: the smallest demands are met in full, the rest share what is left evenly;
    what nobody wants is split evenly too. Rounded by largest remainder, ties by instance id,
    so every instance computes the same shares from the same rows.
    """
    if not demands:
        return {}
    wants = {instance: max(MIN_DEMAND, demand) for instance, demand in demands.items()}
    shares: dict[str, float] = {}
    left = float(ceiling)
    ordered = sorted(wants, key=lambda instance: (wants[instance], instance))
    for position, instance in enumerate(ordered):
        fair = left / (len(ordered) - position)
        shares[instance] = min(wants[instance], fair)
        left -= shares[instance]
    if left > 1e-9:  # headroom nobody asked for, evenly
        for instance in shares:
            shares[instance] += left / len(shares)
    whole = {instance: math.floor(share + 1e-9) for instance, share in shares.items()}
    spare = ceiling - sum(whole.values())
    by_remainder = sorted(shares, key=lambda instance: (-(shares[instance] - whole[instance]), instance))
    for instance in by_remainder[: max(0, spare)]:
        whole[instance] += 1
    return whole


class BudgetTable:
    """The budget's rows: one partition per app, one row per instance."""

    def __init__(self, table: TableClient, app: str) -> None:
        self._table = table
        self._partition = table_key(app or "app")

    async def write(self, instance: str, demand: float, granted: int) -> None:
        await self._table.upsert_entity(
            {"PartitionKey": self._partition, "RowKey": instance, "demand": float(demand), "granted": int(granted)},
            mode=UpdateMode.REPLACE,
        )

    async def read(self) -> list[Row]:
        rows = []
        query = self._table.query_entities("PartitionKey eq @p", parameters={"p": self._partition})
        async for entity in query:
            rows.append(
                Row(
                    instance=entity["RowKey"],
                    demand=float(entity.get("demand", 0.0)),
                    granted=int(entity.get("granted", 0)),
                    # Table Storage stamps every stored entity (None only for one never saved).
                    written=cast(datetime, entity.metadata["timestamp"]),
                    etag=entity.metadata["etag"] or "",
                )
            )
        return rows

    async def delete(self, instance: str, etag: str | None = None) -> None:
        """Remove a row; with `etag`, only if nobody wrote it since it was read."""
        condition = MatchConditions.IfNotModified if etag else MatchConditions.Unconditionally
        with contextlib.suppress(AzureError):
            await self._table.delete_entity(self._partition, instance, etag=etag, match_condition=condition)


class SharedBudget:
    """This process's share of the app's ceiling, kept in step with its siblings (module docstring).

    `rate` is what the RateLimiter may use now (sends per second, an integer). The limiter
    reports its demand through `demand` (set by `RateLimiter`) and calls `wake()` when a send
    waits on the app's pace; heartbeats run in the background while there is demand.
    """

    def __init__(
        self,
        table: BudgetTable,
        ceiling: int,
        *,
        instance: str | None = None,
        period: float = PERIOD,
        dead_after: float = DEAD_AFTER,
        self_expiry: float = SELF_EXPIRY,
        idle_stop: float = IDLE_STOP,
        timeout: float = STORAGE_TIMEOUT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not self_expiry < dead_after:
            raise ValueError(
                "self_expiry must be shorter than dead_after, or a silent instance's share is handed out twice"
            )
        self.table = table
        self.ceiling = int(ceiling)
        # Readable in the table (which host, which process), and unique across restarts.
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.period = period
        self.dead_after = dead_after
        self.self_expiry = self_expiry
        self.idle_stop = idle_stop
        self.timeout = timeout
        self._monotonic = monotonic
        self.demand: Callable[[], float] = lambda: 0.0
        self._in_use = 0  # the rate granted to the limiter; never above what our row says
        self._view: list[Row] | None = None  # the rows as last read (None: read before writing)
        self._live = 1  # instances alive in the last view, this one included
        self._last_ok: float | None = None  # monotonic start of the last heartbeat that worked
        self._changed = asyncio.Event()
        self._poke = asyncio.Event()
        self._hurried = False  # a waiter has hurried a heartbeat since the rate last changed
        self._task: asyncio.Task[None] | None = None

    # --- what the limiter sees --------------------------------------------------------------

    @property
    def rate(self) -> int:
        """Sends per second this process may make now."""
        if self._last_ok is not None and self._monotonic() - self._last_ok > self.self_expiry:
            self._use(0)  # our row may be counted dead by now: its share can be someone else's
        return self._in_use

    def wake(self) -> None:
        """A send is waiting on the app's pace: make sure heartbeats run (start them, or hurry
        the next one if there is no rate at all).

        Hurried once each time the rate falls to nothing: every waiter calls this each time it
        looks again, and if the hurried round leaves the rate at nothing (storage failing fast,
        or the others holding the whole ceiling for now), hurrying again at every look would
        run heartbeats back to back against storage (64 waiters: ~150 reads/s, not 2)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif self._in_use == 0 and not self._hurried:
            self._hurried = True
            self._poke.set()

    async def changed(self, timeout: float) -> None:
        """Wait until the rate changes, at most `timeout` seconds."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def close(self) -> None:
        """Stop heartbeating and hand the share back (shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._leave()

    # --- one heartbeat ----------------------------------------------------------------------

    async def round(self) -> None:
        """Publish demand and grant, read everyone, settle the rate in use (module docstring)."""
        started = self._monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                if self._view is None:
                    self._view = await self.table.read()  # join politely: ask only for what is free
                demand = float(self.demand())
                intent = self._intent(self._view, demand)
                if intent < self._in_use:
                    self._use(intent)  # lower before the row says so
                await self.table.write(self.instance, demand, intent)
                rows = await self.table.read()
        except (AzureError, OSError, TimeoutError) as error:
            self._failed(error)
            return
        self._last_ok = started
        self._view = rows
        live, dead = self._split(rows)
        self._live = len(live) + 1
        others = sum(row.granted for row in live)
        self._use(max(0, min(intent, self.ceiling - others)))
        for row in dead:
            self._forget(row)

    def _intent(self, view: Sequence[Row], demand: float) -> int:
        """The grant to ask for: our fair share, but no more than the others leave free."""
        live, _ = self._split(view)
        shares = allocate(self.ceiling, {**{row.instance: row.demand for row in live}, self.instance: demand})
        return max(0, min(shares[self.instance], self.ceiling - sum(row.granted for row in live)))

    def _split(self, rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
        """Other instances' rows: (alive, dead). Ages are storage time against our own row."""
        own = next((row for row in rows if row.instance == self.instance), None)
        if own is None:  # not written yet (joining): nothing to measure against, count everyone
            return [row for row in rows if row.instance != self.instance], []
        live: list[Row] = []
        dead: list[Row] = []
        for row in rows:
            if row.instance == self.instance:
                continue
            age = (own.written - row.written).total_seconds()
            (dead if age > self.dead_after else live).append(row)
        return live, dead

    def _failed(self, error: BaseException) -> None:
        safe = self.ceiling // max(1, self._live) if self._last_ok is not None else 0
        log.warning("send budget: heartbeat failed (%s: %s); using at most %d/s", type(error).__name__, error, safe)
        self._use(min(self._in_use, safe))
        self._view = None  # others may have moved meanwhile: rejoin by reading first

    def _use(self, rate: int) -> None:
        if rate != self._in_use:
            self._in_use = rate
            self._hurried = False
            self._changed.set()
            self._changed = asyncio.Event()

    def _forget(self, row: Row) -> None:
        own = next((r for r in self._view or () if r.instance == self.instance), None)
        if own is not None and (own.written - row.written).total_seconds() > FORGET_AFTER:
            task = asyncio.get_running_loop().create_task(self.table.delete(row.instance, row.etag))
            _background.add(task)
            task.add_done_callback(_background.discard)

    # --- the heartbeat loop -----------------------------------------------------------------

    async def _run(self) -> None:
        idle_since: float | None = None
        while True:
            await self.round()
            if self.demand() > 0:
                idle_since = None
            elif idle_since is None:
                idle_since = self._monotonic()
            elif self._monotonic() - idle_since > self.idle_stop:
                await self._leave()
                return
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.period)

    async def _leave(self) -> None:
        self._use(0)
        self._view = None
        self._last_ok = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout):
                await self.table.delete(self.instance)


_background: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
