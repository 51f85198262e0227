"""A local Direct Line channel with Microsoft Web Chat on a page: chat with the bot in a browser.

Toward the browser it speaks Direct Line 3.0, the protocol Web Chat's `createDirectLine` uses
(token, start/resume conversation, post activity, activities by WebSocket stream or polling).
Toward the bot it is a channel: it posts the user's activities to the bot's endpoint, and it
is the `serviceUrl` the bot answers and sends proactive messages to (Bot Connector REST API).
What the bot sends reaches the open page at once over the WebSocket.

    async with WebChatChannel(bot_url) as channel:   # channel.url serves the page
        ...

Direct Line answers 405 to updating or deleting activities. This channel does both by default,
because Web Chat can show them on its own: an edit goes to the page as the activity again, with
its id and timestamp (Web Chat replaces an activity by id, in place), a deletion as a
`messageDelete` activity of that id, which the page turns into Web Chat's own DELETE_ACTIVITY.
`WebChatChannel(..., changes=False)` answers 405 instead, as production Direct Line does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import aiohttp
from aiohttp import web

from devtools.connector_stub.wire import describe_activity, error_body

from .conversations import BOT, CHANNEL_ID, TOKEN_LIFETIME_SECONDS, Conversation, Conversations, timestamp
from .panel import Panel

log = logging.getLogger("webchat")

REPO_ROOT = Path(__file__).resolve().parents[2]
STATIC = Path(__file__).parent / "static"
WEBCHAT_BUNDLE = REPO_ROOT / "node_modules" / "botframework-webchat" / "dist" / "webchat.js"
DEFAULT_PORT = 3979
# Channels give a bot about 15 s to answer a turn before they give up on it.
BOT_TIMEOUT = aiohttp.ClientTimeout(total=15)
MAX_BODY = 512 * 1024

# The page may load and connect to nothing but this server: Web Chat comes from node_modules.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data: blob:; "
    "connect-src 'self' ws://{host}; frame-src 'none'; object-src 'none'"
)


class WebChatChannel:
    """See the module docstring. `panel` adds the "another system" routes beside the chat."""

    def __init__(
        self, bot_url: str, *, panel: Panel | None = None, console: TextIO | None = None, changes: bool = True
    ) -> None:
        self.bot_url = bot_url
        self.changes = changes  # False: PUT/DELETE of activities answer 405, as Direct Line does
        self.panel = panel
        self.conversations = Conversations()
        self.forwarded: list[dict[str, Any]] = []  # every activity posted to the bot, in order
        self._console = console
        self._sockets: set[web.WebSocketResponse] = set()
        self._background: set[asyncio.Task[None]] = set()
        self.http: aiohttp.ClientSession | None = None  # shared with the panel
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def url(self) -> str:
        """The page, and the serviceUrl the bot is given."""
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.http = aiohttp.ClientSession()
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes(self._routes())
        if self.panel is not None:
            app.add_routes(self.panel.routes(self))
        app.on_shutdown.append(self._close_sockets)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.host = host
        self.port = self._runner.addresses[0][1]
        return self.url

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.http is not None:
            await self.http.close()
            self.http = None

    async def __aenter__(self) -> WebChatChannel:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _routes(self) -> list[web.RouteDef]:
        directline = "/v3/directline"
        conversation = directline + "/conversations/{conversation_id}"
        connector = "/v3/conversations/{conversation_id}/activities"
        return [
            web.get("/", self._page),
            web.get("/favicon.ico", _no_content),
            web.get("/static/{name}", self._static),
            web.get("/vendor/webchat.js", self._bundle),
            web.post(directline + "/tokens/generate", self._generate_token),
            web.post(directline + "/tokens/refresh", self._refresh_token),
            web.post(directline + "/conversations", self._start_conversation),
            web.get(conversation, self._resume_conversation),
            web.get(conversation + "/stream", self._stream),
            web.get(conversation + "/activities", self._get_activities),
            web.post(conversation + "/activities", self._post_activity),
            web.post(connector, self._bot_sends),
            web.post(connector + "/{activity_id}", self._bot_sends),
            web.put(connector + "/{activity_id}", self._bot_updates),
            web.delete(connector + "/{activity_id}", self._bot_deletes),
        ]

    # ---- the page ------------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC / "index.html")
        response.headers["Content-Security-Policy"] = _CSP.format(host=request.host)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _static(self, request: web.Request) -> web.StreamResponse:
        path = STATIC / request.match_info["name"]
        if path.parent != STATIC or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    async def _bundle(self, request: web.Request) -> web.StreamResponse:
        if not WEBCHAT_BUNDLE.is_file():
            return web.Response(
                status=500,
                text=f"// {WEBCHAT_BUNDLE} is missing: run `make run` (it installs node_modules)\n",
                content_type="application/javascript",
            )
        return web.FileResponse(WEBCHAT_BUNDLE)

    # ---- Direct Line 3.0: tokens and conversations ---------------------------------------------

    async def _generate_token(self, request: web.Request) -> web.Response:
        """POST /tokens/generate {user: {id, name}}. Beyond the real API, this local channel also
        takes the page's `locale` and `localTimezone`, for the conversationUpdate it sends."""
        body = await _json_object(request, required=False)
        if isinstance(body, web.Response):
            return body
        user = body.get("user")
        if user is not None and not (isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"]):
            return _error(400, "BadArgument", "user must be an object with a string id")
        conversation = self.conversations.create(
            {"id": user["id"], "name": str(user.get("name") or "")} if user else None,
            locale=str(body.get("locale") or ""),
            tz=str(body.get("localTimezone") or ""),
        )
        return web.json_response(_token_payload(conversation))

    async def _refresh_token(self, request: web.Request) -> web.Response:
        conversation = self._authorized(request)
        if isinstance(conversation, web.Response):
            return conversation
        return web.json_response(_token_payload(conversation))

    async def _start_conversation(self, request: web.Request) -> web.Response:
        """POST /conversations: 201 and a stream URL; the bot gets a conversationUpdate."""
        conversation = self._authorized(request)
        if isinstance(conversation, web.Response):
            return conversation
        if conversation.started:  # Direct Line: 200, "already started", same conversation
            return web.json_response(self._conversation_payload(request, conversation, 0))
        body = await _json_object(request, required=False)
        if isinstance(body, web.Response):
            return body
        conversation.locale = conversation.locale or str(body.get("locale") or "")
        conversation.started = True
        self._spawn(self._welcome(conversation))
        return web.json_response(self._conversation_payload(request, conversation, 0), status=201)

    async def _resume_conversation(self, request: web.Request) -> web.Response:
        """GET /conversations/{id}?watermark=: a fresh stream URL (reconnect, or page reload)."""
        found = self._authorized_from(request)
        if isinstance(found, web.Response):
            return found
        conversation, watermark = found
        return web.json_response(self._conversation_payload(request, conversation, watermark))

    def _conversation_payload(self, request: web.Request, conversation: Conversation, watermark: int) -> dict[str, Any]:
        stream = f"ws://{request.host}/v3/directline/conversations/{conversation.id}/stream?t={conversation.token}"
        if watermark:
            stream += f"&watermark={watermark}"
        return {**_token_payload(conversation), "streamUrl": stream}

    # ---- Direct Line 3.0: receiving ------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket: an ActivitySet per new activity, from the watermark on."""
        conversation = self.conversations.get(request.match_info["conversation_id"])
        if conversation is None:
            return _error(404, "BadArgument", "Conversation not found")
        if not secrets.compare_digest(request.query.get("t", ""), conversation.token):
            return _error(403, "TokenExpired", "The stream URL's token is not valid for this conversation")
        sent = _watermark(request) or 0
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        # Web Chat pings with empty messages; reading them also notices the close.
        reader = asyncio.ensure_future(_drain(ws))
        try:
            while not reader.done():
                batch = conversation.since(sent)
                if batch:
                    sent = conversation.watermark
                    await ws.send_str(json.dumps({"activities": batch, "watermark": str(sent)}))
                    continue
                grown = asyncio.ensure_future(conversation.changed())
                await asyncio.wait({reader, grown}, return_when=asyncio.FIRST_COMPLETED)
                grown.cancel()
        except ConnectionResetError:
            pass
        finally:
            reader.cancel()
            self._sockets.discard(ws)
            await ws.close()
        return ws

    async def _get_activities(self, request: web.Request) -> web.Response:
        found = self._authorized_from(request)
        if isinstance(found, web.Response):
            return found
        conversation, watermark = found
        activities = conversation.since(watermark, typing=False)
        return web.json_response({"activities": activities, "watermark": str(conversation.watermark)})

    # ---- Direct Line 3.0: the user sends -------------------------------------------------------

    async def _post_activity(self, request: web.Request) -> web.Response:
        """The user's activity: echoed into the transcript, then delivered to the bot."""
        conversation = self._authorized(request, request.match_info["conversation_id"])
        if isinstance(conversation, web.Response):
            return conversation
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body.get("type"), str) or not body["type"]:
            return _error(400, "MissingProperty", "The activity needs a type")
        activity = conversation.append(self._from_user(conversation, body))
        self._print(conversation, "you", activity)
        problem = await self._to_bot(activity)
        if problem is not None:
            return problem
        return web.json_response({"id": activity["id"]})

    def _from_user(self, conversation: Conversation, body: dict[str, Any]) -> dict[str, Any]:
        # Web Chat's own fields (text, value, locale, localTimestamp, localTimezone,
        # channelData.clientActivityID, entities, ...) pass through; the channel's are set here.
        return {
            **{k: v for k, v in body.items() if k not in ("id", "timestamp", "serviceUrl", "recipient")},
            "timestamp": timestamp(),
            "channelId": CHANNEL_ID,
            "serviceUrl": self.url,
            # The token decides who is speaking, not the body.
            "from": {**conversation.user, "role": "user"},
            "recipient": dict(BOT),
        }

    async def _welcome(self, conversation: Conversation) -> None:
        """What Direct Line sends the bot when a conversation starts: bot and user joined."""
        activity: dict[str, Any] = {
            "type": "conversationUpdate",
            "id": secrets.token_hex(8),
            "timestamp": timestamp(),
            "channelId": CHANNEL_ID,
            "serviceUrl": self.url,
            "from": {**conversation.user, "role": "user"},
            "conversation": {"id": conversation.id},
            "recipient": dict(BOT),
            "membersAdded": [dict(BOT), dict(conversation.user)],
        }
        if conversation.locale:
            activity["locale"] = conversation.locale
        if conversation.timezone:
            activity["localTimezone"] = conversation.timezone
        problem = await self._to_bot(activity)
        if problem is not None:
            log.warning(
                "The bot did not take the conversationUpdate of %s (is the host running at %s?)",
                conversation.id,
                self.bot_url,
            )

    async def _to_bot(self, activity: dict[str, Any]) -> web.Response | None:
        """POST the activity to the bot's endpoint; an error response for the page if it failed."""
        assert self.http is not None
        self.forwarded.append(activity)
        try:
            async with self.http.post(self.bot_url, json=activity, timeout=BOT_TIMEOUT) as response:
                if response.status < 300:
                    return None
                detail = (await response.text())[:500]
                log.warning("The bot answered %s to a %s activity: %s", response.status, activity["type"], detail)
                return _error(502, "BotError", f"The bot answered {response.status}")
        except TimeoutError:
            return _error(504, "BotTimeout", "The bot did not answer within 15 s")
        except aiohttp.ClientError as error:
            return _error(502, "BotUnavailable", f"Cannot reach the bot at {self.bot_url}: {error}")

    # ---- Bot Connector REST API: the bot sends -------------------------------------------------

    async def _bot_sends(self, request: web.Request) -> web.Response:
        """POST /v3/conversations/{id}/activities[/{replyToId}]: into the transcript, onto the page."""
        conversation = self.conversations.get(request.match_info["conversation_id"])
        if conversation is None:
            return web.json_response(error_body("ConversationNotFound"), status=404)
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body.get("type"), str) or not body["type"]:
            return web.json_response(error_body("BadArgument", "The activity needs a type."), status=400)
        activity = _from_bot(body, dropping=("id", "timestamp"))
        if "activity_id" in request.match_info:
            activity["replyToId"] = request.match_info["activity_id"]
        stored = conversation.append(activity)
        self._print(conversation, "bot", stored)
        return web.json_response({"id": stored["id"]})

    async def _bot_updates(self, request: web.Request) -> web.Response:
        """PUT /v3/conversations/{id}/activities/{activityId}: the page shows the new version in place."""
        found = self._changeable(request)
        if isinstance(found, web.Response):
            return found
        conversation, original = found
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        edited = {**_from_bot(body, dropping=("id", "timestamp", "replyToId")), "type": "message"}
        stored = conversation.replace(original["id"], edited)
        self._print(conversation, "bot (edited)", stored)
        return web.json_response({"id": stored["id"]})

    async def _bot_deletes(self, request: web.Request) -> web.Response:
        """DELETE /v3/conversations/{id}/activities/{activityId}: gone from the page."""
        found = self._changeable(request)
        if isinstance(found, web.Response):
            return found
        conversation, original = found
        conversation.replace(original["id"], {"type": "messageDelete", "from": dict(BOT), "channelId": CHANNEL_ID})
        if self._console is not None:
            print(f"[webchat] bot deleted {original['id']}", file=self._console, flush=True)
        return web.Response(status=200)

    def _changeable(self, request: web.Request) -> tuple[Conversation, dict[str, Any]] | web.Response:
        if not self.changes:
            return web.json_response(
                error_body("MethodNotAllowed", "Direct Line does not support updating or deleting activities."),
                status=405,
            )
        conversation = self.conversations.get(request.match_info["conversation_id"])
        if conversation is None:
            return web.json_response(error_body("ConversationNotFound"), status=404)
        original = conversation.current(request.match_info["activity_id"])
        if original is None or original.get("from", {}).get("role") != "bot":
            # Like a channel: only the bot's own activities that are still there can change.
            return web.json_response(error_body("ActivityNotFound", "No such activity of the bot."), status=404)
        return conversation, original

    # ---- helpers -------------------------------------------------------------------------------

    def _authorized(self, request: web.Request, conversation_id: str | None = None) -> Conversation | web.Response:
        """The conversation the bearer token opens (and that it is the one in the URL)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "BadArgument", "Authorization: Bearer <token> is required")
        conversation = self.conversations.by_token(token.strip())
        if conversation is None or (conversation_id is not None and conversation.id != conversation_id):
            if conversation_id is not None and self.conversations.get(conversation_id) is None:
                return _error(404, "BadArgument", "Conversation not found")
            return _error(403, "TokenExpired", "The token is not valid for this conversation")
        return conversation

    def _authorized_from(self, request: web.Request) -> tuple[Conversation, int] | web.Response:
        """The URL's conversation (if the token opens it) and the `?watermark=` asked for."""
        conversation = self._authorized(request, request.match_info["conversation_id"])
        if isinstance(conversation, web.Response):
            return conversation
        watermark = _watermark(request)
        if watermark is None:
            return _error(400, "BadArgument", "watermark must be a number")
        return conversation, watermark

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _print(self, conversation: Conversation, who: str, activity: Mapping[str, Any]) -> None:
        if self._console is not None and activity.get("type") != "typing":
            name = conversation.user.get("name") or conversation.user["id"]
            print(f"[webchat {name}] {who}: {describe_activity(activity)}", file=self._console, flush=True)

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"channel stopping")


def _token_payload(conversation: Conversation) -> dict[str, Any]:
    return {"conversationId": conversation.id, "token": conversation.token, "expires_in": TOKEN_LIFETIME_SECONDS}


async def _no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _drain(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass


def _watermark(request: web.Request) -> int | None:
    text = request.query.get("watermark", "") or "0"
    return int(text) if text.isdigit() else None


def _from_bot(body: dict[str, Any], *, dropping: tuple[str, ...]) -> dict[str, Any]:
    """An activity the bot sent (or edited), as the page keeps it: the fields the channel sets
    itself dropped, and the bot as its sender. Web Chat tells the bot's messages from the
    user's by role."""
    sender = found if isinstance(found := body.get("from"), dict) else {}
    return {
        **{k: v for k, v in body.items() if k not in dropping},
        "from": {**BOT, **sender, "role": "bot"},
        "channelId": CHANNEL_ID,
    }


async def _json_object(request: web.Request, *, required: bool = True) -> dict[str, Any] | web.Response:
    raw = await request.read()
    if not raw.strip():
        return _error(400, "BadArgument", "The request body is empty") if required else {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error(400, "BadArgument", f"The request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "BadArgument", "The request body must be a JSON object")
    return body


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)
