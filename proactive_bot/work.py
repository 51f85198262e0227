"""The internal work queue: what its messages say, and the client that puts them there.

Every message is one JSON object with a `kind`; each kind is one frozen dataclass below with its
own `to_message()` and `parse()`. The wire format is the one the queue has always carried, so
messages written before a deploy still parse after it:

    kind      class        fields                                what runs it
    page      PageWork     notification                          the next pages of a broadcast's walk
    batch     BatchWork    notification, recipients, [members]  one batch's deliveries
    release   StartWork    notification                          a scheduled one's notBefore came: start it
    post      PostWork     notification                          a teamChannel post, again
    roster    RosterWork   team, [failures]                      the next pages of a team's roster
    edit      EditWork     notification, shard, version          one shard's sent rows edited in place
    recall    RecallWork   notification, shard, version          one shard's sent rows deleted
    recount   RecountWork  notification                          its rows counted for the views

(`release` is the kind's name on the wire from before the words were sorted out: in the code,
"release" is giving a claim back, and a scheduled notification is *started*.)

Every kind may also carry `traceparent` (W3C Trace Context): the span that put it there, so the
work it asks for joins that trace (telemetry/). `WorkQueue.put` adds it while telemetry is on;
a message without it (telemetry off, or written before) starts its span anew.

`parse` turns a message into one of them, or raises `InvalidWork` with the reason (the message
goes to the poison queue). `Handlers` is the one dispatch table: one coroutine per kind, built
where the app is composed (notifications/compose.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, assert_never

from azure.core.exceptions import AzureError

from . import clock, telemetry
from .references import StoredReference
from .teams.rows import RosterMember

if TYPE_CHECKING:
    from azure.storage.queue.aio import QueueClient

log = logging.getLogger(__name__)


BATCH_BYTES = 40 * 1024  # of recipients' JSON per batch message; a queue message holds 64 KiB


class InvalidWork(ValueError):
    """A work-queue message we cannot act on; it belongs in the poison queue."""


BatchRecipient = StoredReference | RosterMember


@dataclass(frozen=True, kw_only=True)
class PageWork:
    """Walk the next pages of a broadcast's audience."""

    KIND: ClassVar[str] = "page"
    notification: str
    traceparent: str | None = None  # every kind's: the trace it belongs to (module docstring)

    def to_message(self) -> dict[str, Any]:
        return _traced(self.traceparent, {"kind": self.KIND, "notification": self.notification})

    @classmethod
    def parse(cls, message: dict[str, Any]) -> PageWork:
        return cls(notification=_notification(message), traceparent=_traceparent(message))


@dataclass(frozen=True, kw_only=True)
class StartWork:
    """A scheduled notification's notBefore came: start it."""

    KIND: ClassVar[str] = "release"
    notification: str
    traceparent: str | None = None

    def to_message(self) -> dict[str, Any]:
        return _traced(self.traceparent, {"kind": self.KIND, "notification": self.notification})

    @classmethod
    def parse(cls, message: dict[str, Any]) -> StartWork:
        return cls(notification=_notification(message), traceparent=_traceparent(message))


@dataclass(frozen=True, kw_only=True)
class PostWork:
    """Post a teamChannel notification (again: its last try ran out of time, or found it busy)."""

    KIND: ClassVar[str] = "post"
    notification: str
    traceparent: str | None = None

    def to_message(self) -> dict[str, Any]:
        return _traced(self.traceparent, {"kind": self.KIND, "notification": self.notification})

    @classmethod
    def parse(cls, message: dict[str, Any]) -> PostWork:
        return cls(notification=_notification(message), traceparent=_traceparent(message))


@dataclass(frozen=True, kw_only=True)
class RecountWork:
    """Count a notification's rows and keep the counts beside its record (a view asked)."""

    KIND: ClassVar[str] = "recount"
    notification: str
    traceparent: str | None = None

    def to_message(self) -> dict[str, Any]:
        return _traced(self.traceparent, {"kind": self.KIND, "notification": self.notification})

    @classmethod
    def parse(cls, message: dict[str, Any]) -> RecountWork:
        return cls(notification=_notification(message), traceparent=_traceparent(message))


