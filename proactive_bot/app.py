"""What the Functions call: one coroutine per trigger, free of any Functions types.

The function folders turn trigger input into these arguments and the results into trigger
output; everything else (clients, the turn, delivery) is behind this module.
"""

from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import clients, clock, json_input, tasks, telemetry, work
from .channel.activity import InvalidActivity
from .channel.auth import AuthenticationError, AuthenticationUnavailable
from .delivery.replies import TurnReplies
from .notifications import contract, lifecycle
from .notifications.lanes import class_of
from .notifications.records import RecipientRow, RecipientState, Status
from .telemetry import Metric, SpanName
from .telemetry import names as attribute

if TYPE_CHECKING:
    from .reminders.timer import RunSummary

log = logging.getLogger(__name__)

MAX_ACTIVITY_BYTES = 512 * 1024


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: Any = None  # JSON-serializable, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)

    def json_body(self) -> str | None:
        return None if self.body is None else json.dumps(self.body)


def _error(status: int, message: str) -> HttpResult:
    return HttpResult(status, {"error": {"message": message}})


async def receive_activity(body: bytes, auth_header: str | None) -> HttpResult:
    """POST /api/messages: authenticate, run the turn, answer the channel."""
    if len(body) > MAX_ACTIVITY_BYTES:
        return _error(413, f"activity larger than {MAX_ACTIVITY_BYTES} bytes")
    try:
        activity = json_input.loads(body)
    except json_input.JsonInputError as error:
        return _error(400, f"the body is {error}")
    app = await clients.get()
    try:
        invoke = await app.adapter.run_turn(activity, auth_header or "", app.bot, TurnReplies(app.limiter).before_reply)
    except InvalidActivity as error:
        return _error(400, str(error))
    except AuthenticationError as error:
        # The reason is logged, never answered: it would tell a caller which check to get past.
        log.warning("rejected an unauthenticated request to /api/messages (%s)", error)
        return _error(401, "unauthorized")
    except AuthenticationUnavailable as error:
        log.error("cannot authenticate requests to /api/messages now: %s", error)
        return HttpResult(503, {"error": {"message": "authentication is unavailable; try again later"}})
    if invoke is not None:
        return HttpResult(invoke.status, invoke.body)
    return HttpResult(200)


async def send_due_reminders(now: datetime | None = None) -> RunSummary:
    """Timer: send the reminders that are due, and start the notifications that are."""
    app = await clients.get()
    now = now or clock.now()
    summary = await app.reminder_timer.run(now)
    log.info("timer run: %s", summary)
    started = await app.timetable.start_due(app.work, now)
    if started:
        log.info("timer run: %d scheduled notification(s) started", started)
    return summary


@dataclass(frozen=True)
class QueueResult:
    poison_reason: str | None = None


async def process_notification(body: bytes, message_id: str = "", inserted_at: datetime | None = None) -> QueueResult:
    """Queue: a notification from another system. A malformed one is returned for the poison queue."""
    try:
        notification = contract.parse_queue_message(body, fallback_id=f"q-{message_id}" if message_id else "")
    except contract.InvalidNotification as error:
        log.error("queue message %s is malformed, moved to the poison queue: %s", message_id, error)
        return QueueResult(poison_reason=str(error))
    app = await clients.get()
    _queue_age(app.settings.notifications_queue, inserted_at)
    with telemetry.span(SpanName.INTAKE, {attribute.MESSAGE_ID: message_id}, notification=notification.id):
        await app.fanout.start(notification, source="queue")
    log.info("notification %s (queue message %s) taken", notification.id, message_id)
    return QueueResult()


async def process_work(body: bytes, message_id: str = "", inserted_at: datetime | None = None) -> QueueResult:
    """Work queue: one message (work.py lists the kinds), parsed and handed to what runs its kind."""
    app = await clients.get()
    try:
        item = work.parse(json_input.loads(body))
        _queue_age(app.settings.work_queue, inserted_at, item.KIND)
        with _work_span(item, message_id):
            await app.work_handlers.run(item)
    except (json_input.JsonInputError, work.InvalidWork) as error:
        log.error("work message %s is malformed, moved to the poison queue: %s", message_id, error)
        return QueueResult(poison_reason=str(error))
    return QueueResult()


