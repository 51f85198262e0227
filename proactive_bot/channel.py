"""The channel adapter: the one module that knows botbuilder's adapter and the Connector REST API.

botbuilder-core runs the turn and addresses outgoing activities (reply-to ids, conversation,
recipient); the HTTP to the channel goes through our own aiohttp client instead of botbuilder's
`requests`-based one, because that one is capped by the default thread pool (6 sends in flight
here) and fetches tokens synchronously on the event loop with no timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from botbuilder.core import BotFrameworkAdapter, BotFrameworkAdapterSettings, TurnContext
from botbuilder.schema import Activity, ConversationReference, ResourceResponse
from botframework.connector.auth import ClaimsIdentity

from .settings import Settings

log = logging.getLogger(__name__)

Turn = Callable[[TurnContext], Awaitable[None]]

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
TOKEN_TIMEOUT = aiohttp.ClientTimeout(total=10)
SEND_TIMEOUT = aiohttp.ClientTimeout(total=30)


class AuthenticationError(Exception):
    """The inbound request is not from the channel we trust; answered with 401."""


class InvalidActivity(ValueError):
    """The inbound body is not an activity we can run a turn for; answered with 400."""


@dataclass
class ConnectorError(Exception):
    """The channel answered a send with an error status."""

    status: int
    code: str = ""
    message: str = ""
    retry_after: float | None = None  # seconds, from a 429's Retry-After header

    def __str__(self) -> str:
        return f"channel answered {self.status} {self.code}: {self.message}".strip()


class TokenProvider:
    """Bot Framework access tokens via OAuth client credentials, cached until near expiry.

    Fetched with aiohttp and a timeout, so a token endpoint that never answers cannot freeze
    the event loop; concurrent senders share one fetch.
    """

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self._session = session
        self._settings = settings
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def endpoint(self) -> str:
        if self._settings.token_endpoint:
            return self._settings.token_endpoint
        single = self._settings.app_type.lower() == "singletenant" and self._settings.app_tenant_id
        tenant = self._settings.app_tenant_id if single else "botframework.com"
        return f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"

    async def token(self) -> str:
        if time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if time.monotonic() >= self._expires_at:
                await self._fetch()
        return self._token

    async def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._settings.app_id,
            "client_secret": self._settings.app_password,
            "scope": BOT_FRAMEWORK_SCOPE,
        }
        async with self._session.post(self.endpoint, data=form, timeout=TOKEN_TIMEOUT) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200 or "access_token" not in body:
                # Never log the body: it may echo the client secret's hint or the token.
                raise ConnectorError(resp.status, "TokenRequestFailed", "could not get a bot token")
        self._token = body["access_token"]
        # Refresh five minutes early so a send never carries a token that expires in flight.
        self._expires_at = time.monotonic() + max(0, int(body.get("expires_in", 3600)) - 300)


class _Conversations:
    """The part of botframework-connector's `ConversationsOperations` that the adapter calls."""

    def __init__(self, session: aiohttp.ClientSession, service_url: str, tokens: TokenProvider | None):
        self._session = session
        self._base = service_url.rstrip("/") + "/v3/conversations/"
        self._tokens = tokens

    async def send_to_conversation(self, conversation_id: str, activity: Activity) -> ResourceResponse:
        return await self._call("POST", self._path(conversation_id), activity)

    async def reply_to_activity(
        self, conversation_id: str, activity_id: str, activity: Activity
    ) -> ResourceResponse:
        return await self._call("POST", self._path(conversation_id, activity_id), activity)

    async def update_activity(
        self, conversation_id: str, activity_id: str, activity: Activity
    ) -> ResourceResponse:
        return await self._call("PUT", self._path(conversation_id, activity_id), activity)

    async def delete_activity(self, conversation_id: str, activity_id: str) -> None:
        await self._call("DELETE", self._path(conversation_id, activity_id), None)

    def _path(self, conversation_id: str, activity_id: str | None = None) -> str:
        path = self._base + quote(conversation_id, safe="")
        path += "/activities"
        return path + ("/" + quote(activity_id, safe="") if activity_id else "")

    async def _call(self, method: str, url: str, activity: Activity | None) -> ResourceResponse:
        headers = {}
        if self._tokens is not None:
            headers["Authorization"] = f"Bearer {await self._tokens.token()}"
        body = activity.serialize() if activity is not None else None
        async with self._session.request(
            method, url, json=body, headers=headers, timeout=SEND_TIMEOUT
        ) as resp:
            if resp.status >= 400:
                raise await _connector_error(resp)
            payload = await resp.json(content_type=None) if resp.content_length != 0 else None
        return ResourceResponse(id=(payload or {}).get("id", "")) if isinstance(payload, dict) else ResourceResponse(id="")


async def _connector_error(resp: aiohttp.ClientResponse) -> ConnectorError:
    try:
        error = (await resp.json(content_type=None) or {}).get("error") or {}
    except (ValueError, AttributeError, aiohttp.ContentTypeError):
        error = {}
    return ConnectorError(
        status=resp.status,
        code=str(error.get("code", "")),
        message=str(error.get("message", ""))[:500],
        retry_after=_retry_after(resp.headers.get("Retry-After")),
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP-date; rare from the channels, treat as "no hint"


class _ConnectorClient:
    def __init__(self, conversations: _Conversations) -> None:
        self.conversations = conversations


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
        self._clients: dict[str, _ConnectorClient] = {}

    async def create_connector_client(
        self, service_url: str, identity: ClaimsIdentity = None, audience: str = None
    ) -> _ConnectorClient:
        client = self._clients.get(service_url)
        if client is None:
            client = _ConnectorClient(_Conversations(self._session, service_url, self._tokens))
            self._clients[service_url] = client
        return client

    async def run_turn(self, body: Any, auth_header: str, logic: Turn) -> Any:
        """Authenticate an inbound activity and run the bot's turn for it."""
        activity = parse_activity(body)
        try:
            identity = await self._authenticate_request(activity, auth_header or "")
        except Exception as error:  # botbuilder raises PermissionError, jwt errors, network errors
            raise AuthenticationError(type(error).__name__) from error
        return await self.process_activity_with_identity(activity, identity, logic)

    async def send_proactive(self, reference: dict[str, Any], activities: list[dict[str, Any]]) -> list[str]:
        """Send activities into a stored conversation; returns the channel's activity ids."""
        responses: list[ResourceResponse] = []

        async def callback(context: TurnContext) -> None:
            responses.extend(await context.send_activities([Activity().deserialize(a) for a in activities]))

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
