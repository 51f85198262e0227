"""The panel beside the chat: "another system" sending through the front door or the queue.

The queue path against the real app is in tests/test_webchat_browser.py; here the front door is
a small stand-in that checks the key and answers like an HTTP API that accepted the work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from devtools.webchat import FrontDoorSender, Panel, QueueSender, WebChatChannel, notification, sender_for
from proactive_bot.notifications import validate
from tests.devtools.local_server import serving

KEY = "local-function-key"


class FrontDoor:
    """POST /api/notifications and GET /api/notifications/{id}, behind a function key."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/notifications", self._post)
        app.router.add_get("/api/notifications/{id}", self._get)
        return app

    async def _post(self, request: web.Request) -> web.Response:
        if request.headers.get("x-functions-key") != KEY:
            return web.Response(status=401)
        document = await request.json()
        self.received.append(document)
        return web.json_response({"id": document["id"], "state": "accepted"}, status=202)

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "state": "done", "sent": 1})


@pytest.fixture
async def front_door() -> AsyncIterator[FrontDoor]:
    door = FrontDoor()
    async with serving(door.app()) as door.url:
        yield door


@pytest.fixture
async def channel(front_door: FrontDoor) -> AsyncIterator[WebChatChannel]:
    panel = Panel(front_door.url, FrontDoorSender(front_door.url, KEY))
    async with WebChatChannel("http://127.0.0.1:9/api/messages", panel=panel) as web_chat:
        yield web_chat


def test_the_panels_notifications_follow_the_queue_contract():
    to_me = notification("me", "Build 42 passed", "user-1a2b")
    to_all = notification("everyone", "The office closes at 3 pm")

    assert validate(to_me).to == {"userId": "user-1a2b", "channelId": "directline"}
    assert validate(to_all).to == {"all": True}
    assert to_me["id"] != to_all["id"]


def test_the_front_door_is_used_once_the_app_has_it(monkeypatch):
    class Host:
        url = "http://127.0.0.1:7071"
        host_key = KEY

        def __init__(self, functions: set[str]) -> None:
            self._functions = functions

        def find_function(self, name: str) -> object | None:
            return object() if name in self._functions else None

    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("NotificationsQueue", "notifications")

    assert isinstance(sender_for(Host({"messages", "notifications_api"})), FrontDoorSender)
    assert isinstance(sender_for(Host({"messages", "queue_notify"})), QueueSender)


async def test_a_notification_goes_through_the_front_door_with_the_key_and_its_answers_come_back(channel, front_door):
    async with aiohttp.ClientSession() as http:
        body = {"audience": "me", "userId": "user-1a2b", "text": "Build 42 passed"}
        async with http.post(f"{channel.url}/panel/notifications", json=body) as response:
            assert response.status == 200
            receipt = await response.json()
        async with http.get(f"{channel.url}/panel/notifications/{receipt['id']}") as response:
            status = await response.json()

    [document] = front_door.received
    assert document["to"] == {"userId": "user-1a2b", "channelId": "directline"}
    assert receipt == {
        "id": document["id"],
        "via": "front door",
        "accepted": True,
        "status": 202,
        "detail": {"id": document["id"], "state": "accepted"},
    }
    assert status["detail"] == {"id": document["id"], "state": "done", "sent": 1}


async def test_the_panel_refuses_what_the_contract_would_refuse(channel, front_door):
    async with aiohttp.ClientSession() as http:
        for body in ({"audience": "the boss", "text": "hi"}, {"audience": "me", "userId": "u", "text": ""}):
            async with http.post(f"{channel.url}/panel/notifications", json=body) as response:
                assert response.status == 400
                assert "error" in await response.json()
    assert front_door.received == []


async def test_run_timer_passes_on_what_the_host_answered(channel):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{channel.url}/panel/timer") as response:
            assert response.status == 502
            # This stand-in has no admin API: the page shows the host's own answer.
            assert await response.json() == {
                "function": "timer_notify",
                "status": 404,
                "error": "the host answered 404",
            }
