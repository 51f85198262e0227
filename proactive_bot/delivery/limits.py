"""The limits a channel documents, as the rate limiter reads them: windows per conversation, per
channel, per budget scope (a Teams tenant, another channel) and app-wide, from settings."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True)
class ChannelLimits:
    per_conversation: tuple[Window, ...]
    channel: tuple[Window, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    app: tuple[Window, ...] = APP_CEILING  # per budget scope: a Teams tenant, another channel
    channels: Mapping[str, ChannelLimits] = field(
        default_factory=lambda: {
            name: ChannelLimits(spec["perConversation"], spec["channel"])
            for name, spec in DEFAULT_CHANNEL_LIMITS.items()
        }
    )
    enabled: bool = True
    app_wide: tuple[Window, ...] = ()  # over every scope together (the app's own capacity); () = none

    def for_channel(self, channel_id: str) -> ChannelLimits:
        return self.channels.get(channel_id) or self.channels["default"]

    @classmethod
    def parse(
        cls,
        app_per_second: float | None,
        channels_json: str,
        enabled: bool = True,
        app_wide_per_second: float | None = None,
    ) -> LimitsConfig:
        """From settings: `MaxSendsPerSecond`, `RateLimits` (JSON, per channel id) and
        `MaxAppSendsPerSecond`."""
        app = ((max(1, int(app_per_second)), 1.0),) if app_per_second else APP_CEILING
        app_wide = ((max(1, int(app_wide_per_second)), 1.0),) if app_wide_per_second else ()
        config = cls(app=app, enabled=enabled, app_wide=app_wide)
        if not channels_json.strip():
            return config
        channels = dict(config.channels)
        for channel_id, spec in json.loads(channels_json).items():
            channels[channel_id] = ChannelLimits(
                per_conversation=_windows(spec.get("perConversation", [])),
                channel=_windows(spec.get("channel", [])),
            )
        return cls(app=app, channels=channels, enabled=enabled, app_wide=app_wide)


def _windows(raw: Sequence[Any]) -> tuple[Window, ...]:
    windows = tuple((int(count), float(seconds)) for count, seconds in raw)
    if any(count < 1 or seconds <= 0 for count, seconds in windows):
        raise ValueError(f"rate limit windows must be [count >= 1, seconds > 0]: {raw}")
    return windows
