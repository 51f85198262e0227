"""Activities: inbound ones validated before any turn runs and read into what the bot's logic
needs; outgoing ones prepared once for many sends (`outgoing`).

Everything here works on botbuilder's `Activity` model; nothing outside this package sees it:
what leaves is plain data (`Inbound`, dicts) or an opaque `PreparedActivity`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity

from .turn import Inbound, Member, TeamsEvent

# What we store per conversation; real ones are 300-1,000 characters. Well under the 32K
# characters an Azure Table string property holds.
MAX_REFERENCE_CHARS = 8 * 1024


class InvalidActivity(ValueError):
    """The inbound body is not an activity we can run a turn for; answered with 400."""


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedActivity:
    """An outgoing activity read once, to be sent to many recipients (`ChannelAdapter.send_proactive`
    copies it before addressing each send). Opaque outside this package: what it holds is the
    SDK's model, which only the adapter reads (`sdk_activity`)."""

    _model: Activity = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        return f"PreparedActivity(type={self._model.type!r})"


def outgoing(activity: dict[str, Any] | PreparedActivity) -> PreparedActivity:
    """An activity to send (the Connector's JSON), prepared once for every send of it."""
    return activity if isinstance(activity, PreparedActivity) else PreparedActivity(Activity().deserialize(activity))


def sdk_activity(activity: dict[str, Any] | PreparedActivity | Activity) -> Activity:
    """botbuilder's model of an activity to send; for this package's own use only."""
    if isinstance(activity, PreparedActivity):
        return activity._model
    return activity if isinstance(activity, Activity) else Activity().deserialize(activity)


# Every activity a channel sends names these; a stored address needs them all.
_REQUIRED = ("type", "channelId", "serviceUrl", "conversation.id", "from.id", "recipient.id")


def parse_activity(body: Any) -> Activity:
    if not isinstance(body, dict):
        raise InvalidActivity("the body must be a JSON object (an activity)")
    # Checked on the raw JSON: msrest turns a number or a list into a string, and keeps a dict.
    missing = [path for path in _REQUIRED if not _is_text(_lookup(body, path))]
    if missing:
        raise InvalidActivity("the activity lacks " + ", ".join(missing) + " (non-empty strings)")
    _check_member_ids(body)
    try:
        activity = Activity().deserialize(body)
    except Exception as error:
        raise InvalidActivity(f"not an activity: {str(error)[:300]}") from None
    _tenant_from_channel_data(activity)
    _drop_nulls(activity)
    try:
        reference = conversation_reference(activity)
    except Exception as error:
        raise InvalidActivity(f"no conversation reference can be made: {str(error)[:300]}") from None
    if len(json.dumps(reference, ensure_ascii=False)) > MAX_REFERENCE_CHARS:
        raise InvalidActivity(f"the conversation reference would exceed {MAX_REFERENCE_CHARS} characters")
    return activity


def _check_member_ids(body: dict[str, Any]) -> None:
    # msrest turns a member's id of 7 or {"a": 1} into "7" or "{'a': 1}": a user nobody is, who
    # would be welcomed and stored on a roster. A null member names nobody (_drop_nulls).
    for field in ("membersAdded", "membersRemoved"):
        accounts = body.get(field)
        if isinstance(accounts, list) and any(
            isinstance(account, dict) and not _is_text(account.get("id")) for account in accounts
        ):
            raise InvalidActivity(f"every member in {field} needs an id (a non-empty string)")


def _drop_nulls(activity: Activity) -> None:
    # JSON lets a list of objects hold null; botbuilder's handlers and ours read each item's
    # fields, so a null member or entity would fail the turn. A null names nothing: drop it.
    for name in ("members_added", "members_removed", "entities", "attachments", "reactions_added", "reactions_removed"):
        items = getattr(activity, name, None)
        if isinstance(items, list) and None in items:
            setattr(activity, name, [item for item in items if item is not None])