@dataclass(frozen=True, kw_only=True)
class BatchWork:
    """Deliver a notification to some recipients: stored conversations (by their references) and
    roster members (their chat to be created), apart on the wire."""

    KIND: ClassVar[str] = "batch"
    notification: str
    recipients: tuple[BatchRecipient, ...]
    traceparent: str | None = None

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "kind": self.KIND,
            "notification": self.notification,
            "recipients": [r.reference for r in self.recipients if isinstance(r, StoredReference)],
        }
        members = [r.to_json() for r in self.recipients if isinstance(r, RosterMember)]
        if members:
            message["members"] = members
        return _traced(self.traceparent, message)

    @classmethod
    def parse(cls, message: dict[str, Any]) -> BatchWork:
        notification = _notification(message)
        references, members = message.get("recipients", []), message.get("members", [])
        if not isinstance(references, list) or not isinstance(members, list):
            raise InvalidWork("a batch's recipients and members are lists")
        now = clock.now()
        try:
            recipients: list[BatchRecipient] = [StoredReference.from_reference(r, now) for r in references]
            recipients += [RosterMember.from_json(m) for m in members]
        except (ValueError, AttributeError, TypeError, KeyError) as error:
            raise InvalidWork(f"a batch recipient is not a conversation reference or roster member: {error}") from None
        return cls(notification=notification, recipients=tuple(recipients), traceparent=_traceparent(message))

    @staticmethod
    def weight(recipient: BatchRecipient) -> int:
        """The bytes one recipient adds to a batch message (to cut batches that fit the queue)."""
        return len(json.dumps(recipient.to_json() if isinstance(recipient, RosterMember) else recipient.reference)) + 1


@dataclass(frozen=True, kw_only=True)
class RosterWork:
    """Read the next pages of a team's roster; `failures`: the reads that failed in a row before."""

    KIND: ClassVar[str] = "roster"
    team: str
    failures: int = 0
    traceparent: str | None = None

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"kind": self.KIND, "team": self.team}
        if self.failures:
            message["failures"] = self.failures
        return _traced(self.traceparent, message)

    @classmethod
    def parse(cls, message: dict[str, Any]) -> RosterWork:
        team = message.get("team")
        if not isinstance(team, str):
            raise InvalidWork("a roster walk needs a 'team' id")
        failures = message.get("failures", 0)
        return cls(
            team=team,
            failures=failures if isinstance(failures, int) and not isinstance(failures, bool) else 0,
            traceparent=_traceparent(message),
        )


@dataclass(frozen=True, kw_only=True)
class _ShardChange:
    """One shard's sent rows changed: to content `version` (edit) or deleted (recall)."""

    KIND: ClassVar[str]
    notification: str
    shard: int
    version: int = 0
    traceparent: str | None = None

    def to_message(self) -> dict[str, Any]:
        message = {"kind": self.KIND, "notification": self.notification, "shard": self.shard, "version": self.version}
        return _traced(self.traceparent, message)

    @classmethod
    def _fields(cls, message: dict[str, Any]) -> dict[str, Any]:
        notification = _notification(message)
        shard = message.get("shard")
        # A whole number, as to_message writes it (bool is an int to Python, not to the sender);
        # whether the notification has such a shard is the records' to say (lifecycle checks).
        if not isinstance(shard, int) or isinstance(shard, bool):
            raise InvalidWork(f"a {cls.KIND} message needs a shard number, not {shard!r}")
        version = message.get("version", 0)
        return {
            "notification": notification,
            "shard": shard,
            "version": version if isinstance(version, int) and not isinstance(version, bool) else 0,
            "traceparent": _traceparent(message),
        }


@dataclass(frozen=True, kw_only=True)
class EditWork(_ShardChange):
    KIND: ClassVar[str] = "edit"

    @classmethod
    def parse(cls, message: dict[str, Any]) -> EditWork:
        return cls(**cls._fields(message))


@dataclass(frozen=True, kw_only=True)
class RecallWork(_ShardChange):
    KIND: ClassVar[str] = "recall"

    @classmethod
    def parse(cls, message: dict[str, Any]) -> RecallWork:
        return cls(**cls._fields(message))


Work = PageWork | BatchWork | StartWork | PostWork | RosterWork | EditWork | RecallWork | RecountWork
ShardChange = EditWork | RecallWork

_KINDS: dict[str, Callable[[dict[str, Any]], Work]] = {
    kind.KIND: kind.parse
    for kind in (PageWork, BatchWork, StartWork, PostWork, RosterWork, EditWork, RecallWork, RecountWork)
}


