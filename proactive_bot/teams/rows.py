"""What Teams installs and rosters are made of: a team, a roster member and the roster walk's state
(store.py reads and writes them)."""

from __future__ import annotations

import enum
import re
import zlib
from dataclasses import dataclass
from typing import Any

from ..references import TEAMS

ORG_ID = "8:orgid:"  # how Teams takes a member named by Entra object id in a new conversation


class RosterState(enum.Enum):
    WALKING = "walking"  # pages are being read; `cursor` names the next one
    DONE = "done"
    FAILED = "failed"  # the channel refused to serve it (403/404): what was read stands


@dataclass(frozen=True)
class Team:
    team_id: str
    name: str
    tenant_id: str
    service_url: str
    aad_group_id: str = ""
    active: bool = True
    inactive_reason: str = ""
    roster_state: RosterState = RosterState.WALKING
    roster_cursor: str | None = None  # the Connector's continuationToken of the next page
    roster_pages: int = 0
    roster_members: int = 0
    etag: str = ""

    @property
    def general_channel_id(self) -> str:
        # In Teams the General channel's id is the team's id.
        return self.team_id


@dataclass(frozen=True)
class RosterMember:
    """A Teams user known from a roster: enough to create their 1:1 chat and to name them."""

    user_id: str  # "29:..." (or "8:orgid:<aadObjectId>" when only that is known)
    aad_object_id: str
    name: str
    tenant_id: str
    service_url: str
    user_principal_name: str = ""
    user_role: str = "user"

    channel_id = TEAMS
    conversation_id = ""  # no chat yet

    @property
    def teams_user(self) -> str:
        return self.user_id

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.user_id,
            "aadObjectId": self.aad_object_id,
            "name": self.name,
            "tenantId": self.tenant_id,
            "serviceUrl": self.service_url,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RosterMember:
        if not isinstance(data, dict) or not data.get("id") or not data.get("serviceUrl") or not data.get("tenantId"):
            raise ValueError("a roster member needs id, tenantId and serviceUrl")
        return cls(
            user_id=str(data["id"]),
            aad_object_id=str(data.get("aadObjectId") or ""),
            name=str(data.get("name") or ""),
            tenant_id=str(data["tenantId"]),
            service_url=str(data["serviceUrl"]),
        )

    @classmethod
    def from_teams(cls, member: dict[str, Any], tenant_id: str, service_url: str) -> RosterMember:
        """From a TeamsChannelAccount as the paged members API returns it."""
        return cls(
            user_id=str(member["id"]),
            aad_object_id=str(member.get("aadObjectId") or member.get("objectId") or ""),
            name=str(member.get("name") or ""),
            tenant_id=str(member.get("tenantId") or tenant_id),
            service_url=service_url,
            user_principal_name=str(member.get("userPrincipalName") or ""),
            user_role=str(member.get("userRole") or "user"),
        )


def team_flag(team_id: str) -> str:
    """The user-row property saying the user is reachable through this team."""
    return f"t{zlib.crc32(team_id.encode('utf-8')):08x}"


_FLAG = re.compile(r"t[0-9a-f]{8}")


def reachable(entity: dict[str, Any]) -> bool:
    return any(value is True for name, value in entity.items() if _FLAG.fullmatch(name))


def member_of(entity: dict[str, Any]) -> RosterMember:
    return RosterMember(
        user_id=entity["userId"],
        aad_object_id=entity.get("aadObjectId", ""),
        name=entity.get("name", ""),
        tenant_id=entity.get("tenantId", ""),
        service_url=entity.get("serviceUrl", ""),
        user_principal_name=entity.get("userPrincipalName", ""),
        user_role=entity.get("userRole", "user"),
    )
