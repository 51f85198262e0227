"""Rate limits: how fast the bot may send, per conversation and per budget scope, before channels say 429.

Sliding windows, as Teams documents them: per bot per conversation 7 sends/1 s, 8/2 s, 60/30 s
and 1800/h, and about 50 requests/s per app per tenant. Other channels are configured per
channel id. Each budget scope (scopes.py: a Teams tenant, another channel) has its own pace
(`MaxSendsPerSecond`), and an optional app-wide cap spans them all (`MaxAppSendsPerSecond`).

Within a scope, the sends waiting for its pace stand in one line, served by lane (lanes.py)
and first come first served within a lane, with a floor for bulk (`BULK_FLOOR`).

The windows live in this process. Each scope's ceiling (and the app-wide cap) is shared with
the app's other instances through a `SharedBudget` (budget.py), which hands this process a rate
per scope that changes as siblings come, go and get busy; per-conversation and per-channel
windows, and the lines, stay per process (see the README: two instances rarely send to one
conversation at once, and a 429 is then absorbed).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .health import ChannelHealth
from .lanes import Lane
from .limits import LimitsConfig, Window
from .line import Line, Waiter
from .scopes import APP_WIDE, scope_of

# Requests leave here and arrive at the channel a little later, and not always in order; a
# send that is exactly one window after another here can land inside the window there.
ARRIVAL_MARGIN = 0.03
# The app's window is long and busy (50 sends a second): every millisecond of margin there costs
# a thousandth of the pace. How much arrival jitter there is depends on the machine and the
# network, so the app's margin adapts: it widens with every 429 the channel answers and narrows
# while none comes. In small steps: a 429 costs its slot, and every millisecond of margin costs
# a thousandth of every slot for as long as it lasts (larger steps held the broadcast benchmark
# well under the bound; README, Benchmarks). At equilibrium, about a 429 per 500 sends.
# Once per window, not per 429: the 429s of one window are one crowding (a send that arrived
# late makes the few after it early), and widening for each stacked the steps (a burst of 429s
# in one second kept the margin up for several times 500 sends).
APP_MARGIN_MIN, APP_MARGIN_MAX = 0.01, 0.05
APP_MARGIN_WIDEN = 0.002  # per window with a 429
APP_MARGIN_NARROW = APP_MARGIN_WIDEN / 500  # per send
_WAKE_TOLERANCE = 0.01
# A send that leaves late (its claim write was slow, the loop was busy, a garbage collection)
# is counted from when it left, which pushes back the send one window later, and the even pace
# would carry that delay on to every send after it. Instead the pace keeps its place and the
# sends after a late one catch up, at most this much faster than the pace and for at most
# CATCH_UP_LIMIT seconds of delay (a longer gap is idleness, not delay: the pace restarts).
# Every window is still checked send by send, so catching up never exceeds one.
CATCH_UP_SPACING = 0.5
CATCH_UP_LIMIT = 0.3
SWEEP_EVERY = 600.0  # seconds between looks for conversations no window remembers any more
_APP_RECHECK = 0.5  # seconds; the first in a scope's line looks again at least this often
# The others in the line are woken when it moves (a slot taken, a waiter gone); this only
# bounds the cost of a wake-up that went astray.
_LINE_RECHECK = 2.0


class _Log:
    """Send times within the longest window, for one scope (a conversation, a channel, a budget).

    Kept sorted: a stamp can move later when its send leaves later than planned (`restamp`).
    """

    __slots__ = ("blocked_until", "last_slot", "margin", "paced", "times")

    def __init__(self, margin: float = ARRIVAL_MARGIN) -> None:
        self.margin = margin
        self.times: list[float] = []
        self.blocked_until = 0.0
        self.last_slot = float("-inf")  # the latest slot handed out, as planned (not restamped)
        self.paced = float("-inf")  # where the even pace has got to (at or before last_slot)

    def move(self, old: float, new: float | None) -> None:
        """Move (or, with None, drop) one stamp."""
        index = bisect.bisect_left(self.times, old)
        if index < len(self.times) and self.times[index] == old:
            del self.times[index]
        if new is not None:
            bisect.insort(self.times, new)

    def spacing(self, windows: Sequence[Window]) -> float:
        """Seconds between sends at the even pace of the first (shortest) window."""
        count, seconds = windows[0]
        return (seconds + self.margin) / count if count > 0 else math.inf

    def take(self, stamp: float, windows: Sequence[Window]) -> float:
        """Count a send at its slot `stamp` and move the even pace on by one; returns how far
        it moved (0: the pace started again from `stamp`), for `hand_back`. Only for a scope
        with windows: one without keeps no stamps (nothing would ever drop them)."""
        bisect.insort(self.times, stamp)
        self.last_slot = max(self.last_slot, stamp)
        spacing = self.spacing(windows)
        due = self.paced + spacing
        if stamp - due > CATCH_UP_LIMIT:
            self.paced = stamp
            return 0.0
        self.paced = due
        return spacing

    def earliest(self, windows: Sequence[Window], now: float) -> float:
        """The first moment another send fits every window (may be in the past)."""
        earliest = self.blocked_until
        if not windows:
            return earliest
        longest = max(seconds for _, seconds in windows) + self.margin
        expired = bisect.bisect_right(self.times, now - longest)
        if expired:
            del self.times[:expired]
        # Evenly spaced at the shortest window's rate rather than in bursts: a burst of 50
        # requests leaves over tens of milliseconds of CPU time, which is enough to make the
        # channel count 51 in its window. Spaced from the planned slots, so that sends leaving
        # late do not slow the pace down, and behind the pace, closer (CATCH_UP_SPACING).
        spacing = self.spacing(windows)
        if spacing == math.inf:
            return math.inf  # no share of the budget at the moment
        earliest = max(earliest, self.paced + spacing, self.last_slot + CATCH_UP_SPACING * spacing)
        for count, seconds in windows:
            if len(self.times) >= count:
                # The send `count` places back must leave the window before another may go.
                earliest = max(earliest, self.times[-count] + seconds + self.margin)
        return earliest


@dataclass(frozen=True)
class Permit:
    logs: tuple[_Log, ...]  # the scopes with windows the send counts in
    stamp: float
    steps: tuple[float, ...] = ()  # how far it moved each scope's pace (`_Log.take`)


class Budget(Protocol):
    """What the limiter reads of its shares of the budgets' ceilings (`SharedBudget`, budget.py)."""

    period: float
    demand: Callable[[], Mapping[str, float]]  # set by the limiter: sends/s this process wants, per scope

    def rate(self, scope: str) -> int: ...

    def wake(self, scope: str) -> None: ...

    async def changed(self, timeout: float) -> None: ...


