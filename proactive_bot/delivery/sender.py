"""Delivery: putting one message in front of one stored recipient, and naming how it went.

Every send waits for the rate limiter and a concurrency slot. `send` makes one attempt;
`send_patiently` retries what is worth retrying (429 after its Retry-After, 412/5xx and network
errors after exponential backoff with jitter) until a deadline, and then reports when to try
again, so callers hand the work back to the queue instead of sleeping for minutes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import telemetry
from ..channel.activity import PreparedActivity
from ..channel.adapter import ChannelAdapter
from ..references import ReferenceStore, StoredReference
from .calls import Calls, Reply, patiently
from .calls import ClaimHook as ClaimHook
from .lanes import Lane
from .outcome import Outcome, Result
from .rate_limits import RateLimiter
from .retries import NOTIFICATIONS, RetryPolicy
from .slots import Slots

log = logging.getLogger(__name__)


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
    activity: dict[str, Any]


@dataclass(frozen=True)
class Recall:
    """Instead of activities: delete an activity the bot sent (DELETE .../activities/{id})."""

    activity_id: str


# What one request does: post new activities, or change one already sent. Paced, retried and
# reported alike: the channel's limits count every request (Teams: "all requests are subject to
# the same rate limiting policy").
Request = Sequence[dict[str, Any] | PreparedActivity] | Edit | Recall


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
        self._slots = Slots(concurrency)
        self._calls = Calls(limiter, self._slots)

    @property
    def slots(self) -> Slots:
        """The bound on requests in flight (and waiting for the rate limiter), shared with other
        Connector requests that count in the same limits (teams.chats: chat creation, channel
        posts; teams.roster: page reads). Bulk calls keep within a sub-bound, so an urgent one
        can always start waiting for its turn (delivery/slots.py)."""
        return self._slots

    @property
    def calls(self) -> Calls:
        """How this delivery makes its Connector calls (slots, limiter, claim timing): what
        every other caller of the Connector in the process should share."""
        return self._calls

    async def send(
        self,
        recipient: StoredReference,
        activities: Request,
        *,
        claim: ClaimHook | None = None,
        lane: Lane = Lane.BULK,
        retry: bool = False,
    ) -> Result:
        """One attempt, within the concurrency bound and the rate limits (see `Calls.make`).

        `claim` runs after the waiting and just before the request: whoever records "I am
        sending this" should do it as late as possible, so a crash leaves little unconfirmed.
        """
        change = isinstance(activities, (Edit, Recall))
        reply = await self._calls.make(
            recipient.channel_id,
            recipient.conversation_id,
            self._request(recipient, activities),
            claim=claim,
            change=change,
            lane=lane,
            tenant_id=recipient.tenant_id,
            retry=retry,
        )
        result = reply.result
        if result.outcome is Outcome.SENT:
            ids = reply.value or []
            return dataclasses.replace(result, activity_id=ids[-1] if ids else None)
        if result.outcome is Outcome.GONE and not change:
            # What "gone" means to a send: the user blocked the bot or the conversation no longer
            # exists, so the stored address is marked inactive and nothing is sent to it again.
            # To an edit or recall, 404 names the activity, not the conversation: the address
            # stays active (the message is gone already, or the conversation is, which the next
            # send finds out).
            log.info(
                "recipient gone (%s %s) channel=%s conversation=%s: marked inactive",
                result.status,
                result.code,
                recipient.channel_id,
                recipient.conversation_id,
            )
            await self._references.mark_inactive(recipient, f"{result.status} {result.code}".strip())
        return result

    async def send_patiently(
        self,
        recipient: StoredReference,
        activities: Request,
        *,
        deadline: float,
        claimant: Claimant | None = None,
        lane: Lane = Lane.BULK,
    ) -> Result:
        """Retry until sent, gone, not retryable, or the next try would pass `deadline` (monotonic).

        With a `claimant`, the recipient is claimed before each attempt and released before each
        wait (a Retry-After, a backoff), so it is held only while its request is in flight: a
        worker killed while waiting strands nobody, since a released recipient is anyone's to
        take. Every wait for a rate slot also happens before the claim (see `send`).
        """

        async def attempt(number: int) -> Reply[None]:
            claim = claimant.claim if claimant else None
            return Reply(await self.send(recipient, activities, claim=claim, lane=lane, retry=number > 1))

        release = claimant.release if claimant is not None else None
        started = time.monotonic()
        reply = await patiently(attempt, self._retries, deadline=deadline, release=release)
        _delivered(recipient, activities, reply.result, time.monotonic() - started)
        return reply.result

    def _request(self, recipient: StoredReference, activities: Request) -> Callable[[], Awaitable[list[str] | None]]:
        """The Connector call a request makes (POST, PUT or DELETE .../activities)."""
        reference = recipient.reference
        if isinstance(activities, Edit):
            edit = activities

            async def update() -> None:
                await self._adapter.update_activity(reference, edit.activity_id, edit.activity)

            return update
        if isinstance(activities, Recall):
            recall = activities

            async def delete() -> None:
                await self._adapter.delete_activity(reference, recall.activity_id)

            return delete
        posted = activities

        async def post() -> list[str]:
            return await self._adapter.send_proactive(reference, posted)

        return post


def _delivered(recipient: StoredReference, activities: Request, result: Result, seconds: float) -> None:
    """A delivery's end, for the metrics (telemetry/): its outcome and, failing, why."""
    if result.outcome is Outcome.SKIPPED or not telemetry.enabled():
        return  # nothing was sent by this sender: the claim went elsewhere
    names = telemetry.names
    kind = type(activities).__name__.lower() if isinstance(activities, Edit | Recall) else "send"
    attributes = {names.CHANNEL: recipient.channel_id, names.OUTCOME: result.outcome.value, names.DELIVERY_KIND: kind}
    if result.outcome is not Outcome.SENT:
        # The channel's code if it named one, else its status, else what kind of error it was.
        attributes[names.REASON] = result.code or str(result.status or "") or result.detail.split(":")[0] or "unknown"
    telemetry.count(telemetry.Metric.DELIVERIES, 1, attributes)
    telemetry.record(telemetry.Metric.DELIVERY_DURATION, seconds, attributes)
