"""The turn as the bot's logic sees it: a small interface this package provides, free of the SDK.

The bot's logic (`proactive_bot.bot`) receives a `Turn`: what came in (`Inbound`, plain data) and
a way to answer (`send`). It implements `TurnLogic`; `handler.py` calls it from botbuilder's
ActivityHandler. A port to the Microsoft 365 Agents SDK re-implements handler.py and keeps this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Member:
    """Someone added to a conversation (the bot itself included, as channels report it)."""

    id: str
    name: str = ""
    aad_object_id: str = ""


@dataclass(frozen=True)
class TeamsEvent:
    """A Teams install or roster event, as plain data: an `installationUpdate` (`action` add,
    remove, add-upgrade, remove-upgrade) or a `conversationUpdate` with `channelData.eventType`
    (teamMemberAdded/Removed, teamRenamed, teamDeleted, channelCreated/Renamed/Deleted, ...)."""

    type: str  # "installationUpdate" or "conversationUpdate"
    event_type: str  # channelData.eventType ("" when none)
    action: str  # installationUpdate's action ("" otherwise)
    service_url: str
    tenant_id: str
    conversation_id: str
    conversation_type: str  # "personal", "groupChat" or "channel"
    bot_id: str
    team_id: str = ""  # channelData.team
    team_name: str = ""
    team_aad_group_id: str = ""
    channel_id: str = ""  # channelData.channel (channel events)
    channel_name: str = ""
    members_added: tuple[Member, ...] = ()
    members_removed: tuple[Member, ...] = ()


@dataclass(frozen=True)
class Inbound:
    """The inbound activity, as much of it as the bot's logic reads."""

    type: str
    channel_id: str
    conversation_id: str
    user_id: str
    user_name: str
    bot_id: str  # the recipient: who the bot is in this conversation
    text: str  # the command: the text without the bot's @mention (a card click has none)
    value: Any  # a card click's data
    zone_hint: str | None  # the IANA zone the client reported, if any
    reference: dict[str, Any]  # the conversation's address, exactly as stored
    name: str = ""  # an event's name (e.g. Teams' read receipt, "application/vnd.microsoft.readReceipt")


class BeforeReply(Protocol):
    async def __call__(self, inbound: Inbound) -> None:
        """Waits until a reply to `inbound` may leave (its budget's interactive lane)."""


class Turn(Protocol):
    inbound: Inbound

    async def send(self, activity: str | dict[str, Any]) -> None:
        """Answer in this conversation: text, or an activity dict (see `proactive_bot.activities`)."""


class TurnLogic(Protocol):
    async def on_turn(self, turn: Turn) -> None:
        """Every inbound activity, before the ones below."""

    async def on_message(self, turn: Turn) -> None: ...

    async def on_members_added(self, turn: Turn, members: list[Member]) -> None: ...

    async def on_event(self, turn: Turn) -> None:
        """An event activity (`inbound.name` says which), e.g. a read receipt."""

    async def on_teams_event(self, turn: Turn, event: TeamsEvent) -> None:
        """A Teams install/uninstall, roster or rename event (after `on_turn`)."""
