"""Delivery: one message to one stored recipient, paced and retried.

- `Delivery` (sender): one attempt (`send`) or patient attempts (`send_patiently`); `Edit` and
  `Recall` instead of activities change one already sent, paced and retried alike.
- `Calls`, `Reply`, `classify`, `patiently` (calls): the one way to make a Connector call
  (paced, made, its answer classified) and the one patient-retry loop.
- `Outcome`, `Result` (outcome): how a send went.
- `RateLimiter`, `LimitsConfig`, `ChannelLimits` (rate_limits): per conversation, channel, app.
- `Lane` (lanes): which waiting calls go first (interactive, urgent, bulk).
- `RetryPolicy`, `NOTIFICATIONS`, `REMINDERS` (retries): when to try again, when to stop.
"""

from ..lazy import exports

_NAMES = {
    "Delivery": "sender",
    "ClaimHook": "calls",
    "Claimant": "sender",
    "Calls": "calls",
    "Reply": "calls",
    "classify": "calls",
    "patiently": "calls",
    "Edit": "sender",
    "Recall": "sender",
    "Outcome": "outcome",
    "Result": "outcome",
    "RateLimiter": "rate_limits",
    "LimitsConfig": "rate_limits",
    "ChannelLimits": "rate_limits",
    "Lane": "lanes",
    "RetryPolicy": "retries",
    "NOTIFICATIONS": "retries",
    "REMINDERS": "retries",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
