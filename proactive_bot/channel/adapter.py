"""The channel adapter: the one place the SDK's adapter (botbuilder's BotFrameworkAdapter) is used.

botbuilder-core runs the turn and addresses outgoing activities (reply-to ids, conversation,
recipient); the HTTP underneath is our `connector` client. `ChannelAdapter` holds the SDK's
adapter rather than being one, so what the rest of the app holds and is handed is ours: plain
JSON, activity ids, an `InvokeAnswer`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from botbuilder.core import BotFrameworkAdapter, BotFrameworkAdapterSettings, TurnContext
from botbuilder.schema import Activity, ConversationReference, ResourceResponse
from botframework.connector.auth import AppCredentials, ClaimsIdentity

from ..settings import Settings
from .activity import InvalidActivity, PreparedActivity, parse_activity, sdk_activity
from .auth import ChannelAuthenticator
from .connector import ConnectorClient, ConnectorError, TokenProvider
from .handler import LogicHandler
from .service_urls import ServiceUrlNotAllowed, ServiceUrlPolicy
from .turn import BeforeReply, TurnLogic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvokeAnswer:
    """What the bot answers an invoke activity (an Adaptive Card action ...): HTTP status, JSON body."""

    status: int
    body: Any = None


class _SdkAdapter(BotFrameworkAdapter):  # type: ignore[misc]  # the SDK ships no type hints
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
        self, service_url: str, identity: ClaimsIdentity | None = None, audience: str | None = None
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


class ChannelAdapter:
    """The Connector's verbs and the inbound turn, over botbuilder's adapter."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._sdk = _SdkAdapter(settings, session)

    @property
    def authenticator(self) -> ChannelAuthenticator:
        return self._sdk.authenticator

    @property
    def service_urls(self) -> ServiceUrlPolicy:
        return self._sdk.service_urls

    @property
    def _tokens(self) -> TokenProvider | None:
        return self._sdk._tokens

    def _connector_client(self, service_url: str) -> ConnectorClient:
        return self._sdk._connector_client(service_url)

    async def create_conversation_json(self, service_url: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Create a conversation (a 1:1 chat, or a channel thread with its first activity).

        Plain JSON in and out: ConversationParameters → ConversationResourceResponse. Raises
        ConnectorError (the channel's answer), ServiceUrlNotAllowed, or aiohttp errors.
        """
        return await self._connector_client(service_url).conversations.create(parameters)

    async def paged_members(
        self, service_url: str, conversation_id: str, page_size: int, continuation_token: str | None
    ) -> dict[str, Any]:
        """One page of a conversation's (a team's) members: {"members": [...], "continuationToken"}."""
        return await self._connector_client(service_url).conversations.paged_members(
            conversation_id, page_size, continuation_token
        )

    @property
    def bot_account(self) -> dict[str, str]:
        """Who the bot is when it starts a conversation ("28:<app id>" in Teams)."""
        return {"id": f"28:{self._settings.app_id}" if self._settings.app_id else "28:local-bot"}

    async def run_turn(
        self, body: Any, auth_header: str, logic: TurnLogic, before_reply: BeforeReply | None = None
    ) -> InvokeAnswer | None:
        """Authenticate an inbound activity and run the bot's turn for it; each reply the logic
        sends waits for `before_reply` first (the limiter's interactive lane).

        Raises InvalidActivity (400), AuthenticationError (401) or AuthenticationUnavailable (503)
        before any turn runs or anything is stored.
        """
        activity = parse_activity(body)
        identity = await self.authenticator.authenticate(activity, auth_header or "")
        try:
            self.service_urls.check(activity.service_url)
        except ServiceUrlNotAllowed as error:
            # With auth on, the channel signed this URL, so this is a channel host missing from
            # AllowedServiceUrlHosts; in local mode, anything. Either way, no address is stored
            # that no send could use.
            log.warning("activity refused: serviceUrl %r: %s", activity.service_url[:200], error)
            raise InvalidActivity(f"serviceUrl not allowed: {error}") from None
        try:
            invoke = await self._sdk.process_activity_with_identity(
                activity, identity, LogicHandler(logic, before_reply).on_turn
            )
        except (ConnectorError, aiohttp.ClientError, TimeoutError) as error:
            # The activity was received and the address stored; only our reply did not get
            # through. That is ours to log, not the channel's to retry.
            log.warning(
                "turn for %s conversation %r: the reply did not reach the channel (%s: %s)",
                activity.channel_id,
                activity.conversation.id[:200],
                type(error).__name__,
                error,
            )
            return None
        return None if invoke is None else InvokeAnswer(invoke.status, _invoke_body(invoke.body))

    async def send_proactive(
        self, reference: dict[str, Any], activities: Sequence[dict[str, Any] | PreparedActivity]
    ) -> list[str]:
        """Send activities into a stored conversation; returns the channel's activity ids.

        Pass prepared activities (`outgoing`) when sending the same activities to many
        recipients: botbuilder copies them before addressing, so one object serves every send.
        """
        responses: list[ResourceResponse] = []
        prepared = [sdk_activity(a) for a in activities]

        async def callback(context: TurnContext) -> None:
            responses.extend(await context.send_activities(prepared))

        if self._settings.local_mode:
            # Empty credentials: botbuilder rejects a blank bot_id, so pass an anonymous identity.
            await self._sdk.continue_conversation(
                ConversationReference().deserialize(reference),
                callback,
                claims_identity=ClaimsIdentity({}, True),
            )
        else:
            await self._sdk.continue_conversation(
                ConversationReference().deserialize(reference), callback, bot_id=self._settings.app_id
            )
        return [r.id for r in responses if r is not None]

    async def update_activity(self, reference: dict[str, Any], activity_id: str, activity: dict[str, Any]) -> None:
        """Replace an activity the bot sent into a stored conversation (PUT .../activities/{id})."""
        conversation = ConversationReference().deserialize(reference)
        # A fresh model each time: it is addressed in place, unlike the prepared ones of a send.
        prepared = TurnContext.apply_conversation_reference(sdk_activity(dict(activity)), conversation)
        prepared.id = activity_id
        prepared.reply_to_id = None  # the stored reference names the user's last message, not ours
        client = self._connector_client(conversation.service_url)
        await client.conversations.update_activity(conversation.conversation.id, activity_id, prepared)

    async def delete_activity(self, reference: dict[str, Any], activity_id: str) -> None:
        """Delete an activity the bot sent into a stored conversation (DELETE .../activities/{id})."""
        client = self._connector_client(reference["serviceUrl"])
        await client.conversations.delete_activity(reference["conversation"]["id"], activity_id)


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
