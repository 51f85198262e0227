"""Fan-out: how one notification becomes deliveries, exactly once per recipient.

- To one user or conversation: delivered inline, by the invocation that took the message.
- To everyone: the audience is walked in pages, several per work-queue message. The page cursor lives in
  the notification's record and moves under its ETag, so a redelivered or duplicated page
  message cannot fork the walk; each page becomes batch messages that any instance may take.
  No invocation walks the whole audience.
- Teams audiences walk the same way: a team's stored roster (`teamId`), a list of Entra object
  ids (`aadObjectIds`, stored beside the record), every roster user after everyone with a
  conversation (`includeRoster`). A roster member without a chat travels in the batch as a
  member; the batch claims them, creates the chat (teams.chats) and sends. A `teamChannel`
  notification is one new thread (or a reply in one), delivered inline.
- A batch claims each recipient's row right before sending (see NotificationStore.claim) and
  settles it after; whatever runs out of this invocation's retry budget goes back on the work
  queue with a visibility delay instead of keeping the function asleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azure.storage.queue.aio import QueueClient

from .. import clock
from ..channel.activity import outgoing
from ..delivery.outcome import Outcome, Result
from ..delivery.retries import NOTIFICATIONS
from ..delivery.sender import Delivery
from ..references import TEAMS, ReferenceStore, StoredReference
from ..teams.reach import ROSTER_PHASE, Page, TeamsReach
from ..teams.store import RosterMember
from .contract import Notification
from .records import (
    SEND_LEASE, Claim, Header, NotificationStore, Recipient, RecipientState, Settled, Verdict, recipient_key, shard_of,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 500
PAGES_PER_WALK = 20  # at most 10,000 recipients walked by one invocation
WALK_BUDGET = 10.0  # seconds of walking before handing the cursor on
BATCH_BYTES = 40 * 1024  # of reference JSON per batch message; the queue takes 64 KiB
FLUSH_EVERY = 0.25  # seconds between writes of settled rows while a batch runs
STOP_GRACE = 10.0  # seconds a cancelled batch gives sends already on their way


class InvalidWork(ValueError):
    """A work-queue message we cannot act on; it belongs in the poison queue."""


class WorkQueue:
    """The internal queue of broadcast pages and delivery batches."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    async def put(self, work: dict[str, Any], delay: float = 0) -> None:
        # The queue counts whole seconds; rounding down would bring a throttled batch back early.
        await self._client.send_message(
            json.dumps(work, separators=(",", ":")), visibility_timeout=math.ceil(delay) or None
        )


