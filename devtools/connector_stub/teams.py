"""Teams' side of the Connector API for reaching people the bot has not heard from: team rosters
(`GET /v3/conversations/{teamId}/pagedmembers`) and new conversations (`POST /v3/conversations`).

`connector_stub.ConnectorStub` owns one `TeamsDirectory` (`stub.teams`) and hands these two
routes to it. Shapes follow Microsoft's docs ("Get paged members", "Proactive messages",
"Bot API changes for team and chat members"):

* a paged members page is `{"members": [TeamsChannelAccount...], "continuationToken": "..."}`,
  the token absent on the last page; members carry `id` ("29:..."), `name`, `aadObjectId`,
  `givenName`, `surname`, `email`, `userPrincipalName`, `tenantId`, `userRole`
  ("user", "guest", "anonymous"). `pageSize` above 500 is served as 500; an unknown token is 400.
* creating a 1:1 chat (`isGroup` false, one member `{"id": "29:..."}` or
  `{"id": "8:orgid:<aadObjectId>"}`, `tenantId`, `channelData.tenant.id`) answers
  201 Created `{"id": "a:..."}`, the same id each time for the same user, as Teams does; a user
  for whom the app is not installed gets 403 (`not_installed_for`), an unknown one 404.
* a channel post (`isGroup` true, `channelData.channel.id`, `activity`) answers 201
  `{"id": "<channel>;messageid=<activity id>", "activityId": "<activity id>"}`: a new thread.
  (Teams answers creates 201, as Microsoft 365 Agents Playground does; sends answer 200 here,
  which the Connector API allows beside 201.)

Rate limits, when the owning stub has them on, are Teams' documented per-thread limits for
"Get conversation members" (14/1 s, 16/2 s, 120/30 s, 3600/h) per team; creates and roster reads
also count in the per-tenant window the owning stub keeps (`tenant_of` tells it whose: a team's
tenant is the one it was added with, a chat's the one it was created in).
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .teams_limits import RateLimits, Window

TENANT: Final = "72f988bf-86f1-41af-91ab-2d7cd011db47"
MAX_PAGE_SIZE: Final = 500
MIN_PAGE_SIZE: Final = 50  # Teams serves smaller pages as 50 (pageSize below it is raised)
PAGED_MEMBERS_LIMITS: Final[tuple[Window, ...]] = ((14, 1.0), (16, 2.0), (120, 30.0), (3600, 3600.0))
CREATED: Final = 201  # what Teams answers a new conversation (1:1 chat or channel thread)
ORG_ID_PREFIX: Final = "8:orgid:"  # a member named by Entra object id instead of Teams user id


@dataclass(frozen=True, slots=True)
class Reply:
    """How the stub answers: status, JSON payload, Connector error code, the id it assigned."""

    status: int
    payload: Any = None
    error_code: str | None = None
    conversation_id: str | None = None
    retry_after: int | None = None


def teams_member(index: int, tenant_id: str = TENANT, *, team: str = "t") -> dict[str, Any]:
    """A member as the paged members API returns one (deterministic for a team and index)."""
    given, surname = f"User{index}", f"{team[-6:]}"
    return {
        "id": f"29:1{uuid.uuid5(uuid.NAMESPACE_URL, f'{team}/{index}').hex}-Xq9rTbW",
        "name": f"{given} {surname}",
        "aadObjectId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{team}/{index}")),
        "givenName": given,
        "surname": surname,
        "email": f"user{index}@contoso.example",
        "userPrincipalName": f"user{index}@contoso.example",
        "tenantId": tenant_id,
        "userRole": "user",
    }


def _error(status: int, code: str, message: str, retry_after: int | None = None) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, code, retry_after=retry_after)


class TeamsDirectory:
    """Teams, their rosters, and the 1:1 chats the bot has created. See the module docstring."""

    def __init__(self) -> None:
        self._rosters: dict[str, list[dict[str, Any]]] = {}
        self._tenants: dict[str, str] = {}  # team or created chat id → its tenant
        self._by_user: dict[str, dict[str, Any]] = {}  # Teams user id and 8:orgid:<aad> → member
        self._not_installed: set[str] = set()
        self._chats: dict[str, str] = {}  # Teams user id → the 1:1 chat's id
        self._ids = itertools.count(1)
        self._limited = False
        # Per team: Teams limits roster reads per thread, as sends are limited per conversation.
        self._member_limits = RateLimits(per_conversation=PAGED_MEMBERS_LIMITS)
        self.creates_by_user: dict[str, int] = {}  # accepted 1:1 creates per Teams user id
        self._garbled: dict[str, deque[Any]] = {}  # team id → bodies its next page reads answer

    # ---- set-up ----------------------------------------------------------------------------

    def add_team(
        self, team_id: str, members: int | Iterable[Mapping[str, Any]], tenant_id: str = TENANT
    ) -> list[dict[str, Any]]:
        """Register a team's roster: n generated members, or the given member dicts."""
        roster = (
            [teams_member(i, tenant_id, team=team_id) for i in range(members)]
            if isinstance(members, int)
            else [dict(m) for m in members]
        )
        self._rosters[team_id] = roster
        self._tenants[team_id] = tenant_id
        for member in roster:
            self._by_user[member["id"]] = member
            if member.get("aadObjectId"):
                self._by_user[ORG_ID_PREFIX + member["aadObjectId"]] = member
        return roster

    def roster(self, team_id: str) -> list[dict[str, Any]]:
        return list(self._rosters.get(team_id, ()))

    def not_installed_for(self, *user_ids: str) -> None:
        """Creating a 1:1 chat with these users answers 403, as Teams does when the app is not
        installed for them (nor in a team they are in)."""
        self._not_installed.update(user_ids)

    def garble_next_page(self, team_id: str, body: Any) -> None:
        """The team's next paged members read answers 200 with `body` as it is instead of a page
        (JSON; bytes: sent raw; None: an empty body): a channel or proxy fault, for tests of
        what the bot does with a malformed page. Calls queue up, one read each."""
        self._garbled.setdefault(team_id, deque()).append(body)

    def limit(self, on: bool = True) -> None:
        self._limited = on
        self._member_limits.reset()

    def chat_of(self, user_id: str) -> str | None:
        return self._chats.get(user_id)

    def tenant_of(self, conversation_id: str) -> str | None:
        """The tenant of a team this directory holds, or of a chat it created (None: unknown)."""
        return self._tenants.get(conversation_id)

    def roster_retry_after(self, team_id: str, now: float) -> int | None:
        """Whether the team's roster windows have room for one more read now (None), else the
        Retry-After; counts nothing, so the owning stub can check its own windows too first."""
        return self._member_limits.retry_after(team_id, now) if self._limited else None

    # ---- routes ----------------------------------------------------------------------------

    def paged_members(self, team_id: str, query: Mapping[str, str], now: float) -> Reply:
        roster = self._rosters.get(team_id)
        if roster is None:
            return _error(404, "ConversationNotFound", "Conversation not found.")
        if self._limited:
            retry_after = self._member_limits.try_admit(team_id, now)
            if retry_after is not None:
                return _error(429, "Throttled", "Too many requests.", retry_after=retry_after)
        if self._garbled.get(team_id):
            return Reply(200, self._garbled[team_id].popleft())
        try:
            size = int(query.get("pageSize") or MAX_PAGE_SIZE)
        except ValueError:
            return _error(400, "BadArgument", "pageSize must be a number.")
        size = min(MAX_PAGE_SIZE, max(MIN_PAGE_SIZE, size))
        start = 0
        token = query.get("continuationToken")
        if token:
            offset = _offset_of(token, team_id)
            if offset is None:
                return _error(400, "BadArgument", "Invalid continuation token.")
            start = offset
        page = roster[start : start + size]
        payload: dict[str, Any] = {"members": [dict(m) for m in page]}
        if start + size < len(roster):
            payload["continuationToken"] = _token(team_id, start + size)
        return Reply(200, payload)

    def handles(self, body: Any) -> bool:
        """Whether a create is Teams' to answer: a channel post, or a 1:1 chat with a user this
        directory knows (from a roster, or named by `not_installed_for`) or one named by Entra
        object id ("8:orgid:...", a form only Teams takes: unknown ones are its 404)."""
        if not isinstance(body, dict):
            return False
        channel_data = found if isinstance(found := body.get("channelData"), dict) else {}
        if isinstance(channel_data.get("channel"), dict):
            return True
        members = body.get("members")
        ids = {str(m.get("id")) for m in members if isinstance(m, dict)} if isinstance(members, list) else set()
        return bool(ids & (self._by_user.keys() | self._not_installed)) or any(i.startswith(ORG_ID_PREFIX) for i in ids)

    def create_conversation(self, body: Mapping[str, Any], new_activity_id: str) -> Reply:
        """POST /v3/conversations: a 1:1 chat, or (isGroup with a channel) a new channel thread."""
        channel_data = found if isinstance(found := body.get("channelData"), dict) else {}
        channel = channel_data.get("channel") if isinstance(channel_data.get("channel"), dict) else None
        if body.get("isGroup") and channel and channel.get("id"):
            if not isinstance(body.get("activity"), dict):
                return _error(400, "BadArgument", "A channel conversation needs an activity.")
            thread = f"{channel['id']};messageid={new_activity_id}"
            tenant_id = body.get("tenantId") or (channel_data.get("tenant") or {}).get("id")
            self._tenants[thread] = str(tenant_id or self._tenants.get(str(channel["id"]), ""))
            return Reply(CREATED, {"id": thread, "activityId": new_activity_id}, conversation_id=thread)
        members = body.get("members")
        if (
            body.get("isGroup")
            or not isinstance(members, list)
            or len(members) != 1
            or not isinstance(members[0], dict)
        ):
            return _error(400, "BadArgument", "A 1:1 conversation needs exactly one member and isGroup false.")
        tenant = body.get("tenantId") or (channel_data.get("tenant") or {}).get("id")
        if not tenant:
            return _error(400, "BadArgument", "The tenant id is required.")
        member = self._by_user.get(str(members[0].get("id", "")))
        if member is None:
            return _error(404, "NotFound", "The user was not found.")
        user_id = member["id"]
        if user_id in self._not_installed or (
            member.get("aadObjectId") and member["aadObjectId"] in self._not_installed
        ):
            return _error(403, "BotNotInConversationRoster", "The bot is not part of the conversation roster.")
        chat = self._chats.get(user_id)
        if chat is None:
            chat = self._chats[user_id] = f"a:1{uuid.uuid4().hex}{next(self._ids)}"
        self._tenants[chat] = str(tenant)
        self.creates_by_user[user_id] = self.creates_by_user.get(user_id, 0) + 1
        return Reply(CREATED, {"id": chat}, conversation_id=chat)


def _token(team_id: str, offset: int) -> str:
    # Opaque to clients, as Teams' are; bound to the team so another team's token is refused.
    return base64.urlsafe_b64encode(f"{team_id}|{offset}".encode()).decode()


def _offset_of(token: str, team_id: str) -> int | None:
    try:
        team, _, offset = base64.urlsafe_b64decode(token.encode()).decode().rpartition("|")
        return int(offset) if team == team_id and int(offset) >= 0 else None
    except (ValueError, UnicodeDecodeError):
        return None
