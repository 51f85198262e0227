"""Delivery: putting one message in front of one stored recipient, and naming how it went.

Every send waits for the rate limiter and a concurrency slot. `send` makes one attempt;
`send_patiently` retries what is worth retrying (429 after its Retry-After, 412/5xx and network
errors after exponential backoff with jitter) until a deadline, and then reports when to try
again, so callers hand the work back to the queue instead of sleeping for minutes.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from ..channel.adapter import ChannelAdapter
from ..channel.connector import ConnectorError
from ..channel.service_urls import ServiceUrlNotAllowed
from ..references import ReferenceStore, StoredReference
from .outcome import Outcome, Result
from .rate_limits import RateLimiter
from .retries import GONE_STATUSES, NOTIFICATIONS, RetryPolicy

log = logging.getLogger(__name__)


# Runs just before the request (see `Delivery.send`); False: someone else has it, do not send.
ClaimHook = Callable[[], Awaitable[bool]]


class Claimant(Protocol):
    """Who records that a recipient's request is on the wire (see `Delivery.send_patiently`)."""

    async def claim(self) -> bool:
        """Right before a request: take the recipient; False if someone else has it."""

    async def release(self, failed: Result) -> None:
        """The request failed and will be tried again after a wait: give the recipient back."""


@dataclass(frozen=True)
class Edit:
    """Instead of activities: replace an activity the bot sent (PUT .../activities/{id})."""

    activity_id: str
    activity: Any


@dataclass(frozen=True)
class Recall:
    """Instead of activities: delete an activity the bot sent (DELETE .../activities/{id})."""

    activity_id: str


# What one request does: post new activities, or change one already sent. Paced, retried and
# reported alike: the channel's limits count every request (Teams: "all requests are subject to
# the same rate limiting policy").
Request = Sequence[Any] | Edit | Recall


class Delivery:
    def __init__(
        self,
        adapter: ChannelAdapter,
        references: ReferenceStore,
        limiter: RateLimiter,
        concurrency: int = 64,
        retries: RetryPolicy = NOTIFICATIONS,
    ) -> None:
        self._retries = retries  # paces send_patiently; how many attempts is the caller's policy
        self._adapter = adapter
        self._references = references
        self._limiter = limiter
        self._slots = asyncio.Semaphore(concurrency)
        self._claim_latency = _Latency()

    @property
    def slots(self) -> asyncio.Semaphore:
        """The bound on requests in flight (and waiting for the rate limiter), shared with other
        Connector requests that count in the same limits (teams.chats: chat creation). It also
        keeps the limiter's waiters few: each of them wakes at every slot."""
        return self._slots

    async def send(self, recipient: StoredReference, activities: Request, *, claim: ClaimHook | None = None) -> Result:
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
                    self._limiter.hand_back(permit)
                    return Result(Outcome.SKIPPED, attempts=0)
            await self._limiter.wait_for_slot(permit)
            return await self._attempt(recipient, activities)

    async def send_patiently(
        self,
        recipient: StoredReference,
        activities: Request,
        *,
        deadline: float,
        claimant: Claimant | None = None,
    ) -> Result:
        """Retry until sent, gone, not retryable, or the next try would pass `deadline` (monotonic).

        With a `claimant`, the recipient is claimed before each attempt and released before each
        wait (a Retry-After, a backoff), so it is held only while its request is in flight: a
        worker killed while waiting strands nobody, since a released recipient is anyone's to
        take. Every wait for a rate slot also happens before the claim (see `send`).
        """
        throttled = 0
        attempt = 0
        while True:
            attempt += 1
            result = await self.send(recipient, activities, claim=claimant.claim if claimant else None)
            if result.outcome is Outcome.SKIPPED:
                return _with(result, throttled, attempt - 1)
            throttled += result.outcome is Outcome.THROTTLED
            if not result.retryable:
                return _with(result, throttled, attempt)
            wait = self._retries.delay(attempt, result.retry_after)
            if time.monotonic() + wait > deadline:
                return _with(result, throttled, attempt, retry_after=max(wait, self._retries.first_delay))
            if claimant is not None:
                await claimant.release(result)
            await asyncio.sleep(wait)

    async def _attempt(self, recipient: StoredReference, activities: Request) -> Result:
        ids: list[str] = []
        try:
            if isinstance(activities, Edit):
                await self._adapter.update_activity(recipient.reference, activities.activity_id, activities.activity)
            elif isinstance(activities, Recall):
                await self._adapter.delete_activity(recipient.reference, activities.activity_id)
            else:
                ids = await self._adapter.send_proactive(recipient.reference, activities)
        except ConnectorError as error:
            if error.status == 429:
                # Every 429 tells the limiter, whoever sent (a patient notification, a reminder's
                # one attempt, a task's result): it widens the app's margin, and a Retry-After
                # holds the conversation for every other sender in this process.
                self._limiter.throttled(recipient.channel_id, recipient.conversation_id, error.retry_after)
            if isinstance(activities, (Edit, Recall)):
                return _changed_failed(error)
            return await self._failed(recipient, error)
        except (aiohttp.ClientError, TimeoutError) as error:
            return Result(Outcome.FAILED, detail=f"{type(error).__name__}: {error}")
        except ServiceUrlNotAllowed as error:
            # Not transient: the stored address names a host the bot's token must not go to.
            return Result(Outcome.FAILED, detail=f"serviceUrl not allowed: {error}", permanent=True)
        return Result(Outcome.SENT, status=200, activity_id=ids[-1] if ids else None)

    async def _failed(self, recipient: StoredReference, error: ConnectorError) -> Result:
        if error.status in GONE_STATUSES:
            log.info(
                "recipient gone (%s %s) channel=%s conversation=%s: marked inactive",
                error.status,
                error.code,
                recipient.channel_id,
                recipient.conversation_id,
            )
            await self._references.mark_inactive(recipient, f"{error.status} {error.code}".strip())
            return Result(Outcome.GONE, error.status, str(error))
        if error.status == 429:
            return Result(Outcome.THROTTLED, 429, str(error), error.retry_after)
        return Result(Outcome.FAILED, error.status, str(error))


def _changed_failed(error: ConnectorError) -> Result:
    """An edit or recall the channel refused. 404 names the activity, not the conversation: the
    address stays active (the message is gone already, or the conversation is, which the next
    send finds out). 405 is a channel that cannot change sent messages (Direct Line)."""
    if error.status in GONE_STATUSES:
        return Result(Outcome.GONE, error.status, str(error))
    if error.status == 429:
        return Result(Outcome.THROTTLED, 429, str(error), error.retry_after)
    return Result(Outcome.FAILED, 405 if error.status == 501 else error.status, str(error))  # i21 stand-in for i19conn


class _Latency:
    """A pessimistic estimate of how long a claim write takes: a high quantile of the recent ones.

    Generous on purpose: a claim that ends after its slot makes the send leave late, and a late
    send pushes back the send a window later, a slot lost for good. An early claim only waits a
    little. A quantile, not a multiple of the mean: claim times have a long tail when storage
    is busy (Azurite under a broadcast: median 18 ms, 99th percentile 135 ms; three times the
    mean left 9 % of the sends late).
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


def _with(result: Result, throttled: int, attempts: int, retry_after: float | None = None) -> Result:
    return dataclasses.replace(
        result,
        retry_after=retry_after if retry_after is not None else result.retry_after,
        throttled=throttled,
        attempts=attempts,
    )