def _lookup(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _tenant_from_channel_data(activity: Activity) -> None:
    # Teams sends conversation.tenantId, which botbuilder's model (it expects "tenantID") drops;
    # the tenant also comes in channelData, and Teams needs it for proactive sends. The adapter
    # makes the same repair inside the turn; doing it here gives every caller the same reference.
    channel_data = activity.channel_data
    tenant = channel_data.get("tenant") if isinstance(channel_data, dict) else None
    if activity.channel_id == "msteams" and (
        not isinstance(channel_data, (dict, type(None))) or not isinstance(tenant, (dict, type(None)))
    ):
        # botbuilder's own repair calls .get() on both and would fail mid-turn.
        raise InvalidActivity("a Teams activity's channelData and channelData.tenant must be objects")
    tenant_id = tenant.get("id") if isinstance(tenant, dict) else None
    if isinstance(tenant_id, str) and tenant_id and not activity.conversation.tenant_id:
        activity.conversation.tenant_id = tenant_id


def conversation_reference(activity: Activity) -> dict[str, Any]:
    """The activity's ConversationReference as botbuilder serializes it (what we store)."""
    reference: dict[str, Any] = TurnContext.get_conversation_reference(activity).serialize()
    return reference


def command_text(activity: Activity) -> str:
    """The message text without the bot's @mention ("<at>Bot</at> help" in a Teams channel → "help").

    botbuilder's remove_recipient_mention fails on a message without text and on malformed
    mention entities, and uses the bot's display name as a regular expression.
    """
    text = activity.text if isinstance(activity.text, str) else ""
    bot_id = activity.recipient.id if activity.recipient else None
    for entity in activity.entities or []:
        kind = getattr(entity, "type", None)  # an entity may also be null
        properties = getattr(entity, "additional_properties", None) or {}
        mentioned = properties.get("mentioned")
        mention = properties.get("text")
        if (
            isinstance(kind, str)
            and kind.lower() == "mention"
            and isinstance(mentioned, dict)
            and mentioned.get("id") == bot_id
            and isinstance(mention, str)
            and mention
        ):
            text = text.replace(mention, "")
    return text.strip()


def inbound_of(activity: Activity) -> Inbound:
    """What the bot's logic reads of an activity (see turn.py)."""
    sender = activity.from_property
    return Inbound(
        type=activity.type or "",
        channel_id=activity.channel_id,
        conversation_id=activity.conversation.id,
        user_id=sender.id if sender else "",
        user_name=(sender.name or "") if sender else "",
        bot_id=activity.recipient.id if activity.recipient else "",
        text=command_text(activity),
        value=activity.value,
        zone_hint=_reported_zone(activity),
        reference=conversation_reference(activity),
        name=activity.name if isinstance(activity.name, str) else "",
    )


def members(accounts: list[Any] | None) -> list[Member]:
    return [
        Member(account.id, account.name or "", account.aad_object_id or "")
        for account in accounts or []
        if account is not None and account.id
    ]


def teams_event_of(activity: Activity) -> TeamsEvent | None:
    """A Teams install, roster or rename event, if the activity is one (see turn.TeamsEvent)."""
    if activity.channel_id != "msteams" or activity.type not in ("installationUpdate", "conversationUpdate"):
        return None
    data = _object(activity.channel_data)
    team, channel = _object(data.get("team")), _object(data.get("channel"))
    event_type = _text(data.get("eventType"))
    if activity.type == "conversationUpdate" and not (event_type or activity.members_added or activity.members_removed):
        return None
    conversation = activity.conversation
    return TeamsEvent(
        type=activity.type,
        event_type=event_type,
        action=_text(activity.action),
        service_url=activity.service_url,
        tenant_id=conversation.tenant_id or "",
        conversation_id=conversation.id,
        conversation_type=conversation.conversation_type or "",
        bot_id=activity.recipient.id if activity.recipient else "",
        # channelData is kept as sent: an id that is not a string names no team or channel
        # (str() would make a team "123" or "{'a': 1}" and walk its roster).
        team_id=_text(team.get("id")),
        team_name=_text(team.get("name")),
        team_aad_group_id=_text(team.get("aadGroupId")),
        channel_id=_text(channel.get("id")),
        channel_name=_text(channel.get("name")),
        members_added=tuple(members(activity.members_added)),
        members_removed=tuple(members(activity.members_removed)),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _reported_zone(activity: Activity) -> str | None:
    """The IANA zone the client reported: localTimezone, or Teams' clientInfo entity."""
    if isinstance(activity.local_timezone, str) and activity.local_timezone:
        return activity.local_timezone
    for entity in activity.entities or []:
        properties: Any = getattr(entity, "additional_properties", None)
        if entity.type == "clientInfo" and isinstance(properties, dict):
            zone = properties.get("timezone")
            if isinstance(zone, str) and zone:
                return zone
    return None
