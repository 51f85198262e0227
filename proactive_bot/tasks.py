"""Long tasks: work that takes longer than a turn allows, done from a queue, answered proactively.

The turn acknowledges at once (typing + "working on it") and enqueues a Task on the tasks queue
(setting `TasksQueue`, plain JSON as host.json's messageEncoding "none" passes it); `long_tasks/`
runs it and delivers the result into the same conversation through `Delivery.send`.

Message contract (version 1), produced only by this app:

    {"v": 1, "id": "<uuid>", "kind": "report", "channelId": "...", "conversationId": "...",
     "userId": "...", "zone": "Europe/Berlin", "requestedAt": "2026-11-26T10:00:00+00:00",
     "locale": "de"}

`locale` (the language to answer in, i18n) may be absent: messages enqueued before it existed
are answered in English.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.storage.queue.aio import QueueClient

from . import clock
from .delivery.lanes import Lane
from .delivery.outcome import Outcome, Result
from .delivery.sender import Delivery
from .references import ReferenceStore

log = logging.getLogger(__name__)

VERSION = 1
MAX_MESSAGE_BYTES = 8 * 1024
_FIELDS = {
    "v": int,
    "id": str,
    "kind": str,
    "channelId": str,
    "conversationId": str,
    "userId": str,
    "zone": (str, type(None)),
    "requestedAt": str,
}
_OPTIONAL = {"locale": (str, type(None))}


class InvalidTask(ValueError):
    """The message can never be run as it is; it belongs in the poison queue."""


class TaskIncomplete(RuntimeError):
    """The result could not be delivered now; raising lets the queue run the task again later."""


@dataclass(frozen=True)
class Task:
    kind: str
    channel_id: str
    conversation_id: str
    user_id: str
    zone: str | None = None  # the zone the channel reported in the turn, for showing times
    locale: str | None = None  # the language to answer in (i18n); None: English
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    requested_at: datetime = field(default_factory=lambda: clock.now())

    def to_message(self) -> str:
        return json.dumps(
            {
                "v": VERSION,
                "id": self.id,
                "kind": self.kind,
                "channelId": self.channel_id,
                "conversationId": self.conversation_id,
                "userId": self.user_id,
                "zone": self.zone,
                "requestedAt": self.requested_at.isoformat(),
                **({"locale": self.locale} if self.locale else {}),
            },
            separators=(",", ":"),
        )


def parse_task_message(body: bytes) -> Task:
    if len(body) > MAX_MESSAGE_BYTES:
        raise InvalidTask(f"message is {len(body)} bytes; a task is at most {MAX_MESSAGE_BYTES}")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidTask(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidTask("a task is a JSON object")
    problems = [
        f"{name}: expected {getattr(kind, '__name__', 'string or null')}"
        for name, kind in _FIELDS.items()
        if not isinstance(document.get(name), kind)  # type: ignore[arg-type]
    ]
    problems += [
        f"{name}: expected string or null"
        for name, kind in _OPTIONAL.items()
        if name in document and not isinstance(document[name], kind)
    ]
    problems += [f"{name}: unknown field" for name in document if name not in _FIELDS and name not in _OPTIONAL]
    if problems:
        raise InvalidTask("; ".join(problems))
    if document["v"] != VERSION:
        raise InvalidTask(f"v: version {document['v']} is not {VERSION}")
    try:
        requested_at = datetime.fromisoformat(document["requestedAt"])
    except ValueError:
        raise InvalidTask("requestedAt: not an ISO 8601 time") from None
    return Task(
        kind=document["kind"],
        channel_id=document["channelId"],
        conversation_id=document["conversationId"],
        user_id=document["userId"],
        zone=document["zone"],
        locale=document.get("locale"),
        id=document["id"],
        requested_at=requested_at,
    )


Work = Callable[[Task], Awaitable[list[dict[str, Any]]]]
"""A kind of task: from the task to the activities that answer it."""


class LongTasks:
    def __init__(
        self, queue: QueueClient, references: ReferenceStore, delivery: Delivery, kinds: Mapping[str, Work]
    ) -> None:
        self._queue = queue
        self._references = references
        self._delivery = delivery
        self._kinds = kinds

    async def start(self, task: Task) -> None:
        """Enqueue; the turn that calls this returns without waiting for the work."""
        if task.kind not in self._kinds:
            raise ValueError(f"no such kind of task: {task.kind}")
        await self._queue.send_message(task.to_message())  # clients.build made sure the queue exists

    async def run(self, task: Task) -> Result | None:
        """Do the work and deliver the result; None if there is no one left to deliver it to.

        Raises InvalidTask for a kind this app does not know and TaskIncomplete when the result
        could not be delivered now (the queue retries; the work is redone, so it must be
        repeatable).
        """
        work = self._kinds.get(task.kind)
        if work is None:
            raise InvalidTask(f"kind: no such kind of task {task.kind!r}")
        recipient = await self._references.get(task.channel_id, task.conversation_id)
        if recipient is None or not recipient.active:
            log.warning(
                "task %s (%s): conversation %s is unknown or gone; dropped", task.id, task.kind, task.conversation_id
            )
            return None
        activities = await work(task)
        result = await self._delivery.send(recipient, activities, lane=Lane.URGENT)
        if result.outcome in (Outcome.THROTTLED, Outcome.FAILED):
            raise TaskIncomplete(f"task {task.id} ({task.kind}): {result.outcome.value}: {result.detail}")
        return result
