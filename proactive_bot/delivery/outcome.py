"""How one send went: `Outcome` and the `Result` that carries it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .retries import RETRY_STATUSES


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
    activity_id: str | None = None  # what the channel named the sent activity (SENT only)
    code: str = ""  # the channel's error code, if it named one (ConversationBlockedByUser ...)
    unsupported: bool = False  # an edit or recall the channel cannot make (405, 501): never retried
    # The channel was down (or our token could not be fetched): not the recipient's failure, so
    # not counted against its attempts (delivery/retries.py, delivery/health.py).
    channel_down: bool = False

    @property
    def retryable(self) -> bool:
        return not self.permanent and (
            self.outcome is Outcome.THROTTLED
            or (self.outcome is Outcome.FAILED and (self.status is None or self.status in RETRY_STATUSES))
        )
