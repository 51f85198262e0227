"""Notifications: what other systems ask the bot to deliver, and what became of it.

- `Notification`, `parse_queue_message`, `validate`, `InvalidNotification` (contract, with
  schemas/): the queue and HTTP contract.
- `NotificationStore`, `RecipientState`, `NotificationState`, `Status` (records): each
  notification's record and one row per recipient.
- `Fanout`, `WorkQueue`, `InvalidWork` (fanout): a notification → pages → batches → deliveries.
- `ChannelPosts` (posts): teamChannel notifications, a thread or a reply in one.
- `Schedule` (schedule): notBefore's due-minute rows, released by the timer.
- `Lifecycle` (lifecycle): DELETE (cancel, recall) and PATCH (edit) after acceptance.
- `ReadReceipts`, `READ_RECEIPT` (receipts): which deliveries their users have read.
"""

from ..lazy import exports

_NAMES = {
    "Notification": "contract",
    "parse_queue_message": "contract",
    "validate": "contract",
    "InvalidNotification": "contract",
    "NotificationStore": "records",
    "RecipientState": "records",
    "NotificationState": "records",
    "Status": "records",
    "Fanout": "fanout",
    "WorkQueue": "fanout",
    "InvalidWork": "fanout",
    "ChannelPosts": "posts",
    "Schedule": "schedule",
    "Lifecycle": "lifecycle",
    "ReadReceipts": "receipts",
    "READ_RECEIPT": "receipts",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
