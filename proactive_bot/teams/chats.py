"""Creating conversations in Teams: a user's 1:1 chat with the bot, and a new channel thread.

`POST {serviceUrl}/v3/conversations` with `bot`, `members: [{"id": "29:..."}]`, `tenantId`,
`channelData.tenant.id` and `isGroup: false` answers the chat's id (the same one each time for
the same user). The chat is stored as the user's address (ReferenceStore), so every later
notification finds it and creates nothing. Teams answers 403 when the app is not installed for
the user (neither personally nor in a team they are in): that is final for this notification,
never retried. Creates are paced by the same RateLimiter as sends: they count in the app's
requests per second.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import clock
from ..channel.adapter import ChannelAdapter
from ..delivery.calls import Calls, ClaimHook, Reply, patiently
from ..delivery.lanes import Lane
from ..delivery.outcome import Outcome, Result
from ..delivery.rate_limits import RateLimiter
from ..delivery.retries import NOTIFICATIONS, RetryPolicy
from ..references import TEAMS, ReferenceStore, StoredReference
from .rows import RosterMember

NOT_INSTALLED = "not installed for this user"
USER_NOT_FOUND = "user not found in the tenant"
CLAIM_LEAD = 0.3  # seconds before its slot a create's claim is written


@dataclass(frozen=True)
class Opened:
    """A created (or found) chat, or why there is none."""

    reference: StoredReference | None
    failure: Result | None = None
    attempts: int = 0
    throttled: int = 0


class ChatOpener:
    def __init__(
        self,
        adapter: ChannelAdapter,
        references: ReferenceStore,
        limiter: RateLimiter,
        slots: asyncio.Semaphore,
        retries: RetryPolicy = NOTIFICATIONS,
    ) -> None:
        self._adapter = adapter
        self._references = references
        # Delivery.slots: creates, posts and sends share one bound on requests in flight.
        self._calls = Calls(limiter, slots)
        self._retries = retries

    @property
    def bot_account(self) -> dict[str, str]:
        return self._adapter.bot_account

    async def existing(self, member: RosterMember) -> StoredReference | None:
        """The user's personal chat with the bot, if one is stored (they wrote, or we created it)."""
        found = await self._references.find_user(TEAMS, member.user_id)
        return found if found is not None and found.teams_user == member.user_id else None

    async def open(
        self, member: RosterMember, *, deadline: float, claim: ClaimHook | None = None, lane: Lane = Lane.BULK
    ) -> Opened:
        """Create the user's 1:1 chat and store it; retries 429/5xx until `deadline` (monotonic).

        `claim` runs once, when the create's slot approaches (as in `Delivery.send`); if it
        answers False nothing is created and the result is SKIPPED.
        """
        parameters = {
            "bot": self._adapter.bot_account,
            "members": [{"id": member.user_id}],
            "isGroup": False,
            "tenantId": member.tenant_id,
            "channelData": {"tenant": {"id": member.tenant_id}},
        }

        async def attempt(number: int) -> Reply[dict[str, Any]]:
            return await self._create(member, parameters, claim if number == 1 else None, lane)

        reply = await patiently(attempt, self._retries, deadline=deadline, bounded=True)
        result = reply.result
        if reply.value is not None:
            return Opened(await self._store(member, reply.value), attempts=result.attempts, throttled=result.throttled)
        return Opened(None, result, result.attempts, result.throttled)

    async def _create(
        self, member: RosterMember, parameters: dict[str, Any], claim: ClaimHook | None, lane: Lane
    ) -> Reply[dict[str, Any]]:
        # The claim is written while the slot approaches (as Delivery.send does), generously
        # early: a create that leaves late pushes back every later slot.
        reply = await self._calls.make(
            TEAMS,
            "create|" + member.user_id,
            lambda: self._adapter.create_conversation_json(member.service_url, parameters),
            claim=claim,
            lead=CLAIM_LEAD,
            lane=lane,  # the lane of the send it precedes
            tenant_id=member.tenant_id,
        )
        result = reply.result
        if result.outcome is Outcome.GONE:
            # What "gone" means to a create: Teams answers 403 when the app is not installed for
            # the user, 404 when the tenant has no such user. Final for this notification; no
            # address to mark, since none is stored.
            reason = NOT_INSTALLED if result.status == 403 else USER_NOT_FOUND
            failed = Result(Outcome.FAILED, result.status, f"{reason} ({result.detail})", permanent=True)
            return Reply(dataclasses.replace(failed, code=result.code))
        if reply.value is not None and not (isinstance(reply.value.get("id"), str) and reply.value["id"]):
            return Reply(Result(Outcome.FAILED, 502, "the channel created no conversation id"))
        return reply

    async def _store(self, member: RosterMember, answer: dict[str, Any]) -> StoredReference:
        # The shape botbuilder gives a personal chat's ConversationReference ("tenantID" is its
        # spelling), so a chat we created and one the user started are stored alike.
        user = {"id": member.user_id, "name": member.name, "aadObjectId": member.aad_object_id}
        reference = {
            "bot": self._adapter.bot_account,
            "user": {k: v for k, v in user.items() if v},
            "conversation": {"conversationType": "personal", "id": answer["id"], "tenantID": member.tenant_id},
            "channelId": TEAMS,
            "serviceUrl": answer.get("serviceUrl") or member.service_url,
        }
        await self._references.save(reference, clock.now())
        return StoredReference.from_reference(reference, clock.now())

    async def post_to_channel(
        self,
        service_url: str,
        tenant_id: str,
        channel_id: str,
        activity: dict[str, Any],
        *,
        lane: Lane = Lane.URGENT,
    ) -> dict[str, Any] | Result:
        """Start a new thread in a channel with `activity` as its first post; returns the
        channel's answer ({"id": "<channel>;messageid=...", "activityId": ...}) or the failure.

        One attempt (the caller retries through its work queue). A 403/404 is GONE (the bot is
        no longer in the team, or the channel was deleted): reported, nothing to mark, since the
        team's install row says what the bot can reach."""
        parameters = {
            "bot": self._adapter.bot_account,
            "isGroup": True,
            "channelData": {"channel": {"id": channel_id}, "tenant": {"id": tenant_id}},
            "activity": activity,
        }
        reply = await self._calls.make(
            TEAMS,
            channel_id,
            lambda: self._adapter.create_conversation_json(service_url, parameters),
            lane=lane,
            tenant_id=tenant_id,
        )
        return reply.value if reply.value is not None else reply.result
