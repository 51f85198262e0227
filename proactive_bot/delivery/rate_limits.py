"""Rate limits: how fast the bot may send, per conversation and overall, before channels say 429.

Sliding windows, as Teams documents them: per bot per conversation 7 sends/1 s, 8/2 s, 60/30 s
and 1800/h, and about 50 sends/s per app. Other channels are configured per channel id.

The windows live in this process. The app-wide ceiling is shared with the app's other instances
through a `SharedBudget` (budget.py), which hands this process a rate that changes as siblings
come, go and get busy; per-conversation and per-channel windows stay per process (see the
README: two instances rarely send to one conversation at once, and a 429 is then absorbed).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .lanes import Lane

Window = tuple[int, float]  # (sends, seconds)

TEAMS_PER_CONVERSATION: tuple[Window, ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
APP_CEILING: tuple[Window, ...] = ((50, 1.0),)

# Channel ids → limits. Anything not listed gets "default". Slack and Telegram allow about one
# message per second per chat; Telegram also about 30/s per bot.
DEFAULT_CHANNEL_LIMITS: dict[str, dict[str, tuple[Window, ...]]] = {
    "default": {"perConversation": TEAMS_PER_CONVERSATION, "channel": ()},
    "slack": {"perConversation": ((1, 1.0),), "channel": ()},
    "telegram": {"perConversation": ((1, 1.0),), "channel": ((30, 1.0),)},
}

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
_APP_RECHECK = 0.5  # seconds; a send waiting for the app's pace looks again at least this often


@dataclass(frozen=True)
class ChannelLimits:
    per_conversation: tuple[Window, ...]
    channel: tuple[Window, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    app: tuple[Window, ...] = APP_CEILING
    channels: Mapping[str, ChannelLimits] = field(
        default_factory=lambda: {
            name: ChannelLimits(spec["perConversation"], spec["channel"])
            for name, spec in DEFAULT_CHANNEL_LIMITS.items()
        }
    )
    enabled: bool = True

    def for_channel(self, channel_id: str) -> ChannelLimits:
        return self.channels.get(channel_id) or self.channels["default"]

    @classmethod
    def parse(cls, app_per_second: float | None, channels_json: str, enabled: bool = True) -> LimitsConfig:
        """From settings: `MaxSendsPerSecond` and `RateLimits` (JSON, per channel id)."""
        app = ((max(1, int(app_per_second)), 1.0),) if app_per_second else APP_CEILING
        config = cls(app=app, enabled=enabled)
        if not channels_json.strip():
            return config
        channels = dict(config.channels)
        for channel_id, spec in json.loads(channels_json).items():
            channels[channel_id] = ChannelLimits(
                per_conversation=_windows(spec.get("perConversation", [])),
                channel=_windows(spec.get("channel", [])),
            )
        return cls(app=app, channels=channels, enabled=enabled)


def _windows(raw: Sequence[Any]) -> tuple[Window, ...]:
    windows = tuple((int(count), float(seconds)) for count, seconds in raw)
    if any(count < 1 or seconds <= 0 for count, seconds in windows):
        raise ValueError(f"rate limit windows must be [count >= 1, seconds > 0]: {raw}")
    return windows


class _Log:
    """Send times within the longest window, for one scope (a conversation, a channel, the app).

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
    """What the limiter reads of a share of the app's ceiling (`SharedBudget`, budget.py)."""

    period: float
    demand: Callable[[], float]  # set by the limiter: how fast this process wants to send

    @property
    def rate(self) -> int: ...

    def wake(self) -> None: ...

    async def changed(self, timeout: float) -> None: ...


