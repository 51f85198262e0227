"""teamChannel notifications: a new thread in a channel, or (replyTo) a reply in the thread an
earlier one started. Delivered inline, by the invocation that takes the notification.

The notification's one recipient row is keyed by the channel (`TeamsChannelPost`); the thread the
post started is recorded as the row's conversation, which is where a later replyTo finds it.
A post that runs out of its invocation's retries comes back as a "post" work message.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from .. import clock
from ..channel.activity import outgoing
from ..delivery.outcome import Outcome, Result
from ..delivery.sender import Delivery
from ..references import TEAMS, StoredReference
from ..teams.reach import TeamsReach
from ..work import PostWork, WorkQueue
from . import personalize
from .contract import OnCrash
from .lanes import lane_of
from .records import SEND_LEASE, Header, NotificationStore, RecipientState, Settled, Verdict, settled


@dataclass(frozen=True)
class TeamsChannelPost:
    """A teamChannel notification's one recipient: the Teams channel (its row stays keyed by
    the channel; the thread it started is recorded as the row's conversation)."""

    teams_channel_id: str
    channel_id: str = TEAMS
    user_id: str = ""
    teams_user: str = ""

    @property
    def conversation_id(self) -> str:
        """What the row is keyed by (records.keys): the Teams channel, where every post starts."""
        return self.teams_channel_id


@dataclass
class TeamsChannelPosts:
    """Posts teamChannel notifications (Fanout hands them over: on arrival, when due, "post" work)."""

    records: NotificationStore
    delivery: Delivery
    work: WorkQueue
    teams: TeamsReach | None
    retry_budget: float

    async def post(self, header: Header, retry_budget: float | None = None) -> None:
        """A new thread in a channel, or (replyTo) a reply in the thread an earlier one started;
        a reply is retried for `retry_budget` seconds (default: the invocation's)."""
        notification = header.notification
        spec = notification.to["teamChannel"]
        post = TeamsChannelPost(spec["channelId"])
        team = await self.teams.store.team(spec["teamId"]) if self.teams is not None else None
        if team is None or not team.active:
            if not header.planned:
                note = "team not installed: nothing sent" if self.teams else "Teams audiences are not configured"
                await self.records.advance(header, found=0, cursor=None, planned=True, note=note)
            return
        if not header.planned:
            await self.records.advance(header, found=1, cursor=None, planned=True)
        claim = await self.records.claim(
            notification.id, post, clock.now(), resend_on_crash=notification.on_crash is OnCrash.RESEND
        )
        if claim.verdict is Verdict.BUSY:
            # Held by a post in flight, or by one whose invocation died mid-request: looked at
            # again once its lease is out (settled then, or resent with onCrash "resend"), as a
            # batch does with its busy recipients.
            await self.work.put(PostWork(notification=notification.id), delay=SEND_LEASE.total_seconds())
            return
        if claim.verdict is not Verdict.CLAIMED:
            return
        # The record read again after the claim, as a batch's may_send does: a DELETE that marked
        # it first stops the post (one that marks it later waits for this row), and an edit
        # meanwhile is what gets posted (a post's row cannot be edited later).
        try:
            current = await self.records.header(notification.id)
        except Exception as error:
            row = Settled(
                post, RecipientState.RETRY, claim.attempts, claim.throttled, detail=f"cancel check failed: {error}"
            )
            await self._settle(notification.id, row, 1.0)
            return
        if current is None or current.cancelled or current.notification.expired(clock.now()):
            stop = RecipientState.EXPIRED if current is not None and not current.cancelled else RecipientState.CANCELLED
            await self._settle(notification.id, Settled(post, stop, claim.attempts, claim.throttled), None)
            return
        activity = personalize.activity_for(current.notification, personalize.Person())  # no one: defaults
        if spec.get("replyTo"):
            thread = await self._thread_of(spec["replyTo"])
            if thread is None:
                row = Settled(
                    post, RecipientState.FAILED, claim.attempts + 1, detail=f"no thread started by {spec['replyTo']!r}"
                )
                await self._settle(notification.id, row, None)
                return
            reference = {
                "bot": self._bot_account(),
                "channelId": TEAMS,
                "serviceUrl": team.service_url,
                "conversation": {
                    "id": thread,
                    "isGroup": True,
                    "conversationType": "channel",
                    "tenantID": team.tenant_id,
                },
            }
            result = await self.delivery.send_patiently(
                StoredReference.from_reference(reference, clock.now()),
                [outgoing(activity)],
                deadline=time.monotonic() + (self.retry_budget if retry_budget is None else retry_budget),
                lane=lane_of(notification),
            )
            row = dataclasses.replace(settled(post, claim, result, whole_run=True), conversation=thread)
            retry_after = result.retry_after
        else:
            assert self.teams is not None
            answer = await self.teams.chats.post_to_channel(
                team.service_url, team.tenant_id, spec["channelId"], activity, lane=lane_of(notification)
            )
            if isinstance(answer, dict):
                sent = Result(Outcome.SENT, 200, activity_id=answer.get("activityId"))
                row = dataclasses.replace(settled(post, claim, sent), conversation=str(answer.get("id", "")))
                retry_after = None
            else:
                row, retry_after = settled(post, claim, answer), answer.retry_after  # one attempt
        await self._settle(notification.id, dataclasses.replace(row, version=current.version), retry_after)

    async def _settle(self, notification_id: str, row: Settled, retry_after: float | None) -> None:
        """A channel post's row; one to retry comes back as a "post" work message."""
        await self.records.settle(notification_id, [row], clock.now(), at_once=True)
        if row.state is RecipientState.RETRY:
            await self.work.put(PostWork(notification=notification_id), delay=retry_after or 1.0)

    async def _thread_of(self, notification_id: str) -> str | None:
        """The thread an earlier teamChannel notification started: its one row, read by its key."""
        header = await self.records.header(notification_id)
        if header is None or "teamChannel" not in header.notification.to:
            return None  # any other notification's rows are chats, not threads to reply in
        row = await self.records.row(
            notification_id, TeamsChannelPost(header.notification.to["teamChannel"]["channelId"])
        )
        if row is None or row.state is not RecipientState.SENT:
            return None
        return row.conversation_id or None

    def _bot_account(self) -> dict[str, str]:
        assert self.teams is not None
        return self.teams.chats.bot_account
