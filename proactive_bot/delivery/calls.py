"""One way to make a Connector call: paced, made, and its answer classified; and one retry loop.

Every request the bot makes to the Connector API counts in the channel's limits, whatever it
is (Teams: "all requests are subject to the same rate limiting policy"; roster reads count in
the app's limit as sends do). So sends, edits, recalls, chat creates, channel posts and roster
page reads all go through `Calls.make`:

1. a concurrency slot (`Delivery.slots`, shared by every caller in the process; bulk calls
   from their budget scope's own pool, delivery/slots.py);
2. the rate limiter's permit for the conversation, in its scope's line by lane;
3. the caller's claim, if it has one, written while the slot approaches (or, if the claim went
   elsewhere, the permit handed back and nothing sent);
4. the request, and `classify` of what came back into a `Result`.

`Calls.make` is the only place that tells the limiter about a 429: it widens the margin of the
scope's pace (that tenant's, for Teams), and a Retry-After holds the conversation for every other sender in this process.

What "gone" (403/404) means is each caller's to say, and each says it where it reads the
`Result`: a send marks the stored address inactive (delivery/sender.py), a chat create fails
the user as not installed or not found (teams/chats.py), a roster read fails the walk
(teams/roster.py), an edit, a recall and a channel post only report it.

`patiently` is the one loop that tries again what is worth it, until a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiohttp

from .. import telemetry
from ..channel.connector import ConnectorError
from ..channel.service_urls import ServiceUrlNotAllowed
from ..telemetry import names
from .health import Health
from .lanes import Lane
from .outcome import Outcome, Result
from .rate_limits import RateLimiter
from .retries import GONE_STATUSES, UNSUPPORTED_STATUSES, RetryPolicy
from .scopes import scope_of
from .slots import Slots

T = TypeVar("T")

# Runs just before the request (see `Calls.make`); False: someone else has it, do not send.
ClaimHook = Callable[[], Awaitable[bool]]

# What a failed token fetch is told as (channel/connector.py): a send that never left.
TOKEN_FAILED = "TokenRequestFailed"

# What a call can fail with that is the channel's (or the network's) answer, not a bug of ours.
CALL_ERRORS = (ConnectorError, aiohttp.ClientError, TimeoutError, ServiceUrlNotAllowed)


@dataclass(frozen=True)
class Reply(Generic[T]):
    """A call's `Result`, and what the channel answered when it succeeded (`value`)."""

    result: Result
    value: T | None = None


def classify(error: BaseException, *, change: bool = False) -> Result:
    """What a failed call means, the same for every caller. `change`: the call edited or
    deleted an activity the bot sent, where 405 and 501 mean the channel cannot do that."""
    if isinstance(error, ConnectorError):
        result = classify_status(error.status, str(error), error.retry_after, change=change)
        if error.code == TOKEN_FAILED and result.retryable:
            # No token, so no request: whatever the reason, it is not the recipient's failure.
            return dataclasses.replace(result, code=error.code, channel_down=True)
        return dataclasses.replace(result, code=error.code) if error.code else result
    if isinstance(error, ServiceUrlNotAllowed):
        # Not transient: the stored address names a host the bot's token must not go to.
        return Result(Outcome.FAILED, detail=f"serviceUrl not allowed: {error}", permanent=True)
    return Result(Outcome.FAILED, detail=f"{type(error).__name__}: {error}")  # network, timeout


def channel_failure(result: Result) -> bool:
    """The channel (or the network to it, or our token endpoint) did not answer: a retryable
    5xx, a refused or timed-out connection, no token. A 4xx (429 included) is an answer."""
    return (
        result.outcome is Outcome.FAILED
        and result.retryable
        and (result.status is None or result.status >= 500 or result.channel_down)
    )


def classify_status(status: int, detail: str, retry_after: float | None = None, *, change: bool = False) -> Result:
    """A channel's error status (and its reason, `detail`) as a `Result`; whether another try
    makes sense follows from it (`Result.retryable`, delivery/retries.py)."""
    if status == 429:
        return Result(Outcome.THROTTLED, 429, detail, retry_after)
    if status in GONE_STATUSES:
        return Result(Outcome.GONE, status, detail)
    if change and status in UNSUPPORTED_STATUSES:
        return Result(Outcome.FAILED, status, detail, permanent=True, unsupported=True)
    return Result(Outcome.FAILED, status, detail)


