"""The panel beside the chat: "another system" that notifies users and runs the timer.

It sends notifications the way a producer would, so what the page shows is what production
does: through the HTTP front door (`POST /api/notifications` with a function key) when the app
has one, else straight onto the notifications queue. Choosing is one place, `sender_for`; the
page only ever talks to the routes below and shows what they answer.

    POST   /panel/notifications        {"audience": "me" | "everyone", "userId": ..., "text": ...,
                                        "delaySeconds": 60 (optional: notBefore that far ahead)}
    GET    /panel/notifications/{id}   delivery status, when the sender can tell
    PATCH  /panel/notifications/{id}   {"text": ...}: edit it where it was sent (front door only)
    DELETE /panel/notifications/{id}   cancel or recall it (front door only)
    POST   /panel/timer                run timer_notify now (the host's admin API)
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import web

from proactive_bot import cli, clock
from proactive_bot.notifications.contract import InvalidNotification, validate
from proactive_bot.settings import Settings

from .conversations import CHANNEL_ID

if TYPE_CHECKING:
    from devtools.funchost import FunctionHost

    from .channel import WebChatChannel

FRONT_DOOR_FUNCTION = "notifications_api"
TIMER_FUNCTION = "timer_notify"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)


@dataclass(frozen=True)
class Receipt:
    """What came back from sending one notification, as the page shows it."""

    id: str
    via: str  # "queue" or "front door"
    accepted: bool
    status: int | None = None  # the front door's HTTP status
    detail: Any = field(default=None)  # its JSON body (or text); for the queue, where it went


class NotificationSender(Protocol):
    via: str

    async def send(self, http: aiohttp.ClientSession, document: dict[str, Any]) -> Receipt: ...

    async def status(self, http: aiohttp.ClientSession, notification_id: str) -> Receipt | None: ...

    async def change(
        self, http: aiohttp.ClientSession, notification_id: str, edit: dict[str, Any] | None
    ) -> Receipt | None:
        """Edit (`edit`: the PATCH body) or cancel/recall (None); None if the sender cannot."""


class QueueSender:
    """Enqueue like any producer (`proactive_bot.cli.enqueue`). The queue answers nothing about
    delivery, so status is unknown; the message itself shows up in the chat."""

    via = "queue"

    def __init__(self, connection: str, queue: str) -> None:
        self._connection = connection
        self._queue = queue

    async def send(self, http: aiohttp.ClientSession, document: dict[str, Any]) -> Receipt:
        await cli.enqueue(document, self._connection, self._queue)
        return Receipt(document["id"], self.via, True, detail={"queue": self._queue, "state": "queued"})

    async def status(self, http: aiohttp.ClientSession, notification_id: str) -> Receipt | None:
        return None

    async def change(
        self, http: aiohttp.ClientSession, notification_id: str, edit: dict[str, Any] | None
    ) -> Receipt | None:
        return None


class FrontDoorSender:
    """POST /api/notifications with the function key; GET /api/notifications/{id} for status.
    Both answers are passed through to the page as they are."""

    via = "front door"

    def __init__(self, host_url: str, function_key: str) -> None:
        self._base = host_url.rstrip("/") + "/api/notifications"
        self._headers = {"x-functions-key": function_key}

    async def send(self, http: aiohttp.ClientSession, document: dict[str, Any]) -> Receipt:
        async with http.post(self._base, json=document, headers=self._headers, timeout=HTTP_TIMEOUT) as response:
            return Receipt(document["id"], self.via, response.status < 300, response.status, await _body(response))

    async def status(self, http: aiohttp.ClientSession, notification_id: str) -> Receipt | None:
        url = f"{self._base}/{notification_id}"
        async with http.get(url, headers=self._headers, timeout=HTTP_TIMEOUT) as response:
            return Receipt(notification_id, self.via, response.status < 300, response.status, await _body(response))

    async def change(
        self, http: aiohttp.ClientSession, notification_id: str, edit: dict[str, Any] | None
    ) -> Receipt | None:
        url = f"{self._base}/{notification_id}"
        method = "DELETE" if edit is None else "PATCH"
        async with http.request(method, url, json=edit, headers=self._headers, timeout=HTTP_TIMEOUT) as response:
            return Receipt(notification_id, self.via, response.status < 300, response.status, await _body(response))


class AppHost(Protocol):
    """What choosing a sender reads of the host (a FunctionHost, or a test's stand-in)."""

    host_key: str

    @property
    def url(self) -> str: ...

    def find_function(self, name: str) -> object | None: ...


def sender_for(host: AppHost) -> NotificationSender:
    """The front door if the app has it, else the queue the app's queue trigger reads."""
    if host.find_function(FRONT_DOOR_FUNCTION) is not None:
        return FrontDoorSender(host.url, host.host_key)
    settings = Settings.from_env()  # the running host exported the app's settings
    return QueueSender(settings.storage_connection, settings.notifications_queue)


def notification(audience: str, text: str, user_id: str = "", delay_seconds: int = 0) -> dict[str, Any]:
    """A version 1 notification document (the queue contract) for the panel's buttons."""
    to: dict[str, Any] = {"all": True} if audience == "everyone" else {"userId": user_id, "channelId": CHANNEL_ID}
    document: dict[str, Any] = {"id": f"panel-{uuid.uuid4().hex[:12]}", "to": to, "text": text}
    if delay_seconds:
        document["notBefore"] = (clock.now() + timedelta(seconds=delay_seconds)).isoformat(timespec="seconds")
    return document


class Panel:
    def __init__(self, host_url: str, sender: NotificationSender) -> None:
        self.host_url = host_url.rstrip("/")
        self.sender = sender

    @classmethod
    def for_host(cls, host: FunctionHost) -> Panel:
        return cls(host.url, sender_for(host))

    def routes(self, channel: WebChatChannel) -> list[web.RouteDef]:
        def http() -> aiohttp.ClientSession:
            assert channel.http is not None  # set when the channel starts, before it serves these routes
            return channel.http

        async def notify(request: web.Request) -> web.Response:
            return await self._notify(http(), request)

        async def status(request: web.Request) -> web.Response:
            receipt = await self.sender.status(http(), request.match_info["id"])
            if receipt is None:
                return web.json_response(
                    {"error": f"sent via the {self.sender.via}: no delivery status to ask for"}, status=404
                )
            return web.json_response(asdict(receipt))

        async def change(request: web.Request) -> web.Response:
            return await self._change(http(), request)

        async def timer(request: web.Request) -> web.Response:
            return await self._run_timer(http())

        return [
            web.post("/panel/notifications", notify),
            web.get("/panel/notifications/{id}", status),
            web.patch("/panel/notifications/{id}", change),
            web.delete("/panel/notifications/{id}", change),
            web.post("/panel/timer", timer),
        ]

    async def _change(self, http: aiohttp.ClientSession, request: web.Request) -> web.Response:
        edit = None
        if request.method == "PATCH":
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"error": "the body is not JSON"}, status=400)
            if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
                return web.json_response({"error": "an edit needs text"}, status=400)
            edit = {"text": body["text"]}
        try:
            receipt = await self.sender.change(http, request.match_info["id"], edit)
        except Exception as error:  # host gone: tell the page, keep serving
            return web.json_response({"error": f"not changed via the {self.sender.via}: {error}"}, status=502)
        if receipt is None:
            return web.json_response(
                {"error": f"sent via the {self.sender.via}: only the front door can edit or recall"}, status=404
            )
        return web.json_response(asdict(receipt), status=200 if receipt.accepted else 502)

    async def _notify(self, http: aiohttp.ClientSession, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        audience = body.get("audience") if isinstance(body, dict) else None
        if audience not in ("me", "everyone"):
            return web.json_response({"error": "audience must be 'me' or 'everyone'"}, status=400)
        delay = body.get("delaySeconds") or 0
        if not isinstance(delay, int) or not 0 <= delay <= 3600:
            return web.json_response({"error": "delaySeconds must be 0-3600"}, status=400)
        document = notification(audience, str(body.get("text") or ""), str(body.get("userId") or ""), delay)
        try:
            validate(document)  # the same contract check the app applies
        except InvalidNotification as error:
            return web.json_response({"error": str(error)}, status=400)
        try:
            receipt = await self.sender.send(http, document)
        except Exception as error:  # storage down, host gone: tell the page, keep serving
            return web.json_response({"error": f"not sent via the {self.sender.via}: {error}"}, status=502)
        return web.json_response(asdict(receipt), status=200 if receipt.accepted else 502)

    async def _run_timer(self, http: aiohttp.ClientSession) -> web.Response:
        url = f"{self.host_url}/admin/functions/{TIMER_FUNCTION}"
        try:
            async with http.post(url, json={"input": ""}, timeout=HTTP_TIMEOUT) as response:
                answer = {"function": TIMER_FUNCTION, "status": response.status}
                if response.status < 300:  # 202: started; the reminders then arrive in the chat
                    return web.json_response(answer)
                return web.json_response({**answer, "error": f"the host answered {response.status}"}, status=502)
        except aiohttp.ClientError as error:
            return web.json_response({"error": f"cannot reach the host at {self.host_url}: {error}"}, status=502)


async def _body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return await response.json(content_type=None) if text.strip() else None
    except ValueError:
        return text[:1000]
