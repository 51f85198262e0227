"""Where the bot is installed in Teams, and who it can reach through those installs.

One table (setting `TeamsTable`):

    PartitionKey        RowKey          holds
    team                <team id>       name, tenant, serviceUrl, General channel, active, the
                                        roster walk's cursor and state
    channel|<team id>   <channel id>    the channel's name, active
    chat                <chat id>       a group chat the app is installed in, active
    member|<team id>    <user id>       one roster member ("29:..."): aadObjectId, name, UPN,
                                        tenant, role, serviceUrl, active
    user                <user id>       a reachable user; a flag per team they are reachable
                                        through ("t<hash of the team id>": true/false)
    aad                 <aadObjectId>   → the user id (for audiences named by Entra object id)
    tenant              <tenant id>     a serviceUrl the tenant's installs came from
    welcome             <channel|conversation|user>  when the bot last welcomed that user there

A user is reachable while one of their team flags is true: uninstalling a team turns its flags
off, and nothing reaches a user through a team that is gone. Keys go through `table_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ..storage.keys import table_key
from ..storage.paging import one_page
from .rows import RosterMember, RosterState, Team, member_of, reachable, team_flag

_TEAM = "team"
_CHANNEL = "channel|"
_CHAT = "chat"
_MEMBER = "member|"
_USER = "user"
_AAD = "aad"
_TENANT = "tenant"
_WELCOME = "welcome"
_BATCH = 100  # an entity-group transaction's limit


class TeamsStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    # teams

    async def install_team(
        self, team_id: str, name: str, tenant_id: str, service_url: str, aad_group_id: str, now: datetime
    ) -> tuple[Team, bool]:
        """Record an install (or a repeated one); returns the team and whether its roster should
        be walked (a new install, or a team that had been uninstalled)."""
        existing = await self.team(team_id)
        fresh = existing is None or not existing.active
        entity: dict[str, Any] = {
            "PartitionKey": _TEAM,
            "RowKey": table_key(team_id),
            "teamId": team_id,
            "tenantId": tenant_id,
            "serviceUrl": service_url,
            "active": True,
            "inactiveReason": "",
            "updatedAt": now,
        }
        if name:
            entity["name"] = name
        if aad_group_id:
            entity["aadGroupId"] = aad_group_id
        if fresh:
            entity.update(
                installedAt=now, rosterState=RosterState.WALKING.value, rosterCursor="", rosterPages=0, rosterMembers=0
            )
        await self._table.upsert_entity(entity, mode=UpdateMode.MERGE)
        await self._table.upsert_entity(
            {"PartitionKey": _TENANT, "RowKey": table_key(tenant_id), "tenantId": tenant_id, "serviceUrl": service_url},
            mode=UpdateMode.REPLACE,
        )
        team = await self.team(team_id)
        assert team is not None
        return team, fresh

    async def team(self, team_id: str) -> Team | None:
        try:
            entity = await self._table.get_entity(_TEAM, table_key(team_id))
        except ResourceNotFoundError:
            return None
        return Team(
            team_id=entity["teamId"],
            name=entity.get("name", ""),
            tenant_id=entity.get("tenantId", ""),
            service_url=entity.get("serviceUrl", ""),
            aad_group_id=entity.get("aadGroupId", ""),
            active=bool(entity.get("active", True)),
            inactive_reason=entity.get("inactiveReason", ""),
            roster_state=RosterState(entity.get("rosterState") or RosterState.WALKING.value),
            roster_cursor=entity.get("rosterCursor") or None,
            roster_pages=int(entity.get("rosterPages", 0)),
            roster_members=int(entity.get("rosterMembers", 0)),
            etag=entity.metadata["etag"] or "",
        )

    async def rename_team(self, team_id: str, name: str) -> None:
        await self._merge_if_exists({"PartitionKey": _TEAM, "RowKey": table_key(team_id), "name": name})

    async def advance_roster(self, team: Team, *, cursor: str | None, found: int) -> Team | None:
        """Move the roster walk on, if nobody else did since `team` was read (None: someone did)."""
        entity = {
            "PartitionKey": _TEAM,
            "RowKey": table_key(team.team_id),
            "rosterCursor": cursor or "",
            "rosterState": (RosterState.WALKING if cursor else RosterState.DONE).value,
            "rosterPages": team.roster_pages + 1,
            "rosterMembers": team.roster_members + found,
        }
        try:
            await self._table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=team.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return await self.team(team.team_id)

    async def fail_roster(self, team_id: str, reason: str) -> None:
        await self._merge_if_exists(
            {
                "PartitionKey": _TEAM,
                "RowKey": table_key(team_id),
                "rosterState": RosterState.FAILED.value,
                "inactiveReason": reason,
            }
        )

    async def uninstall_team(self, team_id: str, reason: str) -> int:
        """Mark the team and its channels inactive, and turn off its flag on every member's user
        row: nobody is reached through it any more. Returns the members it reached."""
        if not await self._merge_if_exists(
            {"PartitionKey": _TEAM, "RowKey": table_key(team_id), "active": False, "inactiveReason": reason}
        ):
            return 0
        flag = team_flag(team_id)
        members: list[str] = []
        async for entity in self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": _MEMBER + table_key(team_id)}, select=["RowKey", "userId"]
        ):
            members.append(entity["userId"])
        await self._write(
            _MEMBER + table_key(team_id),
            [{"PartitionKey": _MEMBER + table_key(team_id), "RowKey": table_key(u), "active": False} for u in members],
        )
        await self._write(_USER, [{"PartitionKey": _USER, "RowKey": table_key(u), flag: False} for u in members])
        channels = [
            {"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"], "active": False}
            async for e in self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": _CHANNEL + table_key(team_id)}
            )
        ]
        await self._write(_CHANNEL + table_key(team_id), channels)
        return len(members)

    # channels and group chats

    async def save_channel(self, team_id: str, channel_id: str, name: str, *, active: bool = True) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": _CHANNEL + table_key(team_id),
            "RowKey": table_key(channel_id),
            "teamId": team_id,
            "channelId": channel_id,
            "active": active,
        }
        if name:
            entity["name"] = name
        await self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    async def channel(self, team_id: str, channel_id: str) -> dict[str, Any] | None:
        try:
            entity = await self._table.get_entity(_CHANNEL + table_key(team_id), table_key(channel_id))
        except ResourceNotFoundError:
            return None
        return dict(entity)

    async def save_chat(
        self, chat_id: str, tenant_id: str, service_url: str, *, active: bool, reason: str = ""
    ) -> None:
        await self._table.upsert_entity(
            {
                "PartitionKey": _CHAT,
                "RowKey": table_key(chat_id),
                "chatId": chat_id,
                "tenantId": tenant_id,
                "serviceUrl": service_url,
                "active": active,
                "inactiveReason": reason,
            },
            mode=UpdateMode.MERGE,
        )

    async def chat_active(self, chat_id: str) -> bool:
        try:
            entity = await self._table.get_entity(_CHAT, table_key(chat_id))
        except ResourceNotFoundError:
            return False
        return bool(entity.get("active", False))

    # roster members and users

    async def save_members(self, team_id: str, members: Sequence[RosterMember]) -> None:
        """Store roster members of a team and make each reachable through it (idempotent)."""
        flag = team_flag(team_id)
        await self._write(
            _MEMBER + table_key(team_id),
            [
                {
                    "PartitionKey": _MEMBER + table_key(team_id),
                    "RowKey": table_key(m.user_id),
                    "userId": m.user_id,
                    "aadObjectId": m.aad_object_id,
                    "name": m.name,
                    "tenantId": m.tenant_id,
                    "serviceUrl": m.service_url,
                    "userPrincipalName": m.user_principal_name,
                    "userRole": m.user_role,
                    "active": True,
                }
                for m in members
            ],
            mode=UpdateMode.REPLACE,
        )
        await self._write(
            _USER,
            [
                {
                    "PartitionKey": _USER,
                    "RowKey": table_key(m.user_id),
                    "userId": m.user_id,
                    "aadObjectId": m.aad_object_id,
                    "name": m.name,
                    "tenantId": m.tenant_id,
                    "serviceUrl": m.service_url,
                    flag: True,
                }
                for m in members
            ],
        )
        await self._write(
            _AAD,
            [
                {"PartitionKey": _AAD, "RowKey": table_key(m.aad_object_id), "userId": m.user_id}
                for m in members
                if m.aad_object_id
            ],
            mode=UpdateMode.REPLACE,
        )

    async def remove_members(self, team_id: str, user_ids: Sequence[str]) -> None:
        flag = team_flag(team_id)
        await self._write(
            _MEMBER + table_key(team_id),
            [{"PartitionKey": _MEMBER + table_key(team_id), "RowKey": table_key(u), "active": False} for u in user_ids],
        )
        await self._write(_USER, [{"PartitionKey": _USER, "RowKey": table_key(u), flag: False} for u in user_ids])

    async def roster_page(
        self, team_id: str, cursor: dict[str, str] | None, size: int
    ) -> tuple[list[RosterMember], dict[str, str] | None]:
        """One page of a team's active roster members and the cursor of the next."""
        rows, following = await one_page(
            self._table, "PartitionKey eq @pk and active eq true", {"pk": _MEMBER + table_key(team_id)}, cursor, size
        )
        return [member_of(entity) for entity in rows], following

    async def users_page(
        self, cursor: dict[str, str] | None, size: int
    ) -> tuple[list[RosterMember], dict[str, str] | None]:
        """One page of every user known from a roster, reachable through an active team."""
        rows, following = await one_page(self._table, "PartitionKey eq @pk", {"pk": _USER}, cursor, size)
        return [member_of(entity) for entity in rows if reachable(entity)], following

    async def reachable_user(self, user_id: str) -> RosterMember | None:
        """The user, if a roster of an active team holds them."""
        try:
            entity = await self._table.get_entity(_USER, table_key(user_id))
        except ResourceNotFoundError:
            return None
        return member_of(entity) if reachable(entity) else None

    async def user_of_aad(self, aad_object_id: str) -> str | None:
        try:
            return str((await self._table.get_entity(_AAD, table_key(aad_object_id)))["userId"])
        except ResourceNotFoundError:
            return None

    async def tenant_service_url(self, tenant_id: str) -> str | None:
        try:
            return str((await self._table.get_entity(_TENANT, table_key(tenant_id)))["serviceUrl"])
        except ResourceNotFoundError:
            return None

    # welcomes

    async def claim_welcome(
        self, channel_id: str, conversation_id: str, user_id: str, now: datetime, within: timedelta
    ) -> bool:
        """True when this user was not welcomed in this conversation within `within` (and the
        welcome is now theirs to send): a reinstall, or the two events Teams sends for one
        install, welcome once. Claimed under the row's ETag, so two at once welcome once."""
        key = table_key(f"{channel_id}|{conversation_id}|{user_id}")
        entity = {"PartitionKey": _WELCOME, "RowKey": key, "welcomedAt": now}
        try:
            existing = await self._table.get_entity(_WELCOME, key)
        except ResourceNotFoundError:
            try:
                await self._table.create_entity(entity)
            except ResourceExistsError:
                return False
            return True
        if existing["welcomedAt"] > now - within:
            return False
        try:
            await self._table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=existing.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    # internals

    async def _merge_if_exists(self, entity: dict[str, Any]) -> bool:
        try:
            await self._table.update_entity(entity, mode=UpdateMode.MERGE)
        except ResourceNotFoundError:
            return False
        return True

    async def _write(self, partition: str, entities: list[dict[str, Any]], mode: UpdateMode = UpdateMode.MERGE) -> None:
        """Upsert rows of one partition in entity-group transactions (100 rows each)."""
        for start in range(0, len(entities), _BATCH):
            chunk = entities[start : start + _BATCH]
            await self._table.submit_transaction([("upsert", entity, {"mode": mode}) for entity in chunk])
