"""Delivery: one message to one stored recipient, paced and retried.

- `Delivery` (sender): one attempt (`send`) or patient attempts (`send_patiently`); `Edit` and
  `Recall` instead of activities change one already sent, paced and retried alike.
- `Calls`, `Reply`, `classify`, `patiently` (calls): the one way to make a Connector call
  (paced, made, its answer classified) and the one patient-retry loop.
- `Outcome`, `Result` (outcome): how a send went.
- `RateLimiter` (rate_limits): per conversation, channel, budget scope and app; its `LimitsConfig`,
  `ChannelLimits` (limits); the line of waiting calls per scope (line).
- `Lane` (lanes): which waiting calls go first (interactive, urgent, bulk); `scope_of` (scopes):
  the budget a call counts in (a Teams tenant, another channel).
- `SharedBudget` (budget): the scopes' ceilings shared by the app's instances; its rows (budget_table).
- `TurnReplies` (replies): a turn's replies take their slot in the interactive lane.
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
    "LimitsConfig": "limits",
    "ChannelLimits": "limits",
    "Lane": "lanes",
    "scope_of": "scopes",
    "SharedBudget": "budget",
    "TurnReplies": "replies",
    "RetryPolicy": "retries",
    "NOTIFICATIONS": "retries",
    "REMINDERS": "retries",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
