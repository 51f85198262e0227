"""Teams install, uninstall, roster and rename events: what the bot records from each.

| event                                                   | effect                                   |
|---------------------------------------------------------|------------------------------------------|
| installationUpdate add / add-upgrade in a team; the bot | team stored (id, name, tenant,           |
| in membersAdded of a team (teamMemberAdded)             | serviceUrl, General channel); roster     |
|                                                         | walk queued (roster.py)                  |
| ... in a group chat                                     | chat stored as installed                 |
| installationUpdate remove / remove-upgrade; the bot in  | team (its channels, its members' reach   |
| membersRemoved; teamDeleted                             | through it) or chat marked inactive      |
| teamMemberAdded / teamMemberRemoved (users)             | roster members added / made unreachable  |
| teamRenamed, channelCreated/Renamed/Deleted             | stored names and channels kept current   |

Each handler is idempotent: Teams may send both an installationUpdate and a conversationUpdate
for one install, and may send either twice.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta

from .. import clock
from ..channel.turn import TeamsEvent
from ..references import TEAMS, ReferenceStore
from .roster import RosterWalk
from .rows import RosterMember, RosterState
from .store import TeamsStore

log = logging.getLogger(__name__)

WELCOME_AGAIN_AFTER = timedelta(hours=24)  # a reinstall within a day is not welcomed twice


class Change(enum.Enum):
    """What a Teams event means for the bot's reach."""

    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"
    MEMBERS_ADDED = "membersAdded"
    MEMBERS_REMOVED = "membersRemoved"
    TEAM_RENAMED = "teamRenamed"
    CHANNEL_SAVED = "channelSaved"  # created or renamed
    CHANNEL_DELETED = "channelDeleted"
    NONE = "none"


def changes_of(event: TeamsEvent) -> list[Change]:
    bot_added = any(m.id == event.bot_id for m in event.members_added)
    bot_removed = any(m.id == event.bot_id for m in event.members_removed)
    if event.type == "installationUpdate":
        if event.action in ("add", "add-upgrade"):
            return [Change.INSTALLED]
        if event.action in ("remove", "remove-upgrade"):
            return [Change.UNINSTALLED]
        return [Change.NONE]
    found: list[Change] = []
    if bot_added:
        found.append(Change.INSTALLED)
    if bot_removed or event.event_type == "teamDeleted":
        found.append(Change.UNINSTALLED)
    if any(m.id != event.bot_id for m in event.members_added):
        found.append(Change.MEMBERS_ADDED)
    if any(m.id != event.bot_id for m in event.members_removed):
        found.append(Change.MEMBERS_REMOVED)
    if event.event_type == "teamRenamed":
        found.append(Change.TEAM_RENAMED)
    if event.event_type in ("channelCreated", "channelRenamed", "channelRestored"):
        found.append(Change.CHANNEL_SAVED)
    if event.event_type == "channelDeleted":
        found.append(Change.CHANNEL_DELETED)
    return found or [Change.NONE]


class TeamsInstalls:
    def __init__(self, store: TeamsStore, roster: RosterWalk, references: ReferenceStore) -> None:
        self._store = store
        self._roster = roster
        self._references = references

    async def first_welcome(self, channel_id: str, conversation_id: str, user_id: str) -> bool:
        """Whether to welcome this user here: not if they were welcomed here within a day."""
        return await self._store.claim_welcome(channel_id, conversation_id, user_id, clock.now(), WELCOME_AGAIN_AFTER)

    async def handle(self, event: TeamsEvent) -> None:
        for change in changes_of(event):
            await self._apply(change, event)

    async def _apply(self, change: Change, event: TeamsEvent) -> None:
        in_team = bool(event.team_id) and event.conversation_type in ("channel", "")
        if change is Change.INSTALLED:
            if in_team:
                team, fresh = await self._store.install_team(
                    event.team_id,
                    event.team_name,
                    event.tenant_id,
                    event.service_url,
                    event.team_aad_group_id,
                    clock.now(),
                )
                await self._store.save_channel(team.team_id, team.general_channel_id, "General")
                if fresh:
                    log.info("installed in team %s (%s): reading its roster", event.team_id, event.team_name)
                if team.roster_state is RosterState.WALKING:
                    # Also on a repeated event while the walk is unfinished: if queueing failed
                    # after the team was recorded (storage down, a crash), nothing else would
                    # ever start it. A second walk message is harmless (roster.py).
                    await self._roster.start(team.team_id)
            elif event.conversation_type == "groupChat":
                await self._store.save_chat(event.conversation_id, event.tenant_id, event.service_url, active=True)
        elif change is Change.UNINSTALLED:
            reason = "team deleted" if event.event_type == "teamDeleted" else "app uninstalled"
            if in_team:
                reached = await self._store.uninstall_team(event.team_id, reason)
                general = await self._references.get(TEAMS, event.team_id)
                if general is not None:
                    await self._references.mark_inactive(general, reason)
                log.info(
                    "team %s: %s; %d roster member(s) no longer reached through it", event.team_id, reason, reached
                )
            elif event.conversation_type == "groupChat":
                await self._store.save_chat(
                    event.conversation_id, event.tenant_id, event.service_url, active=False, reason=reason
                )
                chat = await self._references.get(TEAMS, event.conversation_id)
                if chat is not None:
                    await self._references.mark_inactive(chat, reason)
        elif change is Change.MEMBERS_ADDED and in_team:
            known = await self._store.team(event.team_id)
            if known is not None and known.active:
                await self._store.save_members(
                    event.team_id,
                    [
                        RosterMember(m.id, m.aad_object_id, m.name, event.tenant_id, event.service_url)
                        for m in event.members_added
                        if m.id != event.bot_id
                    ],
                )
        elif change is Change.MEMBERS_REMOVED and in_team:
            await self._store.remove_members(
                event.team_id, [m.id for m in event.members_removed if m.id != event.bot_id]
            )
        elif change is Change.TEAM_RENAMED and event.team_name:
            await self._store.rename_team(event.team_id, event.team_name)
        elif change is Change.CHANNEL_SAVED and event.channel_id:
            await self._store.save_channel(event.team_id, event.channel_id, event.channel_name)
        elif change is Change.CHANNEL_DELETED and event.channel_id:
            await self._store.save_channel(event.team_id, event.channel_id, event.channel_name, active=False)
