"""The HTTP front door and its queue, driven as the Functions host would (tests/functions)."""

from __future__ import annotations

import json

from tests.functions import invoke


async def enqueue_notification(app, document: dict) -> None:
    """Put a notification on the queue, as another system would (the contract's other door)."""
    await app.notifications_queue.send_message(json.dumps(document))


async def run_notifications_queue(app) -> None:
    """Play the Functions host: hand what the front door enqueued to queue_notify."""
    async for message in app.notifications_queue.receive_messages(max_messages=32):
        await invoke.queue("queue_notify", message.content.encode(), dequeue_count=message.dequeue_count)
        await app.notifications_queue.delete_message(message)


async def get_status(notification_id: str, detail: bool = False):
    return await invoke.http(
        "notifications_api",
        method="GET",
        route_params={"id": notification_id},
        params={"detail": "true"} if detail else None,
    )
