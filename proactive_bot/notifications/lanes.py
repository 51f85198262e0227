"""Which lane a notification is delivered in: the one policy every caller of a notification's
sends uses (deliveries, edits, recalls, channel posts, the status's `class`).

Urgent: one recipient (a user, a conversation, an Entra user, one Teams channel's post: a single
request each, so it can never crowd a budget), or any audience whose contract asks for
`priority: "high"`. Bulk: the walked audiences (everyone, a team's roster, a list of users).
"""

from __future__ import annotations

from ..delivery.lanes import Lane
from .contract import Notification, Priority


def lane_of(notification: Notification) -> Lane:
    if notification.priority is Priority.HIGH or not notification.is_broadcast:
        return Lane.URGENT
    return Lane.BULK


def class_of(notification: Notification) -> str:
    """The lane as the status names it: "urgent" or "bulk"."""
    return lane_of(notification).name.lower()
