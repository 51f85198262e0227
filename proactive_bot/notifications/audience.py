"""A notification's `to`, read once into what it names (the contract's schema says which shapes
there are; `audience_of` turns a validated `to` into one of these, and the rest `match`es on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ToUser:
    """One user, by their id on a Bot Framework channel (msteams, directline, ...)."""

    channel_id: str
    user_id: str


@dataclass(frozen=True, kw_only=True)
class ToConversation:
    channel_id: str
    conversation_id: str


@dataclass(frozen=True, kw_only=True)
class ToAadUser:
    """One Entra ID user: their chat, else their roster entry (a chat created for them)."""

    aad_object_id: str
    tenant_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ToEveryone:
    """Every stored conversation (of one channel, one tenant), and with `include_roster` every
    Teams user known from a roster after them."""

    channel_id: str | None = None
    tenant_id: str | None = None
    include_roster: bool = False


@dataclass(frozen=True, kw_only=True)
class ToTeam:
    """Every member of a Teams team the app is installed in, each in their 1:1 chat."""

    team_id: str


@dataclass(frozen=True, kw_only=True)
class ToAadUsers:
    """Teams users by Entra object id; the list itself is stored beside the record (the
    document's copy is empty once recorded: NotificationStore.audience reads it)."""

    aad_object_ids: tuple[str, ...]
    tenant_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ToTeamChannel:
    """A post in a Teams channel (`teams_channel_id`), or a reply in the thread an earlier
    teamChannel notification (`reply_to`) started."""

    team_id: str
    teams_channel_id: str
    reply_to: str | None = None


Audience = ToUser | ToConversation | ToAadUser | ToEveryone | ToTeam | ToAadUsers | ToTeamChannel
Broadcast = ToEveryone | ToTeam | ToAadUsers  # walked in pages


def audience_of(to: dict[str, Any]) -> Audience:
    """A `to` the contract has validated, as what it names."""
    if "teamChannel" in to:
        spec = to["teamChannel"]
        return ToTeamChannel(team_id=spec["teamId"], teams_channel_id=spec["channelId"], reply_to=spec.get("replyTo"))
    if "teamId" in to:
        return ToTeam(team_id=to["teamId"])
    if "aadObjectIds" in to:
        return ToAadUsers(aad_object_ids=tuple(to["aadObjectIds"]), tenant_id=to.get("tenantId"))
    if to.get("all"):
        return ToEveryone(
            channel_id=to.get("channelId"), tenant_id=to.get("tenantId"), include_roster=bool(to.get("includeRoster"))
        )
    if "userId" in to:
        return ToUser(channel_id=to["channelId"], user_id=to["userId"])
    if "conversationId" in to:
        return ToConversation(channel_id=to["channelId"], conversation_id=to["conversationId"])
    if "aadObjectId" in to:
        return ToAadUser(aad_object_id=to["aadObjectId"], tenant_id=to.get("tenantId"))
    raise ValueError(f"not an audience the contract allows: {sorted(to)}")
