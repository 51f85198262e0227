"""Send budgets (Teams: about 50 requests/s per app per tenant), shared by every instance of the app.

Azure Functions scales a queue-triggered app out on its own, and a limiter in each process
cannot know how many siblings it has: with the whole ceiling each, they overrun the channel
(429s); with a fixed split, an idle instance wastes its part. So the instances divide each
ceiling between them through a table, by what each one currently wants.

A budget scope (scopes.py) is a Teams tenant (`MaxSendsPerSecond` per app per tenant, as Teams
counts), or another channel (one budget per channel), plus, when `MaxAppSendsPerSecond` is set,
the app-wide cap `APP_WIDE` over all of them. Every scope is shared by the same rules,
independently of the others; only the storage is common.

How (`SharedBudget`, one per process; `BudgetTable` is its storage):

- Each instance that has sends to make heartbeats a row of its own, about every `period`
  (0.5 s; every `SETTLE_PERIOD` for a few rounds while a share is moving between instances).
  The row carries, per scope it sends in, `demand` (while sends wait for the scope's pace:
  those plus the sends of the last second; once none waits, the slots taken and not yet
  reached) and `granted` (an upper bound of the rate it may use there), as one JSON property.
  Then it reads the partition: every row, one query. Storage cost: two operations per
  instance per period, whatever the number of tenants; none per send.
- A scope is listed in the row while the instance has had demand there in the last
  `scope_idle` seconds; then it drops out (its grant with it, lowered first: see below).
  At most `max_scopes` are listed (a Table property holds 64 KiB; ~60 bytes a scope): the
  scopes already listed keep their place, new ones are added busiest first, and a scope that
  finds no place gets no rate in this instance until one drops out (sends there wait).
- Shares are max-min fair over the demands in each scope (water-filling, integers summing to
  the ceiling, ties by instance id): a light sender gets what it wants, the busy ones split the
  rest evenly, and every instance listing the scope is counted as wanting at least 1/s, so one
  that just woke up holds a slot and can start at once. What nobody wants is split evenly.
- Never over a ceiling, whatever the timing: in each scope an instance lowers the rate it uses
  *before* it writes a lower grant, and raises it only *after* writing the higher grant and
  then reading every other row, to at most `ceiling − Σ others' grants` as read. Of any set of
  instances, the one that read last read everyone's rows after they were written, so the
  rates in use at any moment add up to at most the ceiling (the linearizable single-partition
  reads of Table Storage make "after" mean something). Each grant is an integer rate per
  second, paced evenly by the RateLimiter, so the sum also holds in every one-second window.
  A row is written whole, so this holds in every scope at once.
- Joining: a process with no recent view reads before it writes, so its first grant asks only
  for what is free; the others see its demand at their next heartbeat and make room. The same
  for a scope new to an instance: it asks only for what the others leave free.
- Idle: after `idle_stop` seconds without demand an instance stops heartbeating and empties
  its row, handing its shares back at once; its next send starts a new round. (Emptied, not
  deleted: see "row lost" below. Dead rows are deleted by whoever sees them.)
- Scale: every busy instance reads every busy instance's row each period, so rows read grow as
  the square of the busy instances (10 of them: 200 entities/s in all; 100: 20,000/s, past a
  partition's ~2,000/s). Cap the instances (WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT) at
  about 10 per 50/s tenant ceiling you need to fill at once.

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
  is known: the rate in use in each scope drops at once to at most `ceiling / live instances
  in that scope` (as last seen).
  And an instance whose last successful heartbeat *started* more than `self_expiry` (2.5 s,
  less than `dead_after`) ago stops sending on its own, before any sibling can count it dead
  and hand its share out again. (The monotonic time since the request started bounds the
  storage time since its Timestamp, so this holds without comparing clocks; clock rate drift is
  negligible.) Its next successful heartbeat brings it back, asking only for what is free.
- Its row lost (deleted by hand, or by anything but this protocol) under a live instance: the
  others keep counting that row's last grants for `dead_after` after it vanished from their
  view, long enough for its owner to write it again (its next heartbeat) or stop sending on
  its own (`self_expiry`), so its shares are never handed out twice.
- A storage outage: the same rules, for everyone: at most `ceiling / live` each at first, then
  nothing until storage answers, in every scope. Never the full ceiling per instance, and never a floor that a
  sibling could have been given too. Nothing is lost by stopping: every send of a notification
  or reminder is claimed in the same storage first, so none could leave during an outage anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

from azure.core.exceptions import AzureError

from .. import telemetry
from .budget_table import MAX_SCOPES, BudgetTable, Row, Share
from .scopes import APP_WIDE
from .shares import allocate

log = logging.getLogger(__name__)

PERIOD = 0.5  # seconds between heartbeats
DEAD_AFTER = 3.0  # storage seconds without a heartbeat after which a row no longer counts
SELF_EXPIRY = 2.5  # an instance without a successful heartbeat for this long stops sending
IDLE_STOP = 30.0  # seconds without demand before an instance leaves the table
STORAGE_TIMEOUT = 2.0  # seconds for one call to the budget table
FORGET_AFTER = 60.0  # dead rows older than this are deleted
SCOPE_IDLE = 5.0  # seconds without demand in a scope before it drops out of the instance's row
# While shares are moving (an instance joined a scope, or its demand changed a lot), the next
# round comes after SETTLE_PERIOD instead of `period`, at most SETTLE_ROUNDS times in a row: a
# share is handed over in two rounds (the giver writes its lower grant, then the taker reads it),
# and at `period` each that left a tenant's pace at half for a second or two.
SETTLE_PERIOD = 0.1
SETTLE_ROUNDS = 10
SETTLE_GAP = 0.1  # of the ceiling (at least 1/s): a share this far from fair is moving


class SharedBudget:
    """This process's shares of the scopes' ceilings, kept in step with its siblings (module docstring).

    `rate(scope)` is what the RateLimiter may use there now (sends per second, an integer). The
    limiter reports its demand per scope through `demand` (set by `RateLimiter`) and calls
    `wake(scope)` when a send waits on a scope's pace; heartbeats run in the background while
    there is demand.
    """

    def __init__(
        self,
        table: BudgetTable,
        ceiling: int,
        *,
        app_ceiling: int | None = None,
        instance: str | None = None,
        period: float = PERIOD,
        dead_after: float = DEAD_AFTER,
        self_expiry: float = SELF_EXPIRY,
        idle_stop: float = IDLE_STOP,
        scope_idle: float = SCOPE_IDLE,
        max_scopes: int = MAX_SCOPES,
        timeout: float = STORAGE_TIMEOUT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`ceiling`: each scope's (sends/s); `app_ceiling`: the cap over all of them
        (`APP_WIDE`), None for none."""
        if not self_expiry < dead_after:
            raise ValueError(
                "self_expiry must be shorter than dead_after, or a silent instance's share is handed out twice"
            )
        self.table = table
        self.ceiling = int(ceiling)
        self.app_ceiling = int(app_ceiling) if app_ceiling else None
        # Readable in the table (which host, which process), and unique across restarts.
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.period = period
        self.dead_after = dead_after
        self.self_expiry = self_expiry
        self.idle_stop = idle_stop
        self.scope_idle = scope_idle
        self.max_scopes = max_scopes
        self.timeout = timeout
        self._monotonic = monotonic
        self.demand: Callable[[], Mapping[str, float]] = dict
        self._in_use: dict[str, int] = {}  # rates granted to the limiter; never above what our row says
        self._listed: dict[str, float] = {}  # the scopes in our row: when each last had demand
        self._view: list[Row] | None = None  # the rows as last read (None: read before writing)
        self._live: dict[str, int] = {}  # per scope, instances alive in it in the last view, us included
        self._last_ok: float | None = None  # monotonic start of the last heartbeat that worked
        self._changed = asyncio.Event()
        self._poke = asyncio.Event()
        self._vanished: dict[str, tuple[Row, float]] = {}  # rows gone from view: last seen, since (monotonic)
        self._hurried: set[str] = set()  # scopes a waiter hurried a heartbeat for since their rate changed
        self._settling = False  # the last round left a share far from fair (SETTLE_PERIOD)
        self._task: asyncio.Task[None] | None = None
        telemetry.observe(telemetry.Metric.BUDGET_SHARE, self._shares)
        telemetry.observe(telemetry.Metric.BUDGET_RATE, self._rates)

    # --- what the limiter sees --------------------------------------------------------------

    def rate(self, scope: str) -> int:
        """Sends per second this process may make in `scope` now."""
        if self._last_ok is not None and self._monotonic() - self._last_ok > self.self_expiry:
            if self._in_use:  # once per lapse: the rates stay at nothing until a heartbeat works
                log.warning("send budget: no heartbeat for %.1f s; sending nothing until one works", self.self_expiry)
            for held in list(self._in_use):
                self._use(held, 0)  # our row may be counted dead by now: its shares can be someone else's
        return self._in_use.get(scope, 0)

    @property
    def settling(self) -> bool:
        """Did the last round leave a share far from fair? Then the next comes soon (SETTLE_PERIOD)."""
        return self._settling

    @property
    def rates(self) -> dict[str, int]:
        """Every scope's rate in use (those above nothing)."""
        return dict(self._in_use)

    def _shares(self) -> list[tuple[float, telemetry.Attributes]]:
        """The budget gauge (telemetry/): each scope's rate as a part of its ceiling. Read on the
        metric reader's thread: `rates` is a copy."""
        rates = self.rates
        return [(rate / (self.ceiling_of(scope) or 1), {telemetry.names.SCOPE: scope}) for scope, rate in rates.items()]

    def _rates(self) -> list[tuple[float, telemetry.Attributes]]:
        return [(float(rate), {telemetry.names.SCOPE: scope}) for scope, rate in self.rates.items()]

    def ceiling_of(self, scope: str) -> int:
        return (self.app_ceiling or 0) if scope == APP_WIDE else self.ceiling

    def wake(self, scope: str) -> None:
        """A send is waiting on `scope`'s pace: make sure heartbeats run (start them, or hurry
        the next one if that scope has no rate at all).

        Hurried once per scope each time its rate falls to nothing: every waiter calls this each
        time it looks again, and if the hurried round leaves the rate at nothing (storage
        failing fast, or the others holding the whole ceiling for now), hurrying again at every
        look would run heartbeats back to back against storage (64 waiters: ~150 reads/s, not 2)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif self._in_use.get(scope, 0) == 0 and scope not in self._hurried:
            self._hurried.add(scope)
            self._poke.set()

    async def changed(self, timeout: float) -> None:
        """Wait until a rate changes, at most `timeout` seconds."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()

    async def close(self) -> None:
        """Stop heartbeating and hand the shares back (shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._leave()

    # --- one heartbeat ----------------------------------------------------------------------

    async def round(self) -> None:
        """Publish demands and grants, read everyone, settle the rates in use (module docstring)."""
        started = self._monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                if self._view is None:
                    self._view = await self.table.read()  # join politely: ask only for what is free
                wanted = self._wanted(started)
                before = [*self._split(self._view)[0], *(row for row, _ in self._vanished.values())]
                intents = {scope: self._intent(before, scope, demand) for scope, demand in wanted.items()}
                for scope, rate in list(self._in_use.items()):
                    if intents.get(scope, 0) < rate:
                        self._use(scope, intents.get(scope, 0))  # lower before the row says so
                await self.table.write(self.instance, {scope: Share(wanted[scope], intents[scope]) for scope in wanted})
                rows = await self.table.read()
        except (AzureError, OSError, TimeoutError, ValueError) as error:
            self._failed(error)
            return
        self._last_ok = started
        self._view = rows
        live, dead = self._split(rows)
        live = self._with_vanished(live, dead, before, started)
        self._live = {}
        self._settling = False
        for scope, intent in intents.items():
            others = {row.instance: row.scopes[scope] for row in live if scope in row.scopes}
            self._live[scope] = len(others) + 1
            self._use(scope, max(0, min(intent, self.ceiling_of(scope) - sum(s.granted for s in others.values()))))
            self._settling |= self._moving(scope, others, wanted[scope], intent)
        for row in dead:
            self._forget(row)

    def _with_vanished(self, live: list[Row], dead: list[Row], before: list[Row], now: float) -> list[Row]:
        """`live`, and the rows alive in the last view that are gone from this one, with their
        last grants, for `dead_after` seconds: a row deleted under a live instance (by hand, or
        by anything but our own protocol) must not hand its shares out while it may still use
        them. Within `self_expiry` it writes its row again or stops sending (module docstring)."""
        present = {row.instance for row in (*live, *dead)}
        for row in before:
            if row.instance not in present and row.instance not in self._vanished:
                self._vanished[row.instance] = (row, now)
        self._vanished = {
            name: (row, since)
            for name, (row, since) in self._vanished.items()
            if name not in present and now - since <= self.dead_after
        }
        return [*live, *(row for row, _ in self._vanished.values())]

    def _wanted(self, now: float) -> dict[str, float]:
        """The scopes our row lists, with this process's demand in each (module docstring: a
        scope stays listed `scope_idle` seconds after its last demand; at most `max_scopes`)."""
        demands = {scope: float(demand) for scope, demand in self.demand().items() if scope != APP_WIDE}
        # Those listed keep their place (a dict keeps insertion order); newcomers come after
        # them, busiest first, and those past `max_scopes` try again next round.
        for scope in sorted(demands, key=lambda scope: (-demands[scope], scope)):
            if demands[scope] > 0:
                self._listed[scope] = now
        recent = [scope for scope, seen in self._listed.items() if now - seen <= self.scope_idle]
        self._listed = {scope: self._listed[scope] for scope in recent[: self.max_scopes]}
        wanted = {scope: demands.get(scope, 0.0) for scope in self._listed}
        if self.app_ceiling:
            wanted[APP_WIDE] = sum(demands.values())
        return wanted

    def _intent(self, live: Sequence[Row], scope: str, demand: float) -> int:
        """The grant to ask for in `scope`: our fair share, but no more than the others leave free."""
        others = {row.instance: row.scopes[scope] for row in live if scope in row.scopes}
        ceiling = self.ceiling_of(scope)
        shares = allocate(ceiling, {**{name: share.demand for name, share in others.items()}, self.instance: demand})
        return max(0, min(shares[self.instance], ceiling - sum(share.granted for share in others.values())))

    def _moving(self, scope: str, others: Mapping[str, Share], demand: float, intent: int) -> bool:
        """Is our share in `scope` far from fair as just read: our row holds room that is now
        someone else's, or we want room that fairness gives us and others still hold?"""
        ceiling = self.ceiling_of(scope)
        fair = allocate(ceiling, {**{name: share.demand for name, share in others.items()}, self.instance: demand})
        gap = max(1.0, SETTLE_GAP * ceiling)
        rate = self._in_use.get(scope, 0)
        holding = intent >= fair[self.instance] + gap
        wanting = demand >= rate + gap and fair[self.instance] >= rate + gap
        return holding or wanting

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
        for scope, rate in list(self._in_use.items()):
            safe = self.ceiling_of(scope) // max(1, self._live.get(scope, 1)) if self._last_ok is not None else 0
            self._use(scope, min(rate, safe))
        log.warning(
            "send budget: heartbeat failed (%s: %s); using at most %s",
            type(error).__name__,
            error,
            self._in_use or "0/s",
        )
        self._view = None  # others may have moved meanwhile: rejoin by reading first

    def _use(self, scope: str, rate: int) -> None:
        if rate != self._in_use.get(scope, 0):
            if rate:
                self._in_use[scope] = rate
            else:
                del self._in_use[scope]
            self._hurried.discard(scope)
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
        settled_for = 0  # fast rounds in a row
        while True:
            await self.round()
            settled_for = settled_for + 1 if self.settling and settled_for < SETTLE_ROUNDS else 0
            if any(demand > 0 for demand in self.demand().values()):
                idle_since = None
            elif idle_since is None:
                idle_since = self._monotonic()
            elif self._monotonic() - idle_since > self.idle_stop:
                await self._leave()
                return
            self._poke.clear()
            # asyncio.timeout, not wait_for, which on 3.11 can swallow close()'s cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTLE_PERIOD if settled_for else self.period):
                    await self._poke.wait()

    async def _leave(self) -> None:
        """Hand every share back: our row, emptied (not deleted: a row that vanishes is counted
        a while longer, `_with_vanished`; an empty one frees its shares at once, and siblings
        delete it once it is dead, `_forget`)."""
        for scope in list(self._in_use):
            self._use(scope, 0)
        self._listed = {}
        self._view = None
        self._last_ok = None
        with contextlib.suppress(AzureError, OSError, TimeoutError):
            async with asyncio.timeout(self.timeout):
                await self.table.write(self.instance, {})


_background: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
