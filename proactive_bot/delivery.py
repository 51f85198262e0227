"""Delivery: putting one message in front of one stored recipient, and naming how it went.

Every send waits for the rate limiter and a concurrency slot. `send` makes one attempt;
`send_patiently` retries what is worth retrying (429 after its Retry-After, 412/5xx and network
errors after exponential backoff with jitter) until a deadline, and then reports when to try
again, so callers hand the work back to the queue instead of sleeping for minutes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from botbuilder.schema import Activity

from .channel import ChannelAdapter
from .connector import ConnectorError
from .rate_limits import RateLimiter
from .references import ReferenceStore, StoredReference
from .service_urls import ServiceUrlNotAllowed

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # 403/404: the user blocked the bot or the conversation no longer exists
    THROTTLED = "throttled"  # 429: worth trying again later
    FAILED = "failed"  # this attempt did not deliver; `retryable` says whether another might
    SKIPPED = "skipped"  # not attempted: the claim went to another worker


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None  # seconds until another attempt makes sense
    throttled: int = 0  # 429s met on the way (send_patiently)
    attempts: int = 1
    permanent: bool = False  # a failure no retry can fix (e.g. a serviceUrl we may not call)

    @property
    def retryable(self) -> bool:
        return not self.permanent and (
            self.outcome is Outcome.THROTTLED
            or (self.outcome is Outcome.FAILED and (self.status is None or self.status in _RETRY_STATUSES))
        )


_GONE_STATUSES = frozenset({403, 404})
_RETRY_STATUSES = frozenset({412, 429, 500, 502, 503, 504})
BACKOFF_BASE = 0.5
Claim = Callable[[], Awaitable[bool]]
BACKOFF_CAP = 30.0


def backoff(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Exponential backoff with full jitter: spreads retries of many senders apart."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


class Delivery:
    def __init__(
        self,
        adapter: ChannelAdapter,
        references: ReferenceStore,
        limiter: RateLimiter,
        concurrency: int = 64,
        backoff_base: float = BACKOFF_BASE,
    ) -> None:
        self._backoff_base = backoff_base
        self._adapter = adapter
        self._references = references
        self._limiter = limiter
        self._slots = asyncio.Semaphore(concurrency)
        self._claim_latency = _Latency()

    async def send(
        self, recipient: StoredReference, activities: Sequence[dict[str, Any] | Activity], *, claim: Claim | None = None
    ) -> Result:
        """One attempt, within the concurrency bound and the rate limits.

        `claim` runs after the waiting and just before the request: whoever records "I am
        sending this" should do it as late as possible, so a crash leaves little unconfirmed.
        """
        async with self._slots:
            # The claim is written while the slot approaches, so the request leaves on time and
            # as soon as possible after its claim (what a crash could leave unconfirmed).
            lead = self._claim_latency.estimate if claim is not None else 0.0
            permit = await self._limiter.acquire(recipient.channel_id, recipient.conversation_id, lead=lead)
            if claim is not None:
                started = time.monotonic()
                claimed = await claim()
                self._claim_latency.observe(time.monotonic() - started)
                if not claimed:
                    self._limiter.release(permit)
                    return Result(Outcome.SKIPPED, attempts=0)
            await self._limiter.wait_for_slot(permit)
            return await self._attempt(recipient, activities)

    async def send_patiently(
        self,
        recipient: StoredReference,
        activities: Sequence[dict[str, Any] | Activity],
        *,
        deadline: float,
        claim: Claim | None = None,
    ) -> Result:
        """Retry until sent, gone, not retryable, or the next try would pass `deadline` (monotonic)."""
        throttled = 0
        attempt = 0
        while True:
            attempt += 1
            result = await self.send(recipient, activities, claim=claim if attempt == 1 else None)
            if result.outcome is Outcome.SKIPPED:
                return result
            throttled += result.outcome is Outcome.THROTTLED
            if not result.retryable:
                return _with(result, throttled, attempt)
            wait = result.retry_after if result.retry_after is not None else backoff(attempt, self._backoff_base)
            if result.outcome is Outcome.THROTTLED and result.retry_after is not None:
                self._limiter.hold(recipient.channel_id, recipient.conversation_id, wait)
            if time.monotonic() + wait > deadline:
                return _with(result, throttled, attempt, retry_after=max(wait, self._backoff_base))
            await asyncio.sleep(wait)

    async def _attempt(self, recipient: StoredReference, activities: Sequence[dict[str, Any] | Activity]) -> Result:
        try:
            await self._adapter.send_proactive(recipient.reference, activities)
        except ConnectorError as error:
            return await self._failed(recipient, error)
        except (aiohttp.ClientError, TimeoutError) as error:
            return Result(Outcome.FAILED, detail=f"{type(error).__name__}: {error}")
        except ServiceUrlNotAllowed as error:
            # Not transient: the stored address names a host the bot's token must not go to.
            return Result(Outcome.FAILED, detail=f"serviceUrl not allowed: {error}", permanent=True)
        return Result(Outcome.SENT, status=200)

    async def _failed(self, recipient: StoredReference, error: ConnectorError) -> Result:
        if error.status in _GONE_STATUSES:
            log.info(
                "recipient gone (%s %s) channel=%s conversation=%s: marked inactive",
                error.status, error.code, recipient.channel_id, recipient.conversation_id,
            )
            await self._references.mark_inactive(recipient, f"{error.status} {error.code}".strip())
            return Result(Outcome.GONE, error.status, str(error))
        if error.status == 429:
            return Result(Outcome.THROTTLED, 429, str(error), error.retry_after)
        return Result(Outcome.FAILED, error.status, str(error))


class _Latency:
    """A running, pessimistic estimate of how long a claim write takes.

    Generous on purpose: a claim that ends after its slot makes the send leave late, and a late
    send pushes back the slots of the sends a window later. An early claim only waits a little.
    """

    def __init__(self, initial: float = 0.05, floor: float = 0.05, cap: float = 0.3) -> None:
        self._mean = initial
        self._floor = floor
        self._cap = cap

    def observe(self, seconds: float) -> None:
        self._mean += 0.1 * (seconds - self._mean)

    @property
    def estimate(self) -> float:
        return min(self._cap, max(self._floor, 3 * self._mean))


def _with(result: Result, throttled: int, attempts: int, retry_after: float | None = None) -> Result:
    return dataclasses.replace(
        result,
        retry_after=retry_after if retry_after is not None else result.retry_after,
        throttled=throttled,
        attempts=attempts,
    )


def message(text: str, **extra: Any) -> dict[str, Any]:
    """A message activity as the Connector API takes it."""
    return {"type": "message", "text": text, **extra}
