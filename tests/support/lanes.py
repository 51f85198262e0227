"""What the limiter was asked: the lane and tenant of every Connector call (a recording wrapper
around the real RateLimiter, so the calls still take their slots)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from proactive_bot.delivery.lanes import Lane
from proactive_bot.delivery.rate_limits import Permit, RateLimiter


class Asked:
    """What the limiter was asked: (channel, lane, tenant) of every Connector call."""

    def __init__(self, limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, Lane, str]] = []
        acquire = limiter.acquire

        async def recording(channel_id: str, conversation_id: str, **options: Any) -> Permit:
            # **options: whatever acquire takes (lead, retry...) passes through unread.
            self.calls.append((channel_id, options.get("lane", Lane.BULK), options.get("tenant_id", "")))
            return await acquire(channel_id, conversation_id, **options)

        monkeypatch.setattr(limiter, "acquire", recording)

    def lanes(self) -> Counter[tuple[Lane, str]]:
        return Counter((lane, tenant) for _, lane, tenant in self.calls)