class _Scope:
    """One budget scope in this process: its pace (with its own arrival margin) and its line."""

    __slots__ = ("line", "log", "widened_at")

    def __init__(self) -> None:
        self.log = _Log(APP_MARGIN_MIN)
        self.line = Line()
        self.widened_at = -math.inf  # when a 429 last widened its margin


class RateLimiter:
    def __init__(
        self,
        config: LimitsConfig,
        clock: Callable[[], float] = time.monotonic,
        budget: Budget | None = None,
        health: ChannelHealth | None = None,
    ) -> None:
        """`budget`: each scope's ceiling (and the app-wide cap) is shared with other instances,
        and its first window's count is this process's current share (else `config` as it
        stands). `health`: whether each scope's channel answers; a down one is only probed."""
        self.health = health if health is not None else ChannelHealth(clock=clock)
        self._config = config
        self._clock = clock
        self._budget = budget
        self._scopes: dict[str, _Scope] = {}
        self._app_wide = _Log(APP_MARGIN_MIN)
        self._channels: dict[str, _Log] = {}
        self._conversations: dict[tuple[str, str], _Log] = {}
        self._next_sweep = 0.0  # when acquire next drops forgotten conversations (forget_idle)
        if budget is not None:
            budget.demand = self.demands

    @property
    def app_margin(self) -> float:
        """Seconds the widest scope's pace is widened by for arrival jitter (adapts to 429s)."""
        return max((scope.log.margin for scope in self._scopes.values()), default=APP_MARGIN_MIN)

    def margin(self, channel_id: str, tenant_id: str = "") -> float:
        """The arrival margin of one scope's pace (a 429 widens only its own scope's)."""
        scope = self._scopes.get(scope_of(channel_id, tenant_id))
        return scope.log.margin if scope is not None else APP_MARGIN_MIN

    def demands(self) -> dict[str, float]:
        """Sends per second this process wants, per scope (the budget divides each ceiling by
        these): while sends wait for the scope's pace, those waiting plus those taken in the last
        second; once none waits, only the slots taken and not yet reached. A process whose work
        in a scope has run out then hands its share on at its next heartbeat, not a second
        later while a sibling's sends wait (README, Benchmarks: bench.tenants). Its sends
        already made need no grant kept for them: they were paced evenly at its rate, and it
        makes no more above its new grant, so with a sibling's new rate the two stay within the
        ceiling in every window."""
        if not self._config.app:
            return {}
        seconds = self._config.app[0][1]
        now = self._clock()
        demands: dict[str, float] = {}
        for name, scope in self._scopes.items():
            waiting = scope.line.ready()
            since = now - seconds if waiting else now
            demands[name] = (len(scope.log.times) - bisect.bisect_right(scope.log.times, since) + waiting) / seconds
        return demands

    def app_demand(self) -> float:
        """The sum of `demands`: what this process wants of the whole app."""
        return sum(self.demands().values())

    def _scope_windows(self, name: str) -> tuple[Window, ...]:
        windows = self._config.app
        if self._budget is not None and windows:
            (_, seconds), *rest = windows
            windows = ((self._budget.rate(name), seconds), *rest)
        return self.health.paced(name, windows)

    def _app_wide_windows(self) -> tuple[Window, ...]:
        if self._budget is None or not self._config.app_wide:
            return self._config.app_wide
        (_, seconds), *rest = self._config.app_wide
        return ((self._budget.rate(APP_WIDE), seconds), *rest)

    async def acquire(
        self,
        channel_id: str,
        conversation_id: str,
        *,
        lead: float = 0.0,
        lane: Lane = Lane.BULK,
        tenant_id: str = "",
        retry: bool = False,
    ) -> Permit:
        """Take the next slot in which a send to this conversation is within every limit, in
        the scope's line by `lane` (the budget scope: `tenant_id` for Teams, else the channel);
        a `retry` joins the front of its lane.

        Returns up to `lead` seconds before the slot (`Permit.stamp`), so the caller can do its
        last bit of work (the claim write) and then send on time with `wait_for_slot`.
        """
        if not self._config.enabled:
            return Permit((), self._clock())
        if self._clock() >= self._next_sweep:
            self._next_sweep = self._clock() + SWEEP_EVERY
            self.forget_idle()
        limits = self._config.for_channel(channel_id)
        name = scope_of(channel_id, tenant_id)
        scope = self._scopes.setdefault(name, _Scope())
        channel = self._channels.setdefault(channel_id, _Log())
        conversation = self._conversations.setdefault((channel_id, conversation_id), _Log())
        waiter: Waiter | None = scope.line.join(lane, retry)
        try:
            while True:
                assert waiter is not None
                now = self._clock()
                scope_windows, app_wide_windows = self._scope_windows(name), self._app_wide_windows()
                shared = max(
                    self._app_wide.earliest(app_wide_windows, now),
                    scope.log.earliest(scope_windows, now),
                    channel.earliest(limits.channel, now),
                )
                mine = conversation.earliest(limits.per_conversation, now)
                earliest = max(shared, mine)
                was_ready, waiter.ready = waiter.ready, mine <= max(shared, now + lead)
                if was_ready and not waiter.ready:
                    scope.line.wake_head()  # it may have been next: whoever is now
                head = scope.line.head() is waiter
                if head and earliest - lead <= now:
                    # A sender that slept until `earliest` wakes a little late; recording the
                    # slot it was given, not the wake-up time, keeps those delays from adding up.
                    stamp = earliest if now - earliest < _WAKE_TOLERANCE else now
                    # Checking and recording with no await in between keeps this atomic on the loop.
                    scopes = [
                        (log, windows)
                        for log, windows in (
                            (self._app_wide, app_wide_windows),
                            (scope.log, scope_windows),
                            (channel, limits.channel),
                            (conversation, limits.per_conversation),
                        )
                        if windows
                    ]
                    steps = tuple(log.take(stamp, windows) for log, windows in scopes)
                    scope.log.margin = max(APP_MARGIN_MIN, scope.log.margin - APP_MARGIN_NARROW)
                    served, waiter = waiter, None
                    scope.line.served(served)
                    return Permit(tuple(log for log, _ in scopes), stamp, steps)
                if not waiter.ready:
                    await asyncio.sleep(mine - lead - now)  # its own conversation's windows first
                elif head:
                    await self._wait(earliest - lead - now, name)
                else:
                    await self._wait_turn(waiter)
        finally:
            if waiter is not None:
                scope.line.leave(waiter)  # gone without a slot: those behind move up

    async def _wait(self, seconds: float, scope: str) -> None:
        """The first in its scope's line waits for the scope's next slot."""
        # A share can grow at any heartbeat: look again by then.
        recheck = self._budget.period if self._budget is not None else _APP_RECHECK
        if self._budget is not None:
            self._budget.wake(scope)
            if seconds == math.inf:
                await self._budget.changed(recheck)
                return
        await asyncio.sleep(min(seconds, recheck))

    @staticmethod
    async def _wait_turn(waiter: Waiter) -> None:
        """The others wait to be next (`Line.wake_head`), not for a time: one wake-up per slot
        for the whole line, however long it is."""
        waiter.turn.clear()
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that comes as
        # the event is set (a waiter ahead leaving wakes the next one as all are cancelled).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_LINE_RECHECK):
                await waiter.turn.wait()

    async def wait_for_slot(self, permit: Permit) -> None:
        """Sleep until the permit's slot; if it has passed by more than the margin covers (a slow
        claim, or a sleep that ended late: a busy loop, a garbage collection), count the send
        from now (`restamp`)."""
        early = permit.stamp - self._clock()
        if early > 0:
            await asyncio.sleep(early)
        self.restamp(permit)

    def restamp(self, permit: Permit) -> None:
        """The send leaves now: count it from now, if that is later than its slot.

        Between taking a slot and sending comes the claim write, whose latency varies; counting
        from the real departure keeps later slots honest to what the channel will see.
        """
        now = self._clock()
        # Small delays are what each scope's margin is for; moving every stamp by them would
        # only slow the pace down.
        for log in permit.logs:
            if now - permit.stamp > log.margin / 2:
                log.move(permit.stamp, now)

    def hand_back(self, permit: Permit) -> None:
        """The slot was not used (the claim went to another sender): the sends after it catch
        up with the pace it held."""
        for log, step in zip(permit.logs, permit.steps, strict=False):
            log.move(permit.stamp, None)
            log.paced -= step

    def throttled(
        self, channel_id: str, conversation_id: str, retry_after: float | None, *, tenant_id: str = ""
    ) -> None:
        """The channel said 429: widen the arrival margin of that scope's pace (once per window;
        a 429 from one tenant says nothing of another's), and with a Retry-After, send nothing
        more to that conversation until then."""
        now = self._clock()
        window = self._config.app[0][1] if self._config.app else 1.0
        scope = self._scopes.setdefault(scope_of(channel_id, tenant_id), _Scope())
        if now - scope.widened_at >= window:
            scope.widened_at = now
            scope.log.margin = min(APP_MARGIN_MAX, scope.log.margin + APP_MARGIN_WIDEN)
        if retry_after is not None:
            self.hold(channel_id, conversation_id, retry_after)

    def hold(self, channel_id: str, conversation_id: str, seconds: float) -> None:
        """Nothing more to that conversation for `seconds`."""
        log = self._conversations.setdefault((channel_id, conversation_id), _Log())
        log.blocked_until = max(log.blocked_until, self._clock() + seconds)

    def forget_idle(self) -> None:
        """Drop conversations whose sends have all left every window, so memory follows recent
        traffic rather than every conversation this process ever sent to (acquire calls this
        every SWEEP_EVERY seconds). Only logs with stamps: an empty one may be that of a send
        waiting in acquire right now (its first look drops expired stamps), and a second log
        for the same conversation would split its windows."""
        now = self._clock()
        for key, log in list(self._conversations.items()):
            windows = self._config.for_channel(key[0]).per_conversation
            longest = max((seconds for _, seconds in windows), default=0.0) + log.margin
            if log.times and log.times[-1] < now - longest and log.blocked_until < now:
                del self._conversations[key]
        # Scopes (tenants) come and go with the traffic too; one is kept while anyone waits in
        # its line or its margin may still matter (it adapts over minutes of sends).
        for name, scope in list(self._scopes.items()):
            if not scope.line and (not scope.log.times or scope.log.times[-1] < now - SWEEP_EVERY):
                del self._scopes[name]
