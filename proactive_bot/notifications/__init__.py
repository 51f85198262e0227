"""Notifications: what other systems ask the bot to deliver, and what became of it.

- `Notification`, `parse_queue_message`, `validate`, `InvalidNotification` (contract, with
  schemas/): the queue and HTTP contract.
- `audience_of` and the `To*` shapes (audience): a notification's `to`, typed.
- `NotificationStore`, `RecipientState`, `NotificationState`, `Status` (records/): each
  notification's record and one row per recipient (keys, states, rows, store, status).
- `Fanout` (fanout): intake, the start of scheduled ones, resend; `AudienceWalk` (walk): a
  broadcast's audience page by page into batches; `Deliveries` (batch): a batch's claims and sends.
- `TeamsChannelPosts` (posts): teamChannel notifications, a thread or a reply in one.
- `compose`, `Notifications` (compose): the parts wired, with the work queue's dispatch table.
  The work messages themselves and their queue are `proactive_bot.work`.
- `Timetable` (timetable): notBefore's due-minute rows, handed out by the timer.
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
    "audience_of": "audience",
    "Fanout": "fanout",
    "AudienceWalk": "walk",
    "Deliveries": "batch",
    "compose": "compose",
    "Notifications": "compose",
    "TeamsChannelPosts": "posts",
    "Timetable": "timetable",
    "Lifecycle": "lifecycle",
    "ReadReceipts": "receipts",
    "READ_RECEIPT": "receipts",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
