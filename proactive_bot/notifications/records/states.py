"""The states of a notification and of each recipient's row, and the verdicts taken on them.

Pure: no I/O. The store (store.py) reads and writes rows; what a row's state means, what a
claim finds and what a delivery's result leads to are decided here.

The per-recipient rows are what make a redelivered queue message harmless: a sender claims a
recipient's row (an insert that fails if the row exists) right before sending, so a recipient
with a row is never sent the same notification again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from ...delivery.outcome import Outcome, Result
from ...delivery.retries import NOTIFICATIONS
from .keys import Recipient

# A "sending" row older than this belongs to a sender that died mid-send.
SEND_LEASE = timedelta(minutes=2)


class RecipientState(enum.Enum):
    """A recipient's row. The value is what the table stores; `public` is what the status says."""

    SENDING = "sending"  # claimed: its request is (or was, if its sender died) on the way
    SENT = "sent"
    GONE = "gone"  # 403/404, or the address was already inactive
    FAILED = "failed"  # given up
    OPTED_OUT = "skipped"  # the recipient opted out (stored and reported as "skipped")
    UNCONFIRMED = "unconfirmed"  # its sender died mid-send: it may or may not have arrived
    RETRY = "retry"  # this delivery ran out of time; a later one takes it back
    CANCELLED = "cancelled"  # never sent: the notification was cancelled first
    EXPIRED = "expired"  # never sent: not reached before expiresAt
    RECALLED = "recalled"  # sent, then deleted from its conversation

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def public(self) -> str:
        return "retrying" if self is RecipientState.RETRY else self.value


_FINAL = frozenset(
    {
        RecipientState.SENT,
        RecipientState.GONE,
        RecipientState.FAILED,
        RecipientState.OPTED_OUT,
        RecipientState.UNCONFIRMED,
        RecipientState.CANCELLED,
        RecipientState.EXPIRED,
        RecipientState.RECALLED,
    }
)


class NotificationState(enum.Enum):
    SCHEDULED = "scheduled"  # waits for its notBefore
    ACCEPTED = "accepted"  # recorded, nobody found yet
    DELIVERING = "delivering"
    DONE = "done"  # every recipient known and settled
    CANCELLED = "cancelled"  # DELETE: the rest never sent, the reached recalled


class ChangeFailure(enum.Enum):
    """How the last edit or recall of a sent row ended, when it did not take."""

    UNSUPPORTED = "unsupported"  # the channel cannot change sent messages (405): never retried
    FAILED = "failed"  # given up after the retry policy


class Verdict(enum.Enum):
    """What a claim found."""

    CLAIMED = "claimed"  # ours to send
    DONE = "done"  # settled: never send again
    BUSY = "busy"  # held by another sender (or vanished meanwhile): look again later


class Found(enum.Enum):
    """What a claim does with a recipient's row that already exists (`on_existing_row`)."""

    DONE = "done"  # settled: Verdict.DONE
    BUSY = "busy"  # being sent, its lease running: Verdict.BUSY
    UNCONFIRMED = "unconfirmed"  # its sender died mid-send: settle it unconfirmed, never resend
    RETAKE = "retake"  # RETRY: take it back, counts kept
    RESEND = "resend"  # its sender died mid-send and the producer asked for onCrash "resend"


def on_existing_row(
    state: RecipientState, lease_until: datetime | None, now: datetime, *, resend_on_crash: bool
) -> Found:
    """The claim's verdict on a row that is already there."""
    if state.final:
        return Found.DONE
    if state is RecipientState.SENDING and lease_until is not None and lease_until > now:
        return Found.BUSY
    if state is RecipientState.SENDING:
        # Its sender died after claiming: the message may or may not have left. It is not sent
        # again (a duplicate is what the records exist to prevent) unless the producer said so.
        return Found.RESEND if resend_on_crash else Found.UNCONFIRMED
    return Found.RETAKE


def as_seen(state: RecipientState, lease_until: datetime | None, now: datetime) -> RecipientState:
    """A row's state as the status reports it: a `sending` row past its lease belongs to a
    sender that died mid-send, so it is unconfirmed (as a claim would find it)."""
    if state is RecipientState.SENDING and lease_until is not None and lease_until <= now:
        return RecipientState.UNCONFIRMED
    return state


@dataclass(frozen=True)
class Claim:
    """Whether a recipient can be sent to now, and what earlier deliveries already tried."""

    verdict: Verdict
    attempts: int = 0
    throttled: int = 0
    resends: int = 0  # times the recipient was handed out again after an unconfirmed send
    claimed_at: datetime | None = None


@dataclass(frozen=True)
class Settled:
    """How one delivery ended, as its row records it."""

    recipient: Recipient
    state: RecipientState
    attempts: int = 0
    throttled: int = 0
    status: int | None = None
    detail: str = ""
    resends: int = 0
    claimed_at: datetime | None = None  # of the last attempt
    activity_id: str | None = None  # SENT: the channel's id of what it shows
    version: int = 0  # SENT: the content version sent
    chat_created: bool = False  # the bot created the recipient's 1:1 chat for this notification
    conversation: str = ""  # where it went, if not the recipient's own (a created chat or thread)


def settled(recipient: Recipient, claim: Claim, result: Result, *, whole_run: bool = False) -> Settled:
    """The row a delivery result leads to; whether to try again is the notifications' retry
    policy (delivery.retries.NOTIFICATIONS).

    Attempts are counted from the claim: by default `result` is the one attempt made under it
    (earlier ones were given back with their counts, see fanout's claimant); `whole_run`: every
    attempt `result` reports was made under this one claim."""
    # An attempt made while the channel was down is not the recipient's (delivery/retries.py).
    attempts = claim.attempts + (result.attempts if whole_run else int(not result.channel_down))
    if result.outcome is Outcome.SENT:
        state = RecipientState.SENT
    elif result.outcome is Outcome.GONE:
        state = RecipientState.GONE
    elif result.retryable and (result.channel_down or not NOTIFICATIONS.exhausted(attempts)):
        state = RecipientState.RETRY
    else:
        state = RecipientState.FAILED
    throttled = claim.throttled + (result.throttled if whole_run else result.outcome is Outcome.THROTTLED)
    return Settled(
        recipient,
        state,
        attempts,
        throttled,
        result.status,
        result.detail,
        claim.resends,
        claim.claimed_at,
        activity_id=result.activity_id,
    )