@dataclass
class Fanout:
    references: ReferenceStore
    records: NotificationStore
    delivery: Delivery
    work: WorkQueue
    retry_budget: float = 45.0  # seconds of retrying within one invocation
    teams: TeamsReach | None = None  # Teams audiences (teamId, aadObjectIds, teamChannel, includeRoster)

    async def start(self, notification: Notification, source: str) -> None:
        """A notification arrived: record it and deliver (or begin walking a broadcast)."""
        header = await self.records.create(notification, clock.now(), source)
        if notification.is_broadcast:
            if not header.planned and header.pages == 0:
                await self.work.put({"kind": "page", "notification": notification.id})
            return
        if "teamChannel" in notification.to:
            await self._post_to_channel(notification, header)
            return
        recipient = await self._resolve(notification)
        if not header.planned:  # else a redelivery: the recipient's row says what is left to do
            note = "" if recipient else "recipient not known"
            await self.records.advance(header, found=int(bool(recipient)), cursor=None, planned=True, note=note)
        if recipient is None:
            log.warning("notification %s: recipient %s is not known; nothing sent", notification.id, notification.to)
            return
        await self.deliver(notification, [recipient])

    async def _resolve(self, notification: Notification) -> StoredReference | None:
        to = notification.to
        if "userId" in to:
            return await self.references.find_user(to["channelId"], to["userId"])
        if "conversationId" in to:
            return await self.references.get(to["channelId"], to["conversationId"])
        return await self.references.find_aad_user(to["aadObjectId"])

    async def next_page(self, notification_id: str) -> None:
        """Walk the next pages of a broadcast's audience into batch messages, then hand on the cursor.

        Several pages per invocation (up to PAGES_PER_WALK, within WALK_BUDGET): each step of the
        walk through the queue costs a poll, and the batches wait for the walk.
        """
        started = time.monotonic()
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        if header.planned:
            return
        audience: list[str] | None = None
        for _ in range(PAGES_PER_WALK):
            if "aadObjectIds" in header.notification.to and audience is None:
                audience = await self.records.audience(notification_id)
            page = await self._page(header, audience or [])
            if page.wait:
                await self.work.put({"kind": "page", "notification": notification_id}, delay=page.wait)
                return
            for work in _batches(page.found):
                await self.work.put({"kind": "batch", "notification": notification_id, **work})
            cursor = page.cursor
            moved = await self.records.advance(
                header, found=len(page.found) + page.recorded, cursor=cursor, planned=cursor is None, note=page.note
            )
            if moved is None:
                return  # another copy of this page message moved the cursor first and carries on
            header = moved
            if header.planned:
                return
            if time.monotonic() - started > WALK_BUDGET:
                break
        await self.work.put({"kind": "page", "notification": notification_id})

    async def _page(self, header: Header, audience: Sequence[str]) -> Page:
        """The next page of a notification's audience, whichever kind it is."""
        to, cursor = header.notification.to, header.cursor
        if ("teamId" in to or "aadObjectIds" in to or to.get("includeRoster")) and self.teams is None:
            return Page([], None, note="Teams audiences are not configured (TeamsTable)")
        if "teamId" in to:
            assert self.teams is not None
            return await self.teams.team_page(to["teamId"], cursor, PAGE_SIZE)
        if "aadObjectIds" in to:
            assert self.teams is not None
            offset = int((cursor or {}).get("offset", 0))
            known, unknown = await self.teams.resolve_aad(audience[offset : offset + PAGE_SIZE], to.get("tenantId"))
            if unknown:
                # Recorded at once: nothing can ever be sent to them, and the status counts them.
                await self.records.settle(header.notification.id, [
                    Settled(u, RecipientState.FAILED, detail="not known: no chat, no roster, no install in the tenant")
                    for u in unknown
                ], clock.now(), at_once=True)
            following = offset + PAGE_SIZE
            return Page(known, {"offset": str(following)} if following < len(audience) else None,
                        note="some recipients are not known" if unknown else "", recorded=len(unknown))
        if cursor is not None and ROSTER_PHASE in cursor:
            assert self.teams is not None
            return await self.teams.roster_users_page(cursor, PAGE_SIZE)
        found, following = await self.references.broadcast_page(
            channel_id=to.get("channelId"), tenant_id=to.get("tenantId"), cursor=cursor, size=PAGE_SIZE
        )
        if following is None and to.get("includeRoster") and to.get("channelId") in (None, TEAMS):
            following = {ROSTER_PHASE: "1"}  # then every user known from a roster
        return Page(list(found), following)

    async def deliver_batch(
        self, notification_id: str, references: Sequence[dict[str, Any]], members: Sequence[dict[str, Any]] = ()
    ) -> None:
        header = await self.records.header(notification_id)
        if header is None:
            raise InvalidWork(f"no notification {notification_id!r}")
        now = clock.now()
        try:
            recipients: list[StoredReference | RosterMember] = [
                StoredReference.from_reference(reference, now) for reference in references
            ]
            recipients += [RosterMember.from_json(member) for member in members]
        except (ValueError, AttributeError, TypeError) as error:
            raise InvalidWork(f"a batch recipient is not a conversation reference or roster member: {error}") from None
        await self.deliver(header.notification, recipients)

    async def deliver(self, notification: Notification, recipients: Sequence[StoredReference | RosterMember]) -> None:
        batch = _Batch(self, notification)
        await batch.run(recipients)
        if batch.later:
            delay = max(wait for _, wait in batch.later)
            await self.work.put(
                {"kind": "batch", "notification": notification.id, **_batch_body([r for r, _ in batch.later])},
                delay=delay,
            )
            log.info("notification %s: %d recipient(s) again in %.0f s", notification.id, len(batch.later), delay)

    async def _post_to_channel(self, notification: Notification, header: Header) -> None:
        """A new thread in a channel, or (replyTo) a reply in the thread an earlier one started."""
        spec = notification.to["teamChannel"]
        post = _ChannelPost(spec["channelId"])
        if self.teams is None:
            await self.records.advance(header, found=0, cursor=None, planned=True, note="Teams audiences are not configured")
            return
        team = await self.teams.store.team(spec["teamId"])
        if team is None or not team.active:
            if not header.planned:
                await self.records.advance(header, found=0, cursor=None, planned=True, note="team not installed: nothing sent")
            return
        if not header.planned:
            await self.records.advance(header, found=1, cursor=None, planned=True)
        claim = await self.records.claim(notification.id, post, clock.now())
        if claim.verdict is not Verdict.CLAIMED:
            return
        activity = notification.activity()
        if spec.get("replyTo"):
            thread = await self._thread_of(spec["replyTo"])
            if thread is None:
                await self.records.settle(notification.id, [Settled(post, RecipientState.FAILED, claim.attempts + 1,
                                          detail=f"no thread started by {spec['replyTo']!r}")], clock.now(), at_once=True)
                return
            reference = {
                "bot": self._bot_account(), "channelId": TEAMS, "serviceUrl": team.service_url,
                "conversation": {"id": thread, "isGroup": True, "conversationType": "channel", "tenantID": team.tenant_id},
            }
            result = await self.delivery.send_patiently(
                StoredReference.from_reference(reference, clock.now()), [outgoing(activity)],
                deadline=time.monotonic() + self.retry_budget,
            )
            row = settled(post, claim, result)
            await self.records.settle(notification.id, [dataclasses.replace(row, conversation=thread)], clock.now(), at_once=True)
            return
        answer = await self.teams.chats.post_to_channel(team.service_url, team.tenant_id, spec["channelId"], activity)
        if isinstance(answer, dict):
            row = Settled(post, RecipientState.SENT, claim.attempts + 1, status=200, conversation=str(answer.get("id", "")))
        else:
            row = settled(post, claim, answer)
        await self.records.settle(notification.id, [row], clock.now(), at_once=True)
        if row.state is RecipientState.RETRY:
            await self.work.put({"kind": "post", "notification": notification.id}, delay=answer.retry_after or 1.0)

    async def _thread_of(self, notification_id: str) -> str | None:
        status = await self.records.status(notification_id, detail=True, limit=1)
        if status is None or not status.rows or status.rows[0].state is not RecipientState.SENT:
            return None
        return status.rows[0].conversation_id or None

    def _bot_account(self) -> dict[str, str]:
        assert self.teams is not None
        return self.teams.chats.bot_account

    async def handle(self, work: Any) -> None:
        """One work-queue message."""
        if isinstance(work, dict) and work.get("kind") == "roster" and isinstance(work.get("team"), str):
            if self.teams is None:
                raise InvalidWork("a roster walk, but Teams reach is not configured")
            await self.teams.roster.next_pages(work["team"])
            return
        if not isinstance(work, dict) or not isinstance(work.get("notification"), str):
            raise InvalidWork("expected an object with a 'notification' id")
        if work.get("kind") == "page":
            await self.next_page(work["notification"])
        elif work.get("kind") == "batch" and isinstance(work.get("recipients", []), list) and isinstance(work.get("members", []), list):
            await self.deliver_batch(work["notification"], work.get("recipients", []), work.get("members", []))
        elif work.get("kind") == "post":
            header = await self.records.header(work["notification"])
            if header is None:
                raise InvalidWork(f"no notification {work['notification']!r}")
            await self._post_to_channel(header.notification, header)
        else:
            raise InvalidWork(f"unknown work kind {work.get('kind')!r}")


