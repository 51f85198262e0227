"""Rate limits: how fast the bot may send, per conversation and overall, before channels say 429.

Sliding windows, as Teams documents them: per bot per conversation 7 sends/1 s, 8/2 s, 60/30 s
and 1800/h, and about 50 sends/s per app. Other channels are configured per channel id. The
limiter is per process: with several instances, give each its share of the app-wide ceiling.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    """Send times within the longest window, for one scope (a conversation, a channel, the app)."""

    __slots__ = ("times", "blocked_until")

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.blocked_until = 0.0

    def wait(self, windows: Sequence[Window], now: float) -> float:
        longest = max((seconds for _, seconds in windows), default=0.0) + ARRIVAL_MARGIN
        while self.times and self.times[0] <= now - longest:
            self.times.popleft()
        wait = max(0.0, self.blocked_until - now)
        for count, seconds in windows:
            if len(self.times) >= count:
                # The send `count` places back must leave the window before another may go.
                wait = max(wait, self.times[-count] + seconds + ARRIVAL_MARGIN - now)
        return wait


class RateLimiter:
    def __init__(self, config: LimitsConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._app = _Log()
        self._channels: dict[str, _Log] = {}
        self._conversations: dict[tuple[str, str], _Log] = {}

    async def acquire(self, channel_id: str, conversation_id: str) -> float:
        """Wait until a send to this conversation is within every limit; returns seconds waited."""
        if not self._config.enabled:
            return 0.0
        limits = self._config.for_channel(channel_id)
        scopes = (
            (self._app, self._config.app),
            (self._channels.setdefault(channel_id, _Log()), limits.channel),
            (self._conversations.setdefault((channel_id, conversation_id), _Log()), limits.per_conversation),
        )
        waited = 0.0
        while True:
            now = self._clock()
            wait = max(log.wait(windows, now) for log, windows in scopes)
            if wait <= 0:
                # Checking and recording with no await in between keeps this atomic on the loop.
                for log, _ in scopes:
                    log.times.append(now)
                return waited
            await asyncio.sleep(wait)
            waited += wait

    def hold(self, channel_id: str, conversation_id: str, seconds: float) -> None:
        """The channel said 429 with Retry-After: nothing more to that conversation until then."""
        log = self._conversations.setdefault((channel_id, conversation_id), _Log())
        log.blocked_until = max(log.blocked_until, self._clock() + seconds)

    def forget_idle(self) -> None:
        """Drop conversations with no sends in the last hour, so memory follows recent traffic."""
        cutoff = self._clock() - 3600 - ARRIVAL_MARGIN
        idle = [key for key, log in self._conversations.items() if not log.times or log.times[-1] < cutoff]
        for key in idle:
            if self._conversations[key].blocked_until < self._clock():
                del self._conversations[key]
