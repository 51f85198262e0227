"""The channel adapter: botbuilder's BotFrameworkAdapter, the one place the SDK's adapter is used.

botbuilder-core runs the turn and addresses outgoing activities (reply-to ids, conversation,
recipient); the HTTP underneath is our `connector` client. Keeping the SDK behind this module
means a port to its successor (the Microsoft 365 Agents SDK) touches one place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from botbuilder.core import BotFrameworkAdapter, BotFrameworkAdapterSettings, TurnContext
from botbuilder.schema import Activity, ConversationReference, ResourceResponse
from botframework.connector.auth import ClaimsIdentity

from .connector import ConnectorClient, TokenProvider
from .settings import Settings

log = logging.getLogger(__name__)

Turn = Callable[[TurnContext], Awaitable[None]]


class AuthenticationError(Exception):
    """The inbound request is not from the channel we trust; answered with 401."""


class InvalidActivity(ValueError):
    """The inbound body is not an activity we can run a turn for; answered with 400."""


class ChannelAdapter(BotFrameworkAdapter):
    """botbuilder's adapter with our HTTP client underneath."""

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

    async def create_connector_client(
        self, service_url: str, identity: ClaimsIdentity = None, audience: str = None
    ) -> ConnectorClient:
        client = self._clients.get(service_url)
        if client is None:
            client = self._clients[service_url] = ConnectorClient(self._session, service_url, self._tokens)
        return client

    async def run_turn(self, body: Any, auth_header: str, logic: Turn) -> Any:
        """Authenticate an inbound activity and run the bot's turn for it."""
        activity = parse_activity(body)
        try:
            identity = await self._authenticate_request(activity, auth_header or "")
        except Exception as error:  # botbuilder raises PermissionError, jwt errors, network errors
            raise AuthenticationError(type(error).__name__) from error
        return await self.process_activity_with_identity(activity, identity, logic)

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


def parse_activity(body: Any) -> Activity:
    if not isinstance(body, dict):
        raise InvalidActivity("the body must be a JSON object (an activity)")
    try:
        activity = Activity().deserialize(body)
    except Exception as error:  # msrest raises DeserializationError and friends
        raise InvalidActivity(f"not an activity: {error}") from error
    missing = [
        name
        for name, value in (
            ("type", activity.type),
            ("channelId", activity.channel_id),
            ("serviceUrl", activity.service_url),
            ("conversation.id", activity.conversation and activity.conversation.id),
        )
        if not value
    ]
    if missing:
        raise InvalidActivity("the activity lacks " + ", ".join(missing))
    _tenant_from_channel_data(activity)
    return activity


def _tenant_from_channel_data(activity: Activity) -> None:
    # Teams sends conversation.tenantId, which botbuilder's model (it expects "tenantID") drops;
    # the tenant also comes in channelData, and Teams needs it for proactive sends. The adapter
    # makes the same repair inside the turn; doing it here gives every caller the same reference.
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = (channel_data.get("tenant") or {}).get("id") if isinstance(channel_data.get("tenant"), dict) else None
    if tenant and not activity.conversation.tenant_id:
        activity.conversation.tenant_id = str(tenant)


def conversation_reference(activity: Activity) -> dict[str, Any]:
    """The activity's ConversationReference as botbuilder serializes it (what we store)."""
    return TurnContext.get_conversation_reference(activity).serialize()
