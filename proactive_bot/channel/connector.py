"""The Bot Connector REST API client: how the bot's messages reach a channel.

Our own aiohttp client instead of botframework-connector's: that one runs `requests` in the
default thread pool (a handful of sends in flight) and fetches tokens synchronously on the
event loop with no timeout. This one is truly concurrent, and its token fetch is async, shared
and bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote

import aiohttp
from botbuilder.schema import Activity, ResourceResponse
from msrest.serialization import Model, Serializer

from ..settings import Settings

log = logging.getLogger(__name__)

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
# The same audience in the managed identity protocol, which takes a resource, not a scope.
BOT_FRAMEWORK_RESOURCE = "https://api.botframework.com"
IDENTITY_API_VERSION = "2019-08-01"
TOKEN_TIMEOUT = aiohttp.ClientTimeout(total=10)
TOKEN_RETRY = 1.0  # seconds after a failed token fetch before the next one
TOKEN_VALID_MARGIN = 60  # seconds before its expiry a cached token is no longer sent
SEND_TIMEOUT = aiohttp.ClientTimeout(total=30)


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
    """Bot Framework access tokens, cached until near expiry.

    From OAuth client credentials (MultiTenant, SingleTenant: the app's password), or from the
    platform's managed identity endpoint (UserAssignedMSI: no secret of ours at all). Fetched with
    aiohttp and a timeout, so a token endpoint that never answers cannot freeze the event loop;
    concurrent senders share one fetch.
    """

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self._session = session
        self._settings = settings
        self._token = ""
        self._expires_at = 0.0  # when to fetch a new one
        self._valid_until = 0.0  # when the cached one stops being accepted (with a margin)
        self._failed_until = 0.0
        self._failure: ConnectorError | None = None
        self._lock = asyncio.Lock()

    @property
    def endpoint(self) -> str:
        if self._settings.token_endpoint:
            return self._settings.token_endpoint
        if self._settings.managed_identity:
            return self._settings.identity_endpoint
        single = self._settings.single_tenant and self._settings.app_tenant_id
        tenant = self._settings.app_tenant_id if single else "botframework.com"
        return f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"

    async def token(self) -> str:
        """A token, fetched if due. A failed fetch (the endpoint's error, or no answer) raises
        ConnectorError TokenRequestFailed (503 if worth another try), which delivery reads as
        "channel not ready", never as the recipient's failure. Meanwhile a cached token still
        valid goes on being used (the refresh is due minutes before it expires), and for
        TOKEN_RETRY after a failure every caller gets it at once instead of fetching again."""
        if time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            now = time.monotonic()
            if now < self._expires_at:
                return self._token
            if now >= self._failed_until:
                try:
                    await self._fetch()
                    return self._token
                except ConnectorError as error:
                    self._failed(error)
                except (aiohttp.ClientError, TimeoutError) as error:
                    reason = f"could not get a bot token ({type(error).__name__}: {error})"
                    self._failed(ConnectorError(503, "TokenRequestFailed", reason))
            if now < self._valid_until:
                return self._token
            assert self._failure is not None
            raise self._failure

    def _failed(self, error: ConnectorError) -> None:
        self._failure = error
        self._failed_until = time.monotonic() + TOKEN_RETRY
        log.warning("bot token fetch failed (%s)%s", error, "; using the cached token" if self._token else "")

    async def _fetch(self) -> None:
        request = self._identity_request() if self._settings.managed_identity else self._password_request()
        async with request as resp:
            try:
                body = await resp.json(content_type=None)
                token, lifetime = str(body["access_token"]), _lifetime(body)
            except (ValueError, TypeError, KeyError, aiohttp.ContentTypeError):
                body = None
            if resp.status != 200 or body is None:
                # Never log the body: it may echo the client secret's hint or the token.
                raise ConnectorError(
                    _token_failure_status(resp.status),
                    "TokenRequestFailed",
                    f"could not get a bot token (the token endpoint answered {resp.status})",
                )
        self._token = token
        # Refresh five minutes early so a send never carries a token that expires in flight.
        self._expires_at = time.monotonic() + max(0, lifetime - 300)
        self._valid_until = time.monotonic() + max(0, lifetime - TOKEN_VALID_MARGIN)
        self._failure = None

    def _password_request(self) -> Any:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._settings.app_id,
            "client_secret": self._settings.app_password,
            "scope": BOT_FRAMEWORK_SCOPE,
        }
        return self._session.post(self.endpoint, data=form, timeout=TOKEN_TIMEOUT)

    def _identity_request(self) -> Any:
        """The App Service / Functions managed identity protocol (api-version 2019-08-01): a GET
        to IDENTITY_ENDPOINT with the X-IDENTITY-HEADER it wants, for the identity's client id."""
        params = {
            "resource": BOT_FRAMEWORK_RESOURCE,
            "api-version": IDENTITY_API_VERSION,
            "client_id": self._settings.app_id,
        }
        headers = {"X-IDENTITY-HEADER": self._settings.identity_header}
        return self._session.get(self.endpoint, params=params, headers=headers, timeout=TOKEN_TIMEOUT)


def _token_failure_status(status: int) -> int:
    """What a failed token fetch is, told as a channel status: every caller reads ConnectorError
    as the channel's answer, and the token endpoint's own status would mislead them (its 403 or
    404 would mark the recipient gone, its 429 hold the conversation). 503: the endpoint's 5xx or
    429, worth another try later; 502: a 200 with no usable token; 401: any other refusal, a
    configuration problem no retry fixes (what the channel answers a bot with no valid token)."""
    if status >= 500 or status == 429:
        return 503
    return 502 if status == 200 else 401


def _lifetime(body: dict[str, Any]) -> int:
    """Seconds the token lives: OAuth says `expires_in`; the identity endpoint `expires_on`
    (epoch seconds, as a string)."""
    if "expires_in" in body:
        return int(body["expires_in"])
    if "expires_on" in body:
        return int(float(body["expires_on"]) - time.time())
    return 3600


class Conversations:
    """The part of botframework-connector's `ConversationsOperations` that the adapter calls."""

    def __init__(self, session: aiohttp.ClientSession, service_url: str, tokens: TokenProvider | None):
        self._session = session
        self._base = service_url.rstrip("/") + "/v3/conversations/"
        self._tokens = tokens

    async def send_to_conversation(self, conversation_id: str, activity: Activity) -> ResourceResponse:
        return await self._call("POST", self._path(conversation_id), activity)

    async def reply_to_activity(self, conversation_id: str, activity_id: str, activity: Activity) -> ResourceResponse:
        return await self._call("POST", self._path(conversation_id, activity_id), activity)

    async def update_activity(self, conversation_id: str, activity_id: str, activity: Activity) -> ResourceResponse:
        return await self._call("PUT", self._path(conversation_id, activity_id), activity)

    async def delete_activity(self, conversation_id: str, activity_id: str) -> None:
        await self._call("DELETE", self._path(conversation_id, activity_id), None)

    async def create(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """POST /v3/conversations (ConversationParameters JSON) → ConversationResourceResponse JSON."""
        return await self._json("POST", self._base.rstrip("/"), parameters)

    async def paged_members(
        self, conversation_id: str, page_size: int, continuation_token: str | None
    ) -> dict[str, Any]:
        """GET /v3/conversations/{id}/pagedmembers → {"members": [...], "continuationToken": ...}."""
        params = {"pageSize": str(page_size)}
        if continuation_token:
            params["continuationToken"] = continuation_token
        return await self._json("GET", self._base + quote(conversation_id, safe="") + "/pagedmembers", None, params)

    async def _json(
        self, method: str, url: str, body: dict[str, Any] | None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        headers = {}
        if self._tokens is not None:
            headers["Authorization"] = f"Bearer {await self._tokens.token()}"
        async with self._session.request(
            method, url, json=body, params=params, headers=headers, timeout=SEND_TIMEOUT
        ) as resp:
            if resp.status >= 400:
                raise await _connector_error(resp)
            payload = await resp.json(content_type=None) if resp.content_length != 0 else None
        return payload if isinstance(payload, dict) else {}

    def _path(self, conversation_id: str, activity_id: str | None = None) -> str:
        path = self._base + quote(conversation_id, safe="")
        path += "/activities"
        return path + ("/" + quote(activity_id, safe="") if activity_id else "")

    async def _call(self, method: str, url: str, activity: Activity | None) -> ResourceResponse:
        payload = await self._json(method, url, activity_json(activity) if activity is not None else None)
        return ResourceResponse(id=payload.get("id", ""))


async def _connector_error(resp: aiohttp.ClientResponse) -> ConnectorError:
    try:
        error = (await resp.json(content_type=None) or {}).get("error") or {}
    except (ValueError, AttributeError, aiohttp.ContentTypeError):
        error = {}
    return ConnectorError(
        status=resp.status,
        code=str(error.get("code", "")),
        message=str(error.get("message", ""))[:500],
        retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
    )


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header in seconds: delay-seconds or an HTTP-date (RFC 9110, 10.2.3)."""
    if not value or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None  # neither form: no hint, so the caller backs off on its own
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; the obsolete forms may carry no zone
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class ConnectorClient:
    """Duck-types botframework-connector's ConnectorClient as far as BotFrameworkAdapter uses it."""

    def __init__(self, session: aiohttp.ClientSession, service_url: str, tokens: TokenProvider | None) -> None:
        self.conversations = Conversations(session, service_url, tokens)


_msrest = Serializer()  # type: ignore[no-untyped-call]  # msrest ships no type hints


def activity_json(model: Model) -> dict[str, Any]:
    """An activity as the Connector API's JSON; the same output as msrest's `serialize()`.

    msrest walks every attribute through generic machinery; at hundreds of sends a second that
    is a large share of a core. This walks the models' own attribute maps, handing anything but
    plain values, models, lists and dicts back to msrest.
    """
    out: dict[str, Any] = {}
    for attribute, spec in type(model)._attribute_map.items():
        value = getattr(model, attribute, None)
        if value is not None:
            out[spec["key"]] = _json_value(value, spec["type"])
    return out


def _json_value(value: Any, type_name: str) -> Any:
    if isinstance(value, Model):
        return activity_json(value)
    if isinstance(value, (str, bool, int, float)) and type_name in _PLAIN_TYPES:
        return value
    if isinstance(value, list) and type_name.startswith("["):
        return [_json_value(item, type_name[1:-1]) for item in value]
    if isinstance(value, dict) and type_name == "object":
        return value
    return _msrest.serialize_data(value, type_name)  # type: ignore[no-untyped-call]  # dates, enums, anything unusual


_PLAIN_TYPES = frozenset({"str", "bool", "int", "float", "object"})
