"""The channel adapter: botbuilder's BotFrameworkAdapter, the one place the SDK's adapter is used.

botbuilder-core runs the turn and addresses outgoing activities (reply-to ids, conversation,
recipient); the HTTP underneath is our `connector` client. Keeping the SDK behind this module
means a port to its successor (the Microsoft 365 Agents SDK) touches one place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from botbuilder.core import BotFrameworkAdapter, BotFrameworkAdapterSettings, TurnContext
from botbuilder.schema import Activity, ConversationReference, ResourceResponse
from botframework.connector.auth import AppCredentials, ClaimsIdentity

from .auth import AuthenticationError, AuthenticationUnavailable, ChannelAuthenticator
from .connector import ConnectorClient, ConnectorError, TokenProvider
from .service_urls import ServiceUrlNotAllowed, ServiceUrlPolicy
from .settings import Settings

log = logging.getLogger(__name__)

Turn = Callable[[TurnContext], Awaitable[None]]

__all__ = [
    "AuthenticationError", "AuthenticationUnavailable", "ChannelAdapter", "InvalidActivity",
    "ServiceUrlNotAllowed", "command_text", "conversation_reference", "parse_activity",
]

# What we store per conversation; real ones are 300-1,000 characters. Well under the 32K
# characters an Azure Table string property holds.
MAX_REFERENCE_CHARS = 8 * 1024


class InvalidActivity(ValueError):
    """The inbound body is not an activity we can run a turn for; answered with 400."""


class ChannelAdapter(BotFrameworkAdapter):
    """botbuilder's adapter with our HTTP client and our token checks underneath."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        super().__init__(
            BotFrameworkAdapterSettings(
                settings.app_id,
                settings.app_password,
                channel_auth_tenant=settings.app_tenant_id or None,
            )
        )
        self._settings = settings
        self._session = session
        self._tokens = None if settings.local_mode else TokenProvider(session, settings)
        self._clients: dict[str, ConnectorClient] = {}
        self.authenticator = ChannelAuthenticator(settings, session)
        self.service_urls = ServiceUrlPolicy.from_settings(
            settings.allowed_service_url_hosts, local_mode=settings.local_mode
        )

    async def create_connector_client(
        self, service_url: str, identity: ClaimsIdentity = None, audience: str = None
    ) -> ConnectorClient:
        return self._connector_client(service_url)

    def _get_or_create_connector_client(self, service_url: str, credentials: AppCredentials) -> ConnectorClient:
        # botbuilder's other way to a client (create_conversation, get_conversations).
        return self._connector_client(service_url)

    def _connector_client(self, service_url: str) -> ConnectorClient:
        """Every send goes through here: the one place a serviceUrl meets the bot's token."""
        client = self._clients.get(service_url)
        if client is None:
            try:
                self.service_urls.check(service_url)
            except ServiceUrlNotAllowed as error:
                log.warning("refused to send to serviceUrl %r: %s", service_url[:200], error)
                raise
            client = self._clients[service_url] = ConnectorClient(self._session, service_url, self._tokens)
        return client

    async def _authenticate_request(self, request: Activity, auth_header: str) -> ClaimsIdentity:
        return await self.authenticator.authenticate(request, auth_header)

    async def run_turn(self, body: Any, auth_header: str, logic: Turn) -> Any:
        """Authenticate an inbound activity and run the bot's turn for it.

        Raises InvalidActivity (400), AuthenticationError (401) or AuthenticationUnavailable (503)
        before any turn runs or anything is stored.
        """
        activity = parse_activity(body)
        identity = await self._authenticate_request(activity, auth_header or "")
        try:
            self.service_urls.check(activity.service_url)
        except ServiceUrlNotAllowed as error:
            # With auth on, the channel signed this URL, so this is a channel host missing from
            # AllowedServiceUrlHosts; in local mode, anything. Either way, no address is stored
            # that no send could use.
            log.warning("activity refused: serviceUrl %r: %s", activity.service_url[:200], error)
            raise InvalidActivity(f"serviceUrl not allowed: {error}") from None
        try:
            invoke = await self.process_activity_with_identity(activity, identity, logic)
        except (ConnectorError, aiohttp.ClientError, TimeoutError) as error:
            # The activity was received and the address stored; only our reply did not get
            # through. That is ours to log, not the channel's to retry.
            log.warning(
                "turn for %s conversation %r: the reply did not reach the channel (%s: %s)",
                activity.channel_id, activity.conversation.id[:200], type(error).__name__, error,
            )
            return None
        if invoke is not None:
            invoke.body = _invoke_body(invoke.body)
        return invoke

    async def send_proactive(
        self, reference: dict[str, Any], activities: Sequence[dict[str, Any] | Activity]
    ) -> list[str]:
        """Send activities into a stored conversation; returns the channel's activity ids.

        Pass `Activity` objects (see `outgoing`) when sending the same activities to many
        recipients: botbuilder copies them before addressing, so one object serves every send.
        """
        responses: list[ResourceResponse] = []
        prepared = [outgoing(a) for a in activities]

        async def callback(context: TurnContext) -> None:
            responses.extend(await context.send_activities(prepared))

        if self._settings.local_mode:
            # Empty credentials: botbuilder rejects a blank bot_id, so pass an anonymous identity.
            await self.continue_conversation(
                ConversationReference().deserialize(reference), callback,
                claims_identity=ClaimsIdentity({}, True),
            )
        else:
            await self.continue_conversation(
                ConversationReference().deserialize(reference), callback, bot_id=self._settings.app_id
            )
        return [r.id for r in responses if r is not None]


def outgoing(activity: dict[str, Any] | Activity) -> Activity:
    """An activity to send, as botbuilder's model."""
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
    try:
        activity = Activity().deserialize(body)
    except Exception as error:  # noqa: BLE001 - msrest raises DeserializationError and friends
        raise InvalidActivity(f"not an activity: {str(error)[:300]}") from None
    _tenant_from_channel_data(activity)
    _drop_nulls(activity)
    try:
        reference = conversation_reference(activity)
    except Exception as error:  # noqa: BLE001 - a field msrest accepted but cannot serialize
        raise InvalidActivity(f"no conversation reference can be made: {str(error)[:300]}") from None
    if len(json.dumps(reference, ensure_ascii=False)) > MAX_REFERENCE_CHARS:
        raise InvalidActivity(f"the conversation reference would exceed {MAX_REFERENCE_CHARS} characters")
    return activity


def _invoke_body(body: Any) -> Any:
    """An invoke response body as JSON: botbuilder answers adaptiveCard/action with a model, and
    its errors with a Python exception inside that model."""
    if not hasattr(body, "serialize"):
        return body
    value = getattr(body, "value", None)
    if isinstance(value, Exception):
        code, message = ([*map(str, value.args), "", ""])[:2]
        body.value = {"code": code, "message": message}  # the Universal Actions error shape
    return body.serialize()


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
    return TurnContext.get_conversation_reference(activity).serialize()


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
            isinstance(kind, str) and kind.lower() == "mention"
            and isinstance(mentioned, dict) and mentioned.get("id") == bot_id
            and isinstance(mention, str) and mention
        ):
            text = text.replace(mention, "")
    return text.strip()