def _work_span(item: work.Work, message_id: str) -> AbstractContextManager[object]:
    """The work's span: a child of the span that put the message (its `traceparent`)."""
    attributes: dict[str, str | int] = {attribute.WORK_KIND: item.KIND, attribute.MESSAGE_ID: message_id}
    if isinstance(item, work.RosterWork):
        attributes[attribute.TEAM] = item.team
        return telemetry.span(SpanName.work(item.KIND), attributes, parent=item.traceparent)
    if isinstance(item, work.BatchWork):
        attributes[attribute.RECIPIENTS] = len(item.recipients)
    elif isinstance(item, work.EditWork | work.RecallWork):
        attributes[attribute.SHARD] = item.shard
    return telemetry.span(SpanName.work(item.KIND), attributes, notification=item.notification, parent=item.traceparent)


def _queue_age(queue: str, inserted_at: datetime | None, kind: str = "") -> None:
    """How long the message waited, insertion to handling (a delayed one counts its delay)."""
    if inserted_at is None:
        return
    moment = inserted_at if inserted_at.tzinfo else inserted_at.replace(tzinfo=UTC)
    age = max(0.0, (clock.now() - moment).total_seconds())
    telemetry.record(Metric.QUEUE_AGE, age, {attribute.QUEUE: queue, **({attribute.WORK_KIND: kind} if kind else {})})


async def accept_notification(body: bytes, base_url: str) -> HttpResult:
    """POST /api/notifications: validate, record, start (notifications/front_door.py); 202 with
    where to ask how it went."""
    try:
        notification = contract.validate(json_input.loads(body))
    except json_input.JsonInputError as error:
        return _error(400, f"the body is {error}")
    except contract.InvalidNotification as error:
        return _error(400, str(error))
    app = await clients.get()
    with telemetry.span(SpanName.ACCEPT, notification=notification.id):
        await app.front_door.accept(notification)
    status_url = f"{base_url.rstrip('/')}/{quote(notification.id, safe='')}"
    return HttpResult(202, {"id": notification.id, "status": status_url}, {"Location": status_url})


async def cancel_notification(notification_id: str, base_url: str) -> HttpResult:
    """DELETE /api/notifications/{id}: cancel what is not sent yet, recall what is."""
    app = await clients.get()
    with telemetry.span(SpanName.CANCEL, notification=notification_id):
        return _lifecycle_reply(await app.lifecycle.cancel(notification_id), base_url)


async def edit_notification(notification_id: str, body: bytes, base_url: str) -> HttpResult:
    """PATCH /api/notifications/{id} with text and/or attachments: edit in place."""
    try:
        patch = json_input.loads(body)
        text, attachments = contract.validate_edit(patch)
    except json_input.JsonInputError as error:
        return _error(400, f"the body is {error}")
    except contract.InvalidNotification as error:
        return _error(400, str(error))
    app = await clients.get()
    with telemetry.span(SpanName.EDIT, notification=notification_id):
        return _lifecycle_reply(await app.lifecycle.edit(notification_id, text, attachments), base_url)


def _lifecycle_reply(answer: lifecycle.Reply, base_url: str) -> HttpResult:
    if answer.refusal is not None or answer.header is None:
        status = answer.refusal.value if answer.refusal is not None else 404
        return _error(status, answer.detail)
    status_url = base_url.split("?")[0].rstrip("/")
    body = {"id": answer.header.notification.id, "status": status_url, "version": answer.header.version}
    return HttpResult(202, body, {"Location": status_url})


async def notification_status(notification_id: str, detail: bool = False) -> HttpResult:
    """GET /api/notifications/{id}: state and counts, per recipient on request."""
    app = await clients.get()
    status = await app.notifications.status(notification_id, detail=detail)
    if status is None:
        return _error(404, f"no notification {notification_id!r}")
    return HttpResult(200, status_body(status))