class _Batch:
    """One invocation's deliveries of a notification to some recipients."""

    def __init__(self, fanout: Fanout, notification: Notification) -> None:
        self._fanout = fanout
        self._notification = notification
        self._activity = outgoing(notification.activity())  # deserialized once for every recipient
        self._deadline = time.monotonic() + fanout.retry_budget
        self._settled: list[Settled] = []
        # Recipients whose claim has been asked for: from then on the send may go out, so a
        # stopping host lets them finish rather than leave a claimed row that never sends.
        self._claiming: set[str] = set()
        self.later: list[tuple[StoredReference | RosterMember, float]] = []  # (recipient, seconds to wait)

    async def run(self, recipients: Sequence[StoredReference | RosterMember]) -> None:
        flusher = asyncio.create_task(self._flush_periodically())
        tasks = {
            asyncio.create_task(self._one_member(r) if isinstance(r, RosterMember) else self._one(r)): recipient_key(r)
            for r in recipients
        }
        try:
            # wait(), not gather(): being cancelled must not cancel sends already on their way.
            if tasks:
                await asyncio.wait(tasks)
            for task in tasks:
                task.result()  # surface the first error, after every send has settled
        except asyncio.CancelledError:
            await self._stop(tasks)
            raise
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await asyncio.shield(self._flush(at_once=True))

    async def _stop(self, tasks: dict[asyncio.Task[None], str]) -> None:
        """The host is stopping us: drop what has not been claimed, let the rest finish."""
        for task, key in tasks.items():
            if key not in self._claiming:
                task.cancel()
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in late:
                task.cancel()  # its row stays "sending" and is reported unconfirmed later

    async def _one(self, recipient: StoredReference) -> None:
        if recipient.opted_out or not recipient.active:
            if recipient.opted_out:
                self._settled.append(Settled(recipient, RecipientState.SKIPPED, detail="opted out"))
            else:
                self._settled.append(Settled(recipient, RecipientState.GONE, detail=recipient.inactive_reason))
            return
        taken: list[Claim] = []

        async def claim() -> bool:
            self._claiming.add(recipient_key(recipient))
            taken.append(await self._fanout.records.claim(self._notification.id, recipient, clock.now()))
            return taken[-1].verdict is Verdict.CLAIMED

        result = await self._fanout.delivery.send_patiently(
            recipient, [self._activity], deadline=self._deadline, claim=claim
        )
        if result.outcome is Outcome.SKIPPED:
            if taken and taken[-1].verdict is Verdict.BUSY:
                self.later.append((recipient, SEND_LEASE.total_seconds()))
            return
        row = settled(recipient, taken[-1], result)
        self._settled.append(row)
        if row.state is RecipientState.RETRY:
            self.later.append((recipient, result.retry_after or 1.0))
        elif row.state is RecipientState.FAILED:
            log.warning("notification %s to %s failed: %s", self._notification.id, recipient.key, row.detail)

    async def _one_member(self, member: RosterMember) -> None:
        """A Teams user known from a roster: through their chat if one is stored, else claim,
        create the chat (stored for every later notification), and send."""
        fanout = self._fanout
        assert fanout.teams is not None
        chats = fanout.teams.chats
        existing = await chats.existing(member)
        if existing is not None:
            await self._one(existing)  # the same recipient row: keyed by the Teams user
            return
        taken: list[Claim] = []

        async def claim() -> bool:
            self._claiming.add(recipient_key(member))
            taken.append(await fanout.records.claim(self._notification.id, member, clock.now()))
            return taken[-1].verdict is Verdict.CLAIMED

        opened = await chats.open(member, deadline=self._deadline, claim=claim)
        if not taken or taken[-1].verdict is not Verdict.CLAIMED:
            if taken and taken[-1].verdict is Verdict.BUSY:
                self.later.append((member, SEND_LEASE.total_seconds()))
            return
        granted = taken[-1]
        if opened.reference is None:
            assert opened.failure is not None
            failure = dataclasses.replace(opened.failure, attempts=opened.attempts, throttled=opened.throttled)
            row = settled(member, granted, failure)
            self._settled.append(row)
            if row.state is RecipientState.RETRY:
                self.later.append((member, failure.retry_after or 1.0))
            else:
                log.warning("notification %s to %s: no chat: %s", self._notification.id, member.user_id, row.detail)
            return
        result = await fanout.delivery.send_patiently(opened.reference, [self._activity], deadline=self._deadline)
        row = dataclasses.replace(
            settled(opened.reference, granted, result), chat_created=True, conversation=opened.reference.conversation_id
        )
        self._settled.append(row)
        if row.state is RecipientState.RETRY:
            self.later.append((opened.reference, result.retry_after or 1.0))

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self._flush()

    async def _flush(self, *, at_once: bool = False) -> None:
        rows, self._settled = self._settled, []
        if rows:
            await self._fanout.records.settle(self._notification.id, rows, clock.now(), at_once=at_once)


