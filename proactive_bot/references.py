"""Conversation references: each user's "address", kept whole in Azure Table Storage.

Table layout (one table, setting `ReferencesTable`):

    PartitionKey          RowKey              holds
    ref|<channel>         <conversation id>   the reference JSON, untouched, plus lookup fields
    user|<channel>        <user id>           pointer to the user's conversation (personal wins)
    aad                   <aadObjectId>       pointer to the user's conversation (channel + id)

Pointers make "send to this user" a point read instead of a table scan. Keys go through
`table_key`; the original ids are stored as properties.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from . import clock, i18n
from .storage.keys import table_key
from .storage.paging import one_page

# A repeat message does not rewrite its row; "last seen" is refreshed at most this often.
LAST_SEEN_RESOLUTION = timedelta(hours=24)

_REF = "ref|"
_USER = "user|"
_AAD = "aad"
TEAMS = "msteams"  # the channel id of Microsoft Teams


@dataclass(frozen=True)
class StoredReference:
    """A stored ConversationReference and the fields we look it up by."""

    reference: dict[str, Any]  # exactly what botbuilder serialized; never edited
    channel_id: str
    conversation_id: str
    conversation_type: str
    is_group: bool
    user_id: str
    user_name: str
    aad_object_id: str
    tenant_id: str
    last_seen: datetime
    active: bool = True
    inactive_reason: str = ""
    opted_out: bool = False  # said "stop": no notifications or broadcasts (own reminders still come)
    chosen_language: str = ""  # said "language de"; wins over the locale the channel reports

    @property
    def language(self) -> str:
        """The language the bot speaks here: the one chosen, else the reference's `locale`."""
        return i18n.negotiate(self.chosen_language, self.reference.get("locale"))

    @property
    def key(self) -> tuple[str, str]:
        return self.channel_id, self.conversation_id

    @property
    def teams_user(self) -> str:
        """The Teams user of a personal Teams chat ("29:..."), else "": who this recipient is,
        the same before and after the bot created the chat (see teams/roster.py)."""
        return self.user_id if self.channel_id == TEAMS and _is_personal(self) else ""

    @classmethod
    def from_reference(cls, reference: dict[str, Any], now: datetime) -> StoredReference:
        """Read the lookup fields of a serialized ConversationReference."""
        conversation = reference.get("conversation") or {}
        user = reference.get("user") or {}
        channel_id = reference.get("channelId") or ""
        conversation_id = conversation.get("id") or ""
        if not channel_id or not conversation_id or not reference.get("serviceUrl"):
            raise ValueError("a conversation reference needs channelId, conversation.id and serviceUrl")
        return cls(
            reference=reference,
            channel_id=channel_id,
            conversation_id=conversation_id,
            conversation_type=conversation.get("conversationType") or "",
            is_group=bool(conversation.get("isGroup")),
            user_id=user.get("id") or "",
            user_name=user.get("name") or "",
            aad_object_id=user.get("aadObjectId") or "",
            tenant_id=tenant_of(reference),
            last_seen=now,
        )


def tenant_of(reference: dict[str, Any]) -> str:
    """The Teams tenant a serialized ConversationReference names ("" if none)."""
    conversation = reference.get("conversation") or {}
    # botbuilder serializes ConversationAccount.tenant_id as "tenantID".
    return str(conversation.get("tenantID") or conversation.get("tenantId") or "")


def _without_activity_id(reference: dict[str, Any]) -> dict[str, Any]:
    # activityId names the last inbound message: it changes every turn but does not change the
    # address, and proactive sends never use it.
    return {k: v for k, v in reference.items() if k != "activityId"}


def _is_personal(stored: StoredReference) -> bool:
    return not stored.is_group and stored.conversation_type in ("", "personal")


class ReferenceStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def save(self, reference: dict[str, Any], now: datetime | None = None) -> bool:
        """Store or refresh a reference; returns True if anything was written.

        A repeat message from the same conversation costs one point read and no write.
        """
        now = now or clock.now()
        incoming = StoredReference.from_reference(reference, now)
        existing = await self.get(incoming.channel_id, incoming.conversation_id)
        if existing is not None and not self._needs_write(existing, incoming, now):
            return False
        if existing is not None:
            incoming = replace(incoming, opted_out=existing.opted_out, chosen_language=existing.chosen_language)
        await self._table.upsert_entity(_to_entity(incoming), mode=UpdateMode.REPLACE)
        await self._point_to(incoming)
        return True

    @staticmethod
    def _needs_write(existing: StoredReference, incoming: StoredReference, now: datetime) -> bool:
        return (
            not existing.active  # a new inbound activity revives a gone conversation
            or _without_activity_id(existing.reference) != _without_activity_id(incoming.reference)
            or now - existing.last_seen >= LAST_SEEN_RESOLUTION
        )

    async def _point_to(self, stored: StoredReference) -> None:
        pointers = [(_USER + table_key(stored.channel_id), stored.user_id)]
        if stored.aad_object_id:
            pointers.append((_AAD, stored.aad_object_id))
        for partition, user_key in pointers:
            if not user_key:
                continue
            entity = {
                "PartitionKey": partition,
                "RowKey": table_key(user_key),
                "channelId": stored.channel_id,
                "conversationId": stored.conversation_id,
            }
            if _is_personal(stored):
                await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            else:
                # A group chat only stands in for a user who has no personal conversation yet.
                try:
                    await self._table.create_entity(entity)
                except ResourceExistsError:
                    pass

    async def get(self, channel_id: str, conversation_id: str) -> StoredReference | None:
        try:
            entity = await self._table.get_entity(_REF + table_key(channel_id), table_key(conversation_id))
        except ResourceNotFoundError:
            return None
        return _from_entity(entity)

    async def find_user(self, channel_id: str, user_id: str) -> StoredReference | None:
        return await self._follow(_USER + table_key(channel_id), user_id)

    async def find_aad_user(self, aad_object_id: str) -> StoredReference | None:
        return await self._follow(_AAD, aad_object_id)

    async def _follow(self, partition: str, user_key: str) -> StoredReference | None:
        try:
            pointer = await self._table.get_entity(partition, table_key(user_key))
        except ResourceNotFoundError:
            return None
        return await self.get(pointer["channelId"], pointer["conversationId"])

    async def all_active(
        self, *, channel_id: str | None = None, tenant_id: str | None = None
    ) -> AsyncIterator[StoredReference]:
        """Every active reference, optionally of one channel and/or tenant, streamed page by page."""
        query, params = _active_query(channel_id, tenant_id, include_opted_out=True)
        async for entity in self._table.query_entities(query, parameters=params):
            yield _from_entity(entity)

    async def broadcast_page(
        self,
        *,
        channel_id: str | None,
        tenant_id: str | None,
        cursor: dict[str, str] | None,
        size: int,
    ) -> tuple[list[StoredReference], dict[str, str] | None]:
        """One page of a broadcast's audience (active, not opted out) and the cursor of the next.

        A cursor is a plain JSON-able dict, so a broadcast can be walked one page per queue
        message, by whichever instance takes it.
        """
        query, params = _active_query(channel_id, tenant_id, include_opted_out=False)
        rows, following = await one_page(self._table, query, params, cursor, size)
        return [_from_entity(entity) for entity in rows], following

    async def set_opted_out(self, channel_id: str, conversation_id: str, opted_out: bool) -> bool:
        """Record "stop"/"start"; returns False if the conversation is not known."""
        return await self._merge(channel_id, conversation_id, {"optedOut": opted_out})

    async def set_language(self, channel_id: str, conversation_id: str, language: str) -> bool:
        """Record "language de" ("" forgets it); returns False if the conversation is not known."""
        return await self._merge(channel_id, conversation_id, {"language": language})

    async def _merge(self, channel_id: str, conversation_id: str, fields: dict[str, Any]) -> bool:
        """A user's setting onto their reference row, leaving the rest as it is."""
        try:
            await self._table.update_entity(
                {"PartitionKey": _REF + table_key(channel_id), "RowKey": table_key(conversation_id), **fields},
                mode=UpdateMode.MERGE,
            )
        except ResourceNotFoundError:
            return False
        return True

    async def mark_inactive(self, stored: StoredReference, reason: str) -> None:
        """The channel said the user blocked the bot or the conversation is gone (403/404).

        Conditional on the row being unchanged, so a fresh inbound activity that revived the
        reference meanwhile is not overwritten.
        """
        try:
            entity = await self._table.get_entity(
                _REF + table_key(stored.channel_id), table_key(stored.conversation_id)
            )
        except ResourceNotFoundError:
            return
        if not entity.get("active", True):
            return
        entity["active"] = False
        entity["inactiveReason"] = reason
        try:
            await self._table.update_entity(
                entity,
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceNotFoundError:
            pass


def _active_query(
    channel_id: str | None, tenant_id: str | None, *, include_opted_out: bool
) -> tuple[str, dict[str, Any]]:
    if channel_id is not None:
        query = "PartitionKey eq @pk and active eq true"
        params: dict[str, Any] = {"pk": _REF + table_key(channel_id)}
    else:
        # '}' sorts right after '|', so this range is exactly the ref| partitions.
        query = "PartitionKey ge @lo and PartitionKey lt @hi and active eq true"
        params = {"lo": _REF, "hi": _REF[:-1] + "}"}
    if not include_opted_out:
        query += " and optedOut eq false"  # every row carries the flag, so no row is missed
    if tenant_id is not None:
        query += " and tenantId eq @tenant"
        params["tenant"] = tenant_id
    return query, params


def _to_entity(stored: StoredReference) -> dict[str, Any]:
    return {
        "PartitionKey": _REF + table_key(stored.channel_id),
        "RowKey": table_key(stored.conversation_id),
        "reference": json.dumps(stored.reference, separators=(",", ":"), ensure_ascii=False),
        "channelId": stored.channel_id,
        "conversationId": stored.conversation_id,
        "conversationType": stored.conversation_type,
        "isGroup": stored.is_group,
        "userId": stored.user_id,
        "userName": stored.user_name,
        "aadObjectId": stored.aad_object_id,
        "tenantId": stored.tenant_id,
        "lastSeen": stored.last_seen,
        "active": stored.active,
        "inactiveReason": stored.inactive_reason,
        "optedOut": stored.opted_out,
        "language": stored.chosen_language,
    }


def _from_entity(entity: dict[str, Any]) -> StoredReference:
    last_seen = entity["lastSeen"]
    return StoredReference(
        reference=json.loads(entity["reference"]),
        channel_id=entity["channelId"],
        conversation_id=entity["conversationId"],
        conversation_type=entity.get("conversationType", ""),
        is_group=bool(entity.get("isGroup", False)),
        user_id=entity.get("userId", ""),
        user_name=entity.get("userName", ""),
        aad_object_id=entity.get("aadObjectId", ""),
        tenant_id=entity.get("tenantId", ""),
        last_seen=last_seen if isinstance(last_seen, datetime) else datetime.fromisoformat(last_seen),
        active=bool(entity.get("active", True)),
        inactive_reason=entity.get("inactiveReason", ""),
        opted_out=bool(entity.get("optedOut", False)),
        chosen_language=entity.get("language", ""),
    )