class Calls:
    """Makes Connector calls within the process's bound on requests in flight and its rate limits."""

    def __init__(self, limiter: RateLimiter, slots: asyncio.Semaphore | None = None) -> None:
        self._limiter = limiter
        self._slots = slots  # None: no bound of its own (the caller is paced by the limiter only)
        self._claim_latency = _Latency()

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    @property
    def slots(self) -> asyncio.Semaphore | None:
        return self._slots

    async def make(
        self,
        channel_id: str,
        conversation_id: str,
        request: Callable[[], Awaitable[T]],
        *,
        claim: ClaimHook | None = None,
        lead: float | None = None,
        change: bool = False,
        lane: Lane = Lane.BULK,
        tenant_id: str = "",
        retry: bool = False,
    ) -> Reply[T]:
        """One call of `request` to the conversation (the limiter's key), paced and classified.

        `claim` runs after the waiting and just before the request, `lead` seconds (default: a
        high quantile of recent claim writes) before the rate slot: whoever records "I am
        sending this" should do it as late as possible, so a crash leaves little unconfirmed,
        and early enough that the request still leaves on time. `lane` orders the call among
        those waiting (delivery/lanes.py); `tenant_id` names the budget it counts in (Teams
        counts every request per app per tenant); a `retry` goes first in its lane.
        """
        request = _observed(request, channel_id, lane, change)  # its span and metrics (telemetry/)
        async with self._slot(lane, scope_of(channel_id, tenant_id)):
            early = 0.0 if claim is None else (self._claim_latency.estimate if lead is None else lead)
            permit = await self._limiter.acquire(
                channel_id, conversation_id, lead=early, lane=lane, tenant_id=tenant_id, retry=retry
            )
            if claim is not None:
                started = time.monotonic()
                claimed = await claim()
                if lead is None:
                    self._claim_latency.observe(time.monotonic() - started)
                if not claimed:
                    self._limiter.hand_back(permit)
                    return Reply(Result(Outcome.SKIPPED, attempts=0))
            await self._limiter.wait_for_slot(permit)
            try:
                value = await request()
            except CALL_ERRORS as error:
                result = classify(error, change=change)
                if result.outcome is Outcome.THROTTLED:
                    self._limiter.throttled(channel_id, conversation_id, result.retry_after, tenant_id=tenant_id)
                return Reply(self._heard(channel_id, tenant_id, result))
            self._limiter.health.answered(scope_of(channel_id, tenant_id), ok=True)
            return Reply(Result(Outcome.SENT, 200), value)

    def _heard(self, channel_id: str, tenant_id: str, result: Result) -> Result:
        """Tell the scope's health how a failed call went; while the channel is down (or was
        never asked: no token), the failure is not the recipient's (delivery/retries.py)."""
        scope = scope_of(channel_id, tenant_id)
        unanswered = channel_failure(result)
        health = self._limiter.health.answered(scope, ok=not unanswered)
        if result.channel_down or (unanswered and health is Health.DOWN):
            return dataclasses.replace(result, channel_down=True)
        return result

    def _slot(self, lane: Lane, scope: str) -> contextlib.AbstractAsyncContextManager[object]:
        if isinstance(self._slots, Slots):
            return self._slots.hold(lane, scope)
        # A plain semaphore (a caller's own bound) knows no lanes.
        return self._slots if self._slots is not None else contextlib.nullcontext()


