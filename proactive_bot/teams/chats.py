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
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from .. import clock
from ..channel.adapter import ChannelAdapter
from ..channel.connector import ConnectorError
from ..channel.service_urls import ServiceUrlNotAllowed
from ..delivery.outcome import Outcome, Result
from ..delivery.rate_limits import RateLimiter
from ..delivery.retries import NOTIFICATIONS, RETRY_STATUSES, RetryPolicy
from ..delivery.sender import ClaimHook
from ..references import TEAMS, ReferenceStore, StoredReference
from .store import RosterMember

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
        self._limiter = limiter
        self._slots = slots  # Delivery.slots: creates and sends share one bound on requests in flight
        self._retries = retries

    @property
    def bot_account(self) -> dict[str, str]:
        return self._adapter.bot_account

    async def existing(self, member: RosterMember) -> StoredReference | None:
        """The user's personal chat with the bot, if one is stored (they wrote, or we created it)."""
        found = await self._references.find_user(TEAMS, member.user_id)
        return found if found is not None and found.teams_user == member.user_id else None

    async def open(self, member: RosterMember, *, deadline: float, claim: ClaimHook | None = None) -> Opened:
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
        attempts = throttled = 0
        while True:
            attempts += 1
            async with self._slots:
                failure = await self._attempt(member, parameters, claim if attempts == 1 else None)
            if isinstance(failure, dict):
                return Opened(await self._store(member, failure), attempts=attempts, throttled=throttled)
            throttled += failure.outcome is Outcome.THROTTLED
            if failure.outcome is Outcome.SKIPPED or not failure.retryable:
                return Opened(None, failure, attempts, throttled)
            wait = self._retries.delay(attempts, failure.retry_after)
            if time.monotonic() + wait > deadline or self._retries.exhausted(attempts):
                return Opened(
                    None,
                    Result(
                        failure.outcome,
                        failure.status,
                        failure.detail,
                        retry_after=max(wait, self._retries.first_delay),
                    ),
                    attempts,
                    throttled,
                )
            await asyncio.sleep(wait)

    async def _attempt(
        self, member: RosterMember, parameters: dict[str, Any], claim: ClaimHook | None
    ) -> dict[str, Any] | Result:
        # The claim is written while the slot approaches (as Delivery.send does), generously
        # early: a create that leaves late pushes back every later slot.
        permit = await self._limiter.acquire(TEAMS, "create|" + member.user_id, lead=CLAIM_LEAD if claim else 0.0)
        if claim is not None and not await claim():
            self._limiter.hand_back(permit)
            return Result(Outcome.SKIPPED, attempts=0)
        await self._limiter.wait_for_slot(permit)
        try:
            answer = await self._adapter.create_conversation_json(member.service_url, parameters)
        except ConnectorError as error:
            if error.status == 403:
                return Result(Outcome.FAILED, 403, f"{NOT_INSTALLED} ({error})", permanent=True)
            if error.status == 404:
                return Result(Outcome.FAILED, 404, f"{USER_NOT_FOUND} ({error})", permanent=True)
            if error.status == 429:
                # A create counts in the app's window as a send does: widen its margin, as
                # Delivery._attempt does for every 429.
                self._limiter.throttled(TEAMS, "create|" + member.user_id, error.retry_after)
                return Result(Outcome.THROTTLED, 429, str(error), error.retry_after)
            return Result(Outcome.FAILED, error.status, str(error), permanent=error.status not in RETRY_STATUSES)
        except (aiohttp.ClientError, TimeoutError) as error:
            return Result(Outcome.FAILED, detail=f"{type(error).__name__}: {error}")
        except ServiceUrlNotAllowed as error:
            return Result(Outcome.FAILED, detail=f"serviceUrl not allowed: {error}", permanent=True)
        if not isinstance(answer.get("id"), str) or not answer["id"]:
            return Result(Outcome.FAILED, 502, "the channel created no conversation id")
        return answer

    async def _store(self, member: RosterMember, answer: dict[str, Any]) -> StoredReference:
        # The shape botbuilder gives a personal chat's ConversationReference ("tenantID" is its
        # spelling), so a chat we created and one the user started are stored alike.
        reference = {
            "bot": self._adapter.bot_account,
            "user": {"id": member.user_id, "name": member.name, "aadObjectId": member.aad_object_id or None},
            "conversation": {"conversationType": "personal", "id": answer["id"], "tenantID": member.tenant_id},
            "channelId": TEAMS,
            "serviceUrl": answer.get("serviceUrl") or member.service_url,
        }
        reference["user"] = {k: v for k, v in reference["user"].items() if v}
        await self._references.save(reference, clock.now())
        return StoredReference.from_reference(reference, clock.now())

    async def post_to_channel(
        self, service_url: str, tenant_id: str, channel_id: str, activity: dict[str, Any]
    ) -> dict[str, Any] | Result:
        """Start a new thread in a channel with `activity` as its first post; returns the
        channel's answer ({"id": "<channel>;messageid=...", "activityId": ...}) or the failure."""
        parameters = {
            "bot": self._adapter.bot_account,
            "isGroup": True,
            "channelData": {"channel": {"id": channel_id}, "tenant": {"id": tenant_id}},
            "activity": activity,
        }
        permit = await self._limiter.acquire(TEAMS, channel_id)
        await self._limiter.wait_for_slot(permit)
        try:
            return await self._adapter.create_conversation_json(service_url, parameters)
        except ConnectorError as error:
            if error.status == 429:
                self._limiter.throttled(TEAMS, channel_id, error.retry_after or 1.0)
                return Result(Outcome.THROTTLED, 429, str(error), error.retry_after)
            gone = error.status in (403, 404)
            return Result(Outcome.GONE if gone else Outcome.FAILED, error.status, str(error))
        except (aiohttp.ClientError, TimeoutError) as error:
            return Result(Outcome.FAILED, detail=f"{type(error).__name__}: {error}")
        except ServiceUrlNotAllowed as error:
            return Result(Outcome.FAILED, detail=f"serviceUrl not allowed: {error}", permanent=True)
