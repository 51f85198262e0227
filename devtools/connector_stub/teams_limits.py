"""The rate limits a channel applies to the sends it accepts, as sliding windows; the defaults are
the Teams per-conversation and per-app numbers.

A send that does not fit every window is answered 429 with a Retry-After of the whole seconds
until it would. This is the channel's side, written apart from the bot's own pacing
(`proactive_bot.delivery.rate_limits`) on purpose: a stub that reused the code under test could
not catch its mistakes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Final

Window = tuple[int, float]
"""(max accepted sends, window length in seconds)."""

TEAMS_PER_CONVERSATION: Final[tuple[Window, ...]] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
TEAMS_GLOBAL: Final[tuple[Window, ...]] = ((50, 1.0),)


def check_windows(spec: Sequence[Window] | None) -> tuple[Window, ...]:
    """`spec` as numbers (None: no windows); ValueError for a window that admits nothing."""
    if spec is None:
        return ()
    windows = tuple((int(limit), float(span)) for limit, span in spec)
    if any(limit < 1 or span <= 0 for limit, span in windows):
        raise ValueError(f"windows need limit >= 1 and span > 0: {windows!r}")
    return windows


class RateLimits:
    """Windows over accepted sends: per conversation, and app-wide. No windows: no limit."""

    __slots__ = ("_by_conversation", "_global", "_global_spec", "_per_conversation_spec")

    def __init__(
        self,
        per_conversation: Sequence[Window] | None = None,
        global_: Sequence[Window] | None = None,
    ) -> None:
        self._per_conversation_spec = check_windows(per_conversation)
        self._global_spec = check_windows(global_)
        self.reset()

    def reset(self) -> None:
        """Forget every accepted send: all windows start empty."""
        self._global = _WindowSet(self._global_spec)
        self._by_conversation: dict[str, _WindowSet] = {}

    def try_admit(self, conversation_id: str | None, now: float) -> int | None:
        """Count one send at `now` and return None if every window has room; else count nothing
        and return the Retry-After (whole seconds, at least 1) to answer the 429 with.
        `conversation_id` None: the send counts app-wide only (e.g. creating a conversation)."""
        conversation = self._conversation(conversation_id)
        wait = self._global.wait(now) if self._global_spec else 0.0
        if conversation is not None:
            wait = max(wait, conversation.wait(now))
        if wait > 0:
            return max(1, math.ceil(wait))
        if self._global_spec:
            self._global.admit(now)
        if conversation is not None:
            conversation.admit(now)
        return None

    def _conversation(self, conversation_id: str | None) -> _WindowSet | None:
        if not self._per_conversation_spec or conversation_id is None:
            return None
        windows = self._by_conversation.get(conversation_id)
        if windows is None:
            windows = self._by_conversation[conversation_id] = _WindowSet(self._per_conversation_spec)
        return windows


class _WindowSet:
    """Sliding windows over the accepted sends of one key (a conversation, or the whole app)."""

    __slots__ = ("_windows",)

    def __init__(self, spec: Sequence[Window]) -> None:
        self._windows = [(limit, span, deque[float]()) for limit, span in spec]

    def wait(self, now: float) -> float:
        """Seconds until one more send fits every window (0 if it fits now)."""
        longest = 0.0
        for limit, span, stamps in self._windows:
            horizon = now - span
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
            if len(stamps) >= limit:
                # Accepted sends never exceed the limit, so the oldest one frees the slot.
                longest = max(longest, stamps[len(stamps) - limit] + span - now)
        return longest

    def admit(self, now: float) -> None:
        for _, _, stamps in self._windows:
            stamps.append(now)