class RateLimiter:
    def __init__(
        self,
        config: LimitsConfig,
        clock: Callable[[], float] = time.monotonic,
        budget: Budget | None = None,
    ) -> None:
        """`budget`: the app's ceiling is shared with other instances, and its first window's
        count is this process's current share (else `config.app` as it stands)."""
        self._config = config
        self._clock = clock
        self._budget = budget
        self._app = _Log(APP_MARGIN_MIN)
        self._widened_at = -math.inf  # when a 429 last widened the app's margin
        self._channels: dict[str, _Log] = {}
        self._conversations: dict[tuple[str, str], _Log] = {}
        self._next_sweep = 0.0  # when acquire next drops forgotten conversations (forget_idle)
        self._tickets = 0  # places handed out to sends waiting for the app's pace, ever
        self._served = 0  # of those, the ones that got a slot or stopped waiting (each once)
        if budget is not None:
            budget.demand = self.app_demand

    @property
    def app_margin(self) -> float:
        """Seconds the app's window is widened by for arrival jitter (adapts to 429s)."""
        return self._app.margin

    def app_demand(self) -> float:
        """Sends per second this process wants: taken in the last second, plus those waiting
        for the app's pace now, i.e. holding a place in its line (the budget divides the
        ceiling by this)."""
        if not self._config.app:
            return 0.0
        seconds = self._config.app[0][1]
        recent = len(self._app.times) - bisect.bisect_right(self._app.times, self._clock() - seconds)
        return (recent + self._tickets - self._served) / seconds

    def _app_windows(self) -> tuple[Window, ...]:
        if self._budget is None or not self._config.app:
            return self._config.app
        (_, seconds), *rest = self._config.app
        return ((self._budget.rate, seconds), *rest)

    async def acquire(
        self,
        channel_id: str,
        conversation_id: str,
        *,
        lead: float = 0.0,
        lane: Lane = Lane.BULK,
        tenant_id: str = "",
    ) -> Permit:
        """Take the next slot in which a send to this conversation is within every limit.

        Returns up to `lead` seconds before the slot (`Permit.stamp`), so the caller can do its
        last bit of work (the claim write) and then send on time with `wait_for_slot`.
        """
        if not self._config.enabled:
            return Permit((), self._clock())
        if self._clock() >= self._next_sweep:
            self._next_sweep = self._clock() + SWEEP_EVERY
            self.forget_idle()
        limits = self._config.for_channel(channel_id)
        own = (
            (self._channels.setdefault(channel_id, _Log()), limits.channel),
            (self._conversations.setdefault((channel_id, conversation_id), _Log()), limits.per_conversation),
        )
        ticket: int | None = None  # our place among those waiting for the app's pace
        while True:
            now = self._clock()
            app_windows = self._app_windows()
            app = self._app.earliest(app_windows, now)
            mine = max(log.earliest(windows, now) for log, windows in own)
            earliest = max(app, mine)
            if earliest - lead <= now:
                # A sender that slept until `earliest` wakes a little late; recording the slot
                # it was given, not the wake-up time, keeps those delays from adding up.
                stamp = earliest if now - earliest < _WAKE_TOLERANCE else now
                # Checking and recording with no await in between keeps this atomic on the loop.
                scopes = [(log, windows) for log, windows in ((self._app, app_windows), *own) if windows]
                steps = tuple(log.take(stamp, windows) for log, windows in scopes)
                self._app.margin = max(APP_MARGIN_MIN, self._app.margin - APP_MARGIN_NARROW)
                if ticket is not None:
                    self._served += 1
                return Permit(tuple(log for log, _ in scopes), stamp, steps)
            app_bound = app >= mine
            delay = earliest - lead - now
            if app_bound:
                if ticket is None:
                    ticket = self._tickets
                    self._tickets += 1
                if delay != math.inf:
                    # Those waiting for the app's pace since before us go first, a slot each:
                    # sleep until about our turn instead of waking with every one of them at
                    # every slot (128 waiters x 50 slots a second was a tenth of a core). Paced
                    # at the whole ceiling, not our share of it: waking early costs a look,
                    # waking late a slot, and our share can grow while we sleep.
                    count, seconds = self._config.app[0]
                    delay += max(0, ticket - self._served) * (seconds + self._app.margin) / count
            try:
                await self._wait(delay, app_bound)
            except BaseException:
                if ticket is not None:
                    self._served += 1  # gone: those behind move up
                raise

    async def _wait(self, seconds: float, app_bound: bool) -> None:
        if not app_bound:
            await asyncio.sleep(seconds)
            return
        # Our turn is an estimate, and a share can grow at any heartbeat: look again by then.
        recheck = self._budget.period if self._budget is not None else _APP_RECHECK
        if self._budget is not None:
            self._budget.wake()
            if seconds == math.inf:
                await self._budget.changed(recheck)
                return
        await asyncio.sleep(min(seconds, recheck))

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

    def throttled(self, channel_id: str, conversation_id: str, retry_after: float | None) -> None:
        """The channel said 429: widen the app's arrival margin (once per window), and with a
        Retry-After, send nothing more to that conversation until then."""
        now = self._clock()
        window = self._config.app[0][1] if self._config.app else 1.0
        if now - self._widened_at >= window:
            self._widened_at = now
            self._app.margin = min(APP_MARGIN_MAX, self._app.margin + APP_MARGIN_WIDEN)
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