async def resend_notification(notification_id: str, state: str, status_url: str) -> HttpResult:
    """POST /api/notifications/{id}/resend?state=unconfirmed: send once more to those recipients."""
    if state != RecipientState.UNCONFIRMED.public:
        return _error(400, f"state must be {RecipientState.UNCONFIRMED.public!r} (the only recipients a resend is for)")
    app = await clients.get()
    with telemetry.span(SpanName.RESEND, notification=notification_id):
        handed_out = await app.fanout.resend(notification_id, RecipientState.UNCONFIRMED)
    if handed_out is None:
        return _error(404, f"no notification {notification_id!r}")
    return HttpResult(
        202, {"id": notification_id, "resending": handed_out, "status": status_url}, {"Location": status_url}
    )


def status_body(status: Status) -> dict[str, Any]:
    """The status as the HTTP API answers it (camelCase JSON)."""
    header, counts = status.header, status.counts
    body: dict[str, Any] = {
        "id": header.notification.id,
        "state": status.state.value,
        "class": class_of(header.notification),  # the lane it is delivered in: "urgent" or "bulk"
        "to": header.notification.to,
        "createdAt": header.created_at.isoformat(),
        "counts": {
            "recipients": status.recipients,
            **{state.public: counts[state] for state in _COUNTED},
            "cancelled": status.never_sent,
            "read": status.read,
            "updated": status.updated,
            "unsupported": status.unsupported,
            "changeFailed": status.change_failed,
            "pending": status.pending,
            "throttledRetries": status.throttled,
            "resent": status.resent,
        },
    }
    if header.version:
        body["version"] = header.version
    for name, moment in (
        ("notBefore", header.notification.not_before),
        ("expiresAt", header.notification.expires_at),
        ("cancelledAt", header.cancelled_at),
    ):
        if moment is not None:
            body[name] = moment.isoformat()
    if header.audience:
        body["audienceSize"] = header.audience  # the aadObjectIds are stored apart, not repeated here
    if header.note:
        body["note"] = header.note
    if status.rows is not None:
        body["recipients"] = [_row_body(row) for row in status.rows]
    return body


# What `counts` lists by name; the rest (sending, retrying) is in `pending`.
_COUNTED = (
    RecipientState.SENT,
    RecipientState.FAILED,
    RecipientState.GONE,
    RecipientState.OPTED_OUT,
    RecipientState.UNCONFIRMED,
    RecipientState.RECALLED,
    RecipientState.EXPIRED,
)


def _row_body(row: RecipientRow) -> dict[str, Any]:
    return {
        "channelId": row.channel_id,
        "conversationId": row.conversation_id,
        "userId": row.user_id,
        "state": row.state.public,
        "attempts": row.attempts,
        "throttled": row.throttled,
        "status": row.status,
        "detail": row.detail,
        "updatedAt": row.updated_at.isoformat() if row.updated_at else None,
        "claimedAt": row.claimed_at.isoformat() if row.claimed_at else None,
        "resends": row.resends,
        "activityId": row.activity_id,
        "version": row.version,
        "editedAt": _iso(row.edited_at),
        "readAt": _iso(row.read_at),
        "recalledAt": _iso(row.recalled_at),
        **({"change": row.change} if row.change else {}),
        "chatCreated": row.chat_created,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def run_task(body: bytes, message_id: str = "") -> QueueResult:
    """Queue: run one long task and deliver its result. A malformed one is returned for poison.

    Raises `TaskIncomplete` when the result could not be delivered now, so the queue runs the
    task again later.
    """
    try:
        task = tasks.parse_task_message(body)
        app = await clients.get()
        await app.tasks.run(task)
    except tasks.InvalidTask as error:
        log.error("task message %s is malformed, moved to the poison queue: %s", message_id, error)
        return QueueResult(poison_reason=str(error))
    log.info("task %s (%s) done (queue message %s)", task.id, task.kind, message_id)
    return QueueResult()
