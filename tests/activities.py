"""Activity payloads shaped like the ones real channels send (Teams, Web Chat)."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT = {"id": "28:b0c6a3e2-1d53-4d8b-9d1e-5c8f7e9a0b11", "name": "Reminder Bot"}


def _id() -> str:
    return uuid.uuid4().hex[:16]


def teams_user() -> dict[str, Any]:
    return {
        "id": f"29:1{_id()}Xq9rTbW-KlmN0pQrS",
        "name": "Megan Bowen",
        "aadObjectId": str(uuid.uuid4()),
    }


def teams_personal_conversation() -> dict[str, Any]:
    return {"conversationType": "personal", "tenantId": TENANT, "id": f"a:1{_id()}Xyz-Abc_Def"}


def teams_channel_conversation() -> dict[str, Any]:
    return {
        "isGroup": True,
        "conversationType": "channel",
        "tenantId": TENANT,
        "id": f"19:{_id()}@thread.tacv2;messageid=1732612345678",
    }


def teams_message(
    text: str,
    service_url: str,
    *,
    user: dict[str, Any] | None = None,
    conversation: dict[str, Any] | None = None,
    timezone: str = "Europe/Berlin",
) -> dict[str, Any]:
    conversation = conversation or teams_personal_conversation()
    activity: dict[str, Any] = {
        "type": "message",
        "id": f"17326{_id()[:8]}",
        "timestamp": "2026-11-26T10:00:00.1234567Z",
        "localTimestamp": "2026-11-26T11:00:00.1234567+01:00",
        "localTimezone": timezone,
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": user or teams_user(),
        "conversation": conversation,
        "recipient": BOT,
        "textFormat": "plain",
        "locale": "en-US",
        "text": text,
        "entities": [
            {"locale": "en-US", "country": "US", "platform": "Web", "timezone": timezone, "type": "clientInfo"}
        ],
        "channelData": {"tenant": {"id": TENANT}},
    }
    if conversation.get("isGroup"):
        activity["text"] = f"<at>{BOT['name']}</at> {text}"
        activity["entities"].append({"mentioned": BOT, "text": f"<at>{BOT['name']}</at>", "type": "mention"})
        activity["channelData"].update(
            {"teamsChannelId": conversation["id"].split(";")[0], "teamsTeamId": "19:team@thread.tacv2"}
        )
    return activity


def teams_members_added(service_url: str, *, user: dict[str, Any] | None = None) -> dict[str, Any]:
    user = user or teams_user()
    return {
        "type": "conversationUpdate",
        "id": f"f:{_id()}",
        "timestamp": "2026-11-26T09:59:58.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": user,
        "conversation": teams_personal_conversation(),
        "recipient": BOT,
        "membersAdded": [{"id": user["id"], "aadObjectId": user["aadObjectId"]}],
        "channelData": {"tenant": {"id": TENANT}},
    }


TEAM = {
    "id": "19:Xq9rTbWKlmN0pQrS1a2b3c4d5e6f7g8h@thread.tacv2",
    "name": "Contoso Sales",
    "aadGroupId": "7d0a5b3c-9e8f-4a1b-8c2d-3e4f5a6b7c8d",
}


def teams_install(
    service_url: str, *, team: dict[str, Any] | None = None, action: str = "add", by: dict[str, Any] | None = None
) -> dict[str, Any]:
    """installationUpdate in a team's scope: the conversation is its General channel."""
    team = team or TEAM
    return {
        "type": "installationUpdate",
        "id": f"f:{_id()}",
        "timestamp": "2026-11-26T09:59:58.000Z",
        "action": action,
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": by or teams_user(),
        "conversation": {"isGroup": True, "conversationType": "channel", "tenantId": TENANT, "id": team["id"]},
        "recipient": BOT,
        "channelData": {
            "settings": {"selectedChannel": {"id": team["id"]}},
            "channel": {"id": team["id"]},
            "team": team,
            "eventType": "",
            "tenant": {"id": TENANT},
            "source": {"name": "message"},
        },
        "locale": "en-US",
    }


def teams_team_update(
    service_url: str,
    event_type: str,
    *,
    team: dict[str, Any] | None = None,
    members_added: list[Any] | None = None,  # Any: tests send malformed members too
    members_removed: list[Any] | None = None,
    channel: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """conversationUpdate in a team (teamMemberAdded/Removed, teamRenamed, teamDeleted, channel*)."""
    team = team or TEAM
    activity: dict[str, Any] = {
        "type": "conversationUpdate",
        "id": f"f:{_id()}",
        "timestamp": "2026-11-26T09:59:58.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": teams_user(),
        "conversation": {"isGroup": True, "conversationType": "channel", "tenantId": TENANT, "id": team["id"]},
        "recipient": BOT,
        "channelData": {"team": team, "eventType": event_type, "tenant": {"id": TENANT}},
    }
    if members_added is not None:
        activity["membersAdded"] = members_added
    if members_removed is not None:
        activity["membersRemoved"] = members_removed
    if channel is not None:
        activity["channelData"]["channel"] = channel
    return activity


def webchat_message(
    text: str, service_url: str, *, user_id: str | None = None, conversation_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"{conversation_id or 'x'}|0000001",
        "timestamp": "2026-11-26T10:00:00.000Z",
        "localTimestamp": "2026-11-26T05:00:00-05:00",
        "localTimezone": "America/New_York",
        "serviceUrl": service_url,
        "channelId": "webchat",
        "from": {"id": user_id or f"dl_{_id()}", "name": "You", "role": "user"},
        "conversation": {"id": conversation_id or f"{_id()}{_id()}-us"},
        "recipient": {"id": "reminder-bot@Vd3ZWkd0Qo8", "name": "Reminder Bot", "role": "bot"},
        "textFormat": "plain",
        "locale": "en-US",
        "text": text,
        "entities": [
            {"type": "ClientCapabilities", "requiresBotState": True, "supportsListening": True, "supportsTts": True}
        ],
        "channelData": {"clientActivityID": _id()},
    }


def webchat_members_added(
    service_url: str, *, user_id: str | None = None, conversation_id: str | None = None
) -> dict[str, Any]:
    user_id = user_id or f"dl_{_id()}"
    return {
        "type": "conversationUpdate",
        "id": _id(),
        "serviceUrl": service_url,
        "channelId": "webchat",
        "from": {"id": user_id, "name": "You"},
        "conversation": {"id": conversation_id or f"{_id()}{_id()}-us"},
        "recipient": {"id": "reminder-bot@Vd3ZWkd0Qo8", "name": "Reminder Bot"},
        "membersAdded": [{"id": "reminder-bot@Vd3ZWkd0Qo8", "name": "Reminder Bot"}, {"id": user_id, "name": "You"}],
    }


def reference(activity: dict[str, Any], service_url: str | None = None) -> dict[str, Any]:
    """The ConversationReference a stored row would hold for this activity (serviceUrl overridable)."""
    return {
        "user": activity["from"],
        "bot": activity["recipient"],
        "conversation": activity["conversation"],
        "channelId": activity["channelId"],
        "serviceUrl": service_url or activity["serviceUrl"],
    }


def stored(reference: dict[str, Any]) -> Any:
    """A StoredReference as the store would hand it to Delivery."""
    from datetime import datetime

    from proactive_bot.references import StoredReference

    return StoredReference.from_reference(reference, datetime.now(UTC))
