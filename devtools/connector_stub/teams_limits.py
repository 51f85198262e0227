"""The rate limits a channel applies to the requests it accepts, as sliding windows; the defaults
are the Teams per-conversation and per-app-per-tenant numbers.

Microsoft's "Optimize your bot with rate limiting in Teams"
(https://learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit; MicrosoftDocs/
msteams-docs, msteams-platform/bots/how-to/rate-limit.md): per bot per thread, send 7/1 s,
8/2 s, 60/30 s, 1800/3600 s; "The global limit per app per tenant is 50 Requests Per Second
(RPS)"; "All requests are subject to the same rate limiting policy, including sending
messages, channel enumerations, and roster fetches". So the app-wide windows here are kept once
per tenant (`per_tenant`, the default): an app in four tenants may make 50 requests a second in
each.

A request that does not fit every window is answered 429 with a Retry-After of the whole
seconds until it would. This is the channel's side, written apart from the bot's own pacing
(`proactive_bot.delivery.rate_limits`) on purpose: a stub that reused the code under test could
not catch its mistakes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Final

Window = tuple[int, float]
"""(max accepted requests, window length in seconds)."""

TEAMS_PER_CONVERSATION: Final[tuple[Window, ...]] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
TEAMS_GLOBAL: Final[tuple[Window, ...]] = ((50, 1.0),)
"""Per app per tenant (see the module docstring), or for the whole app with per_tenant=False."""


def check_windows(spec: Sequence[Window] | None) -> tuple[Window, ...]:
    """`spec` as numbers (None: no windows); ValueError for a window that admits nothing."""
    if spec is None:
        return ()
    windows = tuple((int(limit), float(span)) for limit, span in spec)
    if any(limit < 1 or span <= 0 for limit, span in windows):
        raise ValueError(f"windows need limit >= 1 and span > 0: {windows!r}")
    return windows


class RateLimits:
    """Windows over accepted requests: per conversation, and app-wide per tenant (or, with
    `per_tenant` False, for the whole app). No windows: no limit."""

    __slots__ = ("_by_conversation", "_by_tenant", "_global_spec", "_per_conversation_spec", "per_tenant")

    def __init__(
        self,
        per_conversation: Sequence[Window] | None = None,
        global_: Sequence[Window] | None = None,
        *,
        per_tenant: bool = True,
    ) -> None:
        self._per_conversation_spec = check_windows(per_conversation)
        self._global_spec = check_windows(global_)
        self.per_tenant = per_tenant
        self.reset()

    def reset(self) -> None:
        """Forget every accepted request: all windows start empty."""
        self._by_tenant: dict[str, _WindowSet] = {}
        self._by_conversation: dict[str, _WindowSet] = {}

    def try_admit(self, conversation_id: str | None, now: float, tenant_id: str = "") -> int | None:
        """Count one request at `now` and return None if every window has room; else count
        nothing and return the Retry-After (whole seconds, at least 1) to answer the 429 with.
        `conversation_id` None: the request counts app-wide only (e.g. creating a conversation).
        `tenant_id`: whose app-wide windows it counts in ("": a tenant the channel cannot tell)."""
        retry_after = self.retry_after(conversation_id, now, tenant_id)
        if retry_after is None:
            self.admit(conversation_id, now, tenant_id)
        return retry_after

    def retry_after(self, conversation_id: str | None, now: float, tenant_id: str = "") -> int | None:
        """None if one more request fits every window now, else the whole seconds until it
        would (at least 1); counts nothing (see `admit`)."""
        wait = 0.0
        tenant = self._tenant(tenant_id)
        if tenant is not None:
            wait = tenant.wait(now)
        conversation = self._conversation(conversation_id)
        if conversation is not None:
            wait = max(wait, conversation.wait(now))
        return max(1, math.ceil(wait)) if wait > 0 else None

    def admit(self, conversation_id: str | None, now: float, tenant_id: str = "") -> None:
        """Count one request at `now` in its windows, whether or not they had room."""
        tenant = self._tenant(tenant_id)
        if tenant is not None:
            tenant.admit(now)
        conversation = self._conversation(conversation_id)
        if conversation is not None:
            conversation.admit(now)

    def _tenant(self, tenant_id: str) -> _WindowSet | None:
        if not self._global_spec:
            return None
        key = tenant_id if self.per_tenant else ""
        windows = self._by_tenant.get(key)
        if windows is None:
            windows = self._by_tenant[key] = _WindowSet(self._global_spec)
        return windows

    def _conversation(self, conversation_id: str | None) -> _WindowSet | None:
        if not self._per_conversation_spec or conversation_id is None:
            return None
        windows = self._by_conversation.get(conversation_id)
        if windows is None:
            windows = self._by_conversation[conversation_id] = _WindowSet(self._per_conversation_spec)
        return windows


class _WindowSet:
    """Sliding windows over the accepted requests of one key (a conversation, or a tenant)."""

    __slots__ = ("_windows",)

    def __init__(self, spec: Sequence[Window]) -> None:
        self._windows = [(limit, span, deque[float]()) for limit, span in spec]

    def wait(self, now: float) -> float:
        """Seconds until one more request fits every window (0 if it fits now)."""
        longest = 0.0
        for limit, span, stamps in self._windows:
            horizon = now - span
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
            if len(stamps) >= limit:
                # Accepted requests never exceed the limit, so the oldest one frees the slot.
                longest = max(longest, stamps[len(stamps) - limit] + span - now)
        return longest

    def admit(self, now: float) -> None:
        for _, _, stamps in self._windows:
            stamps.append(now)
