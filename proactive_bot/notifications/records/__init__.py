"""Notification records: what became of each notification, recipient by recipient.

- keys: where each row lives (the key scheme, the shards).
- states: the recipient and notification states, a claim's verdicts, a result's row (pure).
- rows: the typed rows read back (Header, RecipientRow, SentRow).
- store: `NotificationStore`, the I/O, every write a named operation.
- status: the counts (pure arithmetic over rows).
- counting: the status read, and the counts kept beside the record for views (`Counted`).
"""

from .counting import Counted
from .keys import (
    AUDIENCE_ROW_IDS,
    SHARDS,
    Recipient,
    conversation_key,
    conversation_shard,
    recipient_key,
    row_address,
    shard_of,
    shard_partition,
)
from .rows import Header, RecipientRow, SentRow
from .states import (
    SEND_LEASE,
    ChangeFailure,
    Claim,
    NotificationState,
    RecipientState,
    Settled,
    Verdict,
    settled,
)
from .status import Status, tally
from .store import NotificationStore

__all__ = [
    "AUDIENCE_ROW_IDS",
    "SEND_LEASE",
    "SHARDS",
    "ChangeFailure",
    "Claim",
    "Counted",
    "Header",
    "NotificationState",
    "NotificationStore",
    "Recipient",
    "RecipientRow",
    "RecipientState",
    "SentRow",
    "Settled",
    "Status",
    "Verdict",
    "conversation_key",
    "conversation_shard",
    "recipient_key",
    "row_address",
    "settled",
    "shard_of",
    "shard_partition",
    "tally",
]
