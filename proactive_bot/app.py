"""What the Functions call: one coroutine per trigger, free of any Functions types.

The function folders turn trigger input into these arguments and the results into trigger
output; everything else (clients, the turn, delivery) is behind this module.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import clients, clock, notifications, reminder_timer, tasks
from .channel import AuthenticationError, InvalidActivity

log = logging.getLogger(__name__)

MAX_ACTIVITY_BYTES = 512 * 1024


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: Any = None  # JSON-serializable, or None for an empty body

    def json_body(self) -> str | None:
        return None if self.body is None else json.dumps(self.body)


def _error(status: int, message: str) -> HttpResult:
    return HttpResult(status, {"error": {"message": message}})


async def receive_activity(body: bytes, auth_header: str | None) -> HttpResult:
    """POST /api/messages: authenticate, run the turn, answer the channel."""
    if len(body) > MAX_ACTIVITY_BYTES:
        return _error(413, f"activity larger than {MAX_ACTIVITY_BYTES} bytes")
    try:
        activity = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "the body is not JSON")
    app = await clients.get()
    try:
        invoke = await app.adapter.run_turn(activity, auth_header or "", app.bot.on_turn)
    except InvalidActivity as error:
        return _error(400, str(error))
    except AuthenticationError as error:
        log.warning("rejected an unauthenticated request to /api/messages (%s)", error)
        return _error(401, "unauthorized")
    if invoke is not None:
        return HttpResult(invoke.status, invoke.body)
    return HttpResult(200)


async def send_due_reminders(now: datetime | None = None) -> reminder_timer.RunSummary:
    """Timer: send what is due."""
    app = await clients.get()
    summary = await reminder_timer.send_due(
        app.reminders, app.references, app.delivery, now or clock.now()
    )
    log.info("timer run: %s", summary)
    return summary


@dataclass(frozen=True)
class QueueResult:
    poison_reason: str | None = None
    summary: notifications.Summary | None = None


async def process_notification(body: bytes, message_id: str = "") -> QueueResult:
    """Queue: deliver one notification. A malformed one is returned for the poison queue.

    Raises `DeliveryIncomplete` when recipients could not be reached now, so the queue
    delivers the message again later.
    """
    try:
        notification = notifications.decode(body)
    except notifications.InvalidNotification as error:
        log.error("queue message %s is malformed, moved to the poison queue: %s", message_id, error)
        return QueueResult(poison_reason=str(error))
    app = await clients.get()
    summary = await notifications.deliver(notification, app.references, app.delivery)
    log.info("notification %s (queue message %s): %s", notification.id, message_id, summary)
    if summary.failed:
        raise notifications.DeliveryIncomplete(f"{summary.failed} recipient(s) not reached")
    return QueueResult(summary=summary)


async def run_task(body: bytes, message_id: str = "") -> QueueResult:
    """Queue: run one long task and deliver its result. A malformed one is returned for poison.

    Raises `TaskIncomplete` when the result could not be delivered now, so the queue runs the
    task again later.
    """
    try:
        task = tasks.decode(body)
        app = await clients.get()
        await app.tasks.run(task)
    except tasks.InvalidTask as error:
        log.error("task message %s is malformed, moved to the poison queue: %s", message_id, error)
        return QueueResult(poison_reason=str(error))
    log.info("task %s (%s) done (queue message %s)", task.id, task.kind, message_id)
    return QueueResult()
