"""Turning the Teams audiences of a notification into recipients, page by page.

A recipient is a stored conversation (`StoredReference`) when the user has a personal chat with
the bot, else a `RosterMember` whose chat is created at delivery (chats.py). Both name the same
Teams user the same way (`teams_user`), so a user reached both ways gets one claim row and one
message (notifications/records.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ..references import ReferenceStore, StoredReference
from .chats import ChatOpener
from .roster import RosterWalk
from .rows import ORG_ID, RosterMember, RosterState
from .store import TeamsStore

ROSTER_PHASE = "roster"  # the cursor key marking the second phase of {"all": true, "includeRoster": true}


@dataclass(frozen=True)
class Page:
    """One page of an audience: recipients, the cursor of the next page (None: the last), and
    why nothing can be walked (`note`) or when to look again (`wait`)."""

    found: list[StoredReference | RosterMember]
    cursor: dict[str, str] | None
    note: str = ""
    recorded: int = 0  # recipients already recorded as settled (ids nobody can be found for)
    wait: float = 0.0  # seconds to come back later (the roster is still being read)


@dataclass
class TeamsReach:
    store: TeamsStore
    chats: ChatOpener
    roster: RosterWalk
    references: ReferenceStore

    async def team_page(self, team_id: str, cursor: dict[str, str] | None, size: int) -> Page:
        team = await self.store.team(team_id)
        if team is None or not team.active:
            reason = team.inactive_reason if team is not None else "never installed"
            return Page([], None, note=f"team not installed ({reason}): nothing sent")
        if team.roster_state is RosterState.WALKING:
            return Page([], cursor, wait=5.0)
        found, following = await self.store.roster_page(team_id, cursor, size)
        note = (
            f"only part of the roster could be read ({team.inactive_reason})"
            if team.roster_state is RosterState.FAILED
            else ""
        )
        return Page(list(found), following, note=note)

    async def roster_users_page(self, cursor: dict[str, str] | None, size: int) -> Page:
        """Every user reachable through a roster who has no personal chat with the bot (those
        with one were reached with the stored conversations)."""
        token = {k: v for k, v in (cursor or {}).items() if k != ROSTER_PHASE} or None
        users, following = await self.store.users_page(token, size)
        chats = await asyncio.gather(*(self.chats.existing(user) for user in users))
        found: list[StoredReference | RosterMember] = [u for u, chat in zip(users, chats, strict=False) if chat is None]
        return Page(found, {**following, ROSTER_PHASE: "1"} if following else None)

    async def resolve_aad(
        self, ids: Sequence[str], tenant_id: str | None
    ) -> tuple[list[StoredReference | RosterMember], list[RosterMember]]:
        """Recipients for Entra object ids: their personal chat, else their roster entry, else
        (with the tenant given and an install known in it) a chat to create by object id."""
        # Every id of the audience is in the one tenant: one read of its serviceUrl serves them.
        tenant_url = (await self.store.tenant_service_url(tenant_id) or "") if tenant_id else ""
        found = await asyncio.gather(*(self._one_aad(aad, tenant_id or "", tenant_url) for aad in ids))
        known = [r for r in found if not (isinstance(r, RosterMember) and not r.service_url)]
        unknown = [r for r in found if isinstance(r, RosterMember) and not r.service_url]
        return known, unknown

    async def one_aad(self, aad: str, tenant_id: str | None) -> StoredReference | RosterMember | None:
        """One user named by Entra object id (`{"to": {"aadObjectId": ...}}`), found as a list of
        them is: their chat, else their roster entry (the chat created at delivery); None: nobody
        can reach them."""
        known, _ = await self.resolve_aad([aad], tenant_id)
        return known[0] if known else None

    async def _one_aad(self, aad: str, tenant_id: str, tenant_url: str) -> StoredReference | RosterMember:
        stored = await self.references.find_aad_user(aad)
        if stored is not None and stored.teams_user:
            return stored
        user_id = await self.store.user_of_aad(aad)
        member = await self.store.reachable_user(user_id) if user_id else None
        if member is not None:
            return member
        if stored is not None:
            return stored  # a group chat is the only way we know them
        # An empty serviceUrl marks a user nobody can reach (recorded as failed by the caller).
        return RosterMember(ORG_ID + aad, aad, "", tenant_id, tenant_url)