async def patiently(
    attempt: Callable[[int], Awaitable[Reply[T]]],
    retries: RetryPolicy,
    *,
    deadline: float,
    release: Callable[[Result], Awaitable[None]] | None = None,
    bounded: bool = False,
) -> Reply[T]:
    """Call `attempt(n)` (n from 1) until it is not worth another, or the next would start past
    `deadline` (monotonic): then the Result says when to try again (`retry_after`), so the
    caller hands the work back to its queue instead of sleeping for minutes.

    `release` runs before each wait (a claimant gives its recipient back, so nothing is held
    while nothing is in flight). `bounded`: also stop after `retries.max_attempts` (otherwise
    how many attempts is the caller's policy, counted across its deliveries). The Result
    counts the attempts made (a SKIPPED one is not counted) and the 429s met.
    """
    throttled = attempts = 0
    while True:
        attempts += 1
        counting = telemetry.ATTEMPT.set(attempts)  # the Connector call's span says which attempt it is
        reply = await attempt(attempts)
        telemetry.ATTEMPT.reset(counting)
        result = reply.result
        if result.outcome is Outcome.SKIPPED:
            return dataclasses.replace(reply, result=_counted(result, throttled, attempts - 1))
        throttled += result.outcome is Outcome.THROTTLED
        if not result.retryable:
            return dataclasses.replace(reply, result=_counted(result, throttled, attempts))
        wait = retries.delay(attempts, result.retry_after)
        if time.monotonic() + wait > deadline or (bounded and retries.exhausted(attempts)):
            later = max(wait, retries.first_delay)
            return dataclasses.replace(reply, result=_counted(result, throttled, attempts, retry_after=later))
        if release is not None:
            await release(result)
        await asyncio.sleep(wait)


def _counted(result: Result, throttled: int, attempts: int, retry_after: float | None = None) -> Result:
    return dataclasses.replace(
        result,
        retry_after=retry_after if retry_after is not None else result.retry_after,
        throttled=throttled,
        attempts=attempts,
    )


def _observed(
    request: Callable[[], Awaitable[T]], channel_id: str, lane: Lane, change: bool
) -> Callable[[], Awaitable[T]]:
    """`request` in a span with its answer (status, retry-after, attempt), counted and timed;
    `request` itself while telemetry is off."""
    if not telemetry.enabled():
        return request
    made = time.monotonic()

    async def call() -> T:
        attributes: telemetry.Attributes = {
            names.CHANNEL: channel_id,
            names.LANE: lane.name.lower(),
            names.CHANGE: change,
        }
        with telemetry.span(telemetry.SpanName.CONNECTOR_CALL, attributes) as span:
            started = time.monotonic()
            span.set(names.ATTEMPT, telemetry.ATTEMPT.get())
            span.set(names.WAITED, started - made)  # for a slot, the rate limits and the claim
            try:
                value = await request()
            except CALL_ERRORS as error:
                _answered(span, attributes, classify(error, change=change), started)
                raise
            _answered(span, attributes, Result(Outcome.SENT, 200), started)
            return value

    return call


def _answered(span: telemetry.Span, attributes: telemetry.Attributes, result: Result, started: float) -> None:
    span.set(names.OUTCOME, result.outcome.value)
    if result.status is not None:
        span.set(names.STATUS, result.status)
    if result.retry_after is not None:
        span.set(names.RETRY_AFTER, result.retry_after)
    if result.code:
        span.set(names.ERROR, result.code)
    counted = {**attributes, names.OUTCOME: result.outcome.value, names.STATUS: result.status or 0}
    telemetry.count(telemetry.Metric.CONNECTOR_CALLS, 1, counted)
    telemetry.record(telemetry.Metric.CONNECTOR_DURATION, time.monotonic() - started, counted)


class _Latency:
    """A pessimistic estimate of how long a claim write takes: a high quantile of the recent ones.

    Generous on purpose: a claim that ends after its slot makes the send leave late, and a late
    send pushes back the send a window later, a slot lost for good. An early claim only waits a
    little. A quantile, not a multiple of the mean: claim times have a long tail when storage
    is busy (a multiple of the mean left many sends late in the broadcast benchmark).
    """

    def __init__(
        self, initial: float = 0.05, floor: float = 0.05, cap: float = 0.3, quantile: float = 0.995, recent: int = 256
    ) -> None:
        self._seen: collections.deque[float] = collections.deque(maxlen=recent)
        self._quantile = quantile
        self._floor = floor
        self._cap = cap
        self.estimate = initial
        self._fresh = 0

    def observe(self, seconds: float) -> None:
        self._seen.append(seconds)
        self._fresh += 1
        if self._fresh >= 16:  # sorting a few hundred floats every 16 claims, not every one
            self._fresh = 0
            ordered = sorted(self._seen)
            high = ordered[min(len(ordered) - 1, int(self._quantile * len(ordered)))]
            self.estimate = min(self._cap, max(self._floor, high))
