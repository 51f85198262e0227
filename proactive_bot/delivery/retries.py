"""When a failed send is tried again, and when it is given up: the policy, in one place.

Which answers are worth another try is the channel's matter and the same for all work: 429
(throttled), 412 and 5xx, and network errors; 403/404 mean the recipient is gone; 405/501 to an
edit or recall mean the channel cannot change sent messages.

How patiently to try differs by kind of work, because each waits in a different place:

- `NOTIFICATIONS`: retried inside the invocation (seconds, full jitter, so that many senders do
  not retry in step), then handed back to the work queue with a delay; given up after 8 attempts
  across deliveries. A notification is usually one of many sends, and the queue is cheap.
- `REMINDERS`: one attempt per timer run, so the delays are in minutes (2, 4, 8, 16) and the
  minute-grained timer could not honour less; given up after 5, since a reminder's moment
  passes (a recurring series goes on with its next occurrence).
- `ROSTERS`: a team roster page the channel failed to serve (5xx, 412, network) is read again
  from the work queue after 5 s, doubling to 5 minutes; after 8 failed reads in a row the
  roster is failed (what was read stands) rather than tried forever, since notifications to the
  team wait for the walk. A 429 is not a failure: its Retry-After is honoured and not counted.
- A channel outage (most requests answered 5xx, refused or timed out for a while, or our
  token endpoint unreachable) is nobody's failure: `OUTAGE` says when a scope's channel counts
  as down (delivery/health.py), and while it is, (1) its pace drops to a few probes a second
  (the limiter applies it: no hammering a down channel at the full pace; the first answer
  brings the full pace back), and (2) the attempts that fail meanwhile are not counted against
  their recipients (`Result.channel_down`), so a minute-long outage ends with everyone
  delivered instead of everyone failed after 8 quick attempts. Chosen over a time budget per
  recipient: the attempt count stays the measure of a recipient's own failures (one that
  fails while others succeed is still `failed` after 8), it needs no new field in the
  records, and the probes bound the requests however long the outage lasts (a notification's
  expiry ends it). A failed token fetch is always `channel_down`: it says nothing of the
  recipient, and no request was made.
- Long tasks have no policy of their own: a result that cannot be delivered fails the
  invocation, and the queue retries it (host.json: 5 deliveries, 30 s apart, then the poison
  queue), which is what a whole task re-run should be paced by.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

RETRY_STATUSES = frozenset({412, 429, 500, 502, 503, 504})
GONE_STATUSES = frozenset({403, 404})
# An edit or recall answered so: the channel cannot change sent messages (Direct Line: 405;
# Microsoft's Teams emulator: 501 DeleteActivityAPINotImplemented). Never retried.
UNSUPPORTED_STATUSES = frozenset({405, 501})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    first_delay: float  # seconds after the first failed attempt
    max_delay: float
    jitter: bool = False  # full jitter: a random delay up to the backoff

    def exhausted(self, attempts: int) -> bool:
        """No attempt after this many."""
        return attempts >= self.max_attempts

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 1): exponential backoff,
        and never sooner than the channel's Retry-After."""
        backoff = min(self.max_delay, self.first_delay * 2.0 ** max(0, attempt - 1))
        if self.jitter:
            backoff = random.uniform(0, backoff)
        return backoff if retry_after is None else max(retry_after, backoff)


@dataclass(frozen=True)
class OutagePolicy:
    """When a budget scope's channel counts as down, and how hard it is probed meanwhile."""

    window: float = 5.0  # seconds of answers looked at
    min_failures: int = 10  # fewer failures than this in the window is a recipient's, not an outage
    failing_ratio: float = 0.5  # of the answers in the window: most of them
    probe_rate: int = 2  # requests per second in the scope while it is down


NOTIFICATIONS = RetryPolicy(max_attempts=8, first_delay=0.5, max_delay=30.0, jitter=True)
REMINDERS = RetryPolicy(max_attempts=5, first_delay=120.0, max_delay=3600.0)
ROSTERS = RetryPolicy(max_attempts=8, first_delay=5.0, max_delay=300.0)
OUTAGE = OutagePolicy()