def parse(message: Any) -> Work:
    """A work message, decoded JSON; raises InvalidWork with the reason if it is none."""
    if not isinstance(message, dict):
        raise InvalidWork("expected an object with a 'kind'")
    kind = message.get("kind")
    parse_kind = _KINDS.get(kind) if isinstance(kind, str) else None
    if parse_kind is None:
        raise InvalidWork(f"unknown work kind {kind!r}")
    return parse_kind(message)


def _traced(traceparent: str | None, message: dict[str, Any]) -> dict[str, Any]:
    if traceparent is not None:
        message["traceparent"] = traceparent
    return message


def _traceparent(message: dict[str, Any]) -> str | None:
    # Not a reason to poison: a malformed one only starts a new trace (telemetry ignores it).
    traceparent = message.get("traceparent")
    return traceparent if isinstance(traceparent, str) else None


def _notification(message: dict[str, Any]) -> str:
    notification = message.get("notification")
    if not isinstance(notification, str):
        raise InvalidWork("expected an object with a 'notification' id")
    return notification


@dataclass(frozen=True, kw_only=True)
class Handlers:
    """The dispatch table: what runs each kind of work."""

    page: Callable[[PageWork], Awaitable[None]]
    batch: Callable[[BatchWork], Awaitable[None]]
    start: Callable[[StartWork], Awaitable[None]]
    post: Callable[[PostWork], Awaitable[None]]
    roster: Callable[[RosterWork], Awaitable[None]]
    change: Callable[[ShardChange], Awaitable[None]]
    recount: Callable[[RecountWork], Awaitable[None]]

    async def run(self, work: Work) -> None:
        match work:
            case PageWork():
                await self.page(work)
            case BatchWork():
                await self.batch(work)
            case StartWork():
                await self.start(work)
            case PostWork():
                await self.post(work)
            case RosterWork():
                await self.roster(work)
            case EditWork() | RecallWork():
                await self.change(work)
            case RecountWork():
                await self.recount(work)
            case _:
                assert_never(work)


@dataclass(frozen=True)
class Posted:
    """A message as put on the work queue: what it takes to withdraw it."""

    id: str
    pop_receipt: str | None


class WorkQueue:
    """The internal queue of broadcast pages, delivery batches, posts, roster walks and changes."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    async def put(self, work: Work, delay: float = 0) -> Posted:
        if work.traceparent is None:
            # The span putting it (for the same notification) is its parent; telemetry off: None.
            traced = telemetry.traceparent(None if isinstance(work, RosterWork) else work.notification)
            work = dataclasses.replace(work, traceparent=traced) if traced else work
        # The queue counts whole seconds; rounding down would bring a throttled batch back early.
        sent = await self._client.send_message(
            json.dumps(work.to_message(), separators=(",", ":")), visibility_timeout=math.ceil(delay) or None
        )
        return Posted(sent.id, sent.pop_receipt)

    async def withdraw(self, posted: Posted) -> None:
        """Delete a message put here, if it is still waiting. One a worker has taken meanwhile
        (it has a new pop receipt), or that cannot be deleted now, is left to run: every message
        here is safe to run late or twice."""
        try:
            await self._client.delete_message(posted.id, posted.pop_receipt)
        except (AzureError, OSError, TimeoutError) as error:  # as the budget's storage calls
            log.info("work message %s left to run: %s", posted.id, type(error).__name__)


def batches_of(
    found: Sequence[BatchRecipient], shard_of: Callable[[BatchRecipient], int], limit: int | None = None
) -> list[list[BatchRecipient]]:
    """Split recipients into batches whose messages stay under `limit` (BATCH_BYTES) bytes of recipients, one
    shard per batch, so that a batch's claims and outcomes go to one partition together."""
    limit = BATCH_BYTES if limit is None else limit
    by_shard: dict[int, list[BatchRecipient]] = {}
    for recipient in found:
        by_shard.setdefault(shard_of(recipient), []).append(recipient)
    cut: list[list[BatchRecipient]] = []
    for shard in sorted(by_shard):
        size = limit  # start a new batch for every shard
        for recipient in by_shard[shard]:
            weight = BatchWork.weight(recipient)
            if size + weight > limit:
                cut.append([])
                size = 0
            cut[-1].append(recipient)
            size += weight
    return cut