def _batches(found: Sequence[StoredReference | RosterMember]) -> list[dict[str, list[dict[str, Any]]]]:
    """Split a page into batch message bodies that fit a queue message, one shard per batch, so
    that a batch's claims and outcomes go to one partition together."""
    by_shard: dict[int, list[StoredReference | RosterMember]] = {}
    for recipient in found:
        by_shard.setdefault(shard_of(recipient), []).append(recipient)
    batches: list[list[StoredReference | RosterMember]] = []
    for shard in sorted(by_shard):
        size = BATCH_BYTES  # start a new batch for every shard
        for recipient in by_shard[shard]:
            weight = len(json.dumps(_json_of(recipient))) + 1
            if size + weight > BATCH_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(recipient)
            size += weight
    return [_batch_body(batch) for batch in batches]


def _json_of(recipient: StoredReference | RosterMember) -> dict[str, Any]:
    return recipient.to_json() if isinstance(recipient, RosterMember) else recipient.reference


def _batch_body(recipients: Sequence[StoredReference | RosterMember]) -> dict[str, list[dict[str, Any]]]:
    """A batch message's recipients: stored conversations, and roster members (their chat to be
    created) apart."""
    body: dict[str, list[dict[str, Any]]] = {
        "recipients": [r.reference for r in recipients if isinstance(r, StoredReference)]
    }
    members = [r.to_json() for r in recipients if isinstance(r, RosterMember)]
    if members:
        body["members"] = members
    return body


@dataclasses.dataclass(frozen=True)
class _ChannelPost:
    """A teamChannel notification's one recipient: the channel (its row stays keyed by the
    channel; the thread it started is recorded as the row's conversation)."""

    conversation_id: str
    channel_id: str = TEAMS
    user_id: str = ""
    teams_user: str = ""


def settled(recipient: Recipient, claim: Claim, result: Result) -> Settled:
    """The row a delivery result leads to, counting what earlier deliveries tried; whether to
    try again is the notifications' retry policy (delivery.retries.NOTIFICATIONS)."""
    attempts = claim.attempts + result.attempts
    if result.outcome is Outcome.SENT:
        state = RecipientState.SENT
    elif result.outcome is Outcome.GONE:
        state = RecipientState.GONE
    elif result.retryable and not NOTIFICATIONS.exhausted(attempts):
        state = RecipientState.RETRY
    else:
        state = RecipientState.FAILED
    return Settled(recipient, state, attempts, claim.throttled + result.throttled, result.status, result.detail)
