"""The local Web Chat channel, spoken to as Web Chat (Direct Line 3.0) and as a bot (Connector API).

The bot here is a few lines that answer through the serviceUrl the way botbuilder does; the
real app against a real browser is tests/test_webchat_browser.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from devtools.webchat import BOT, CHANNEL_ID, WebChatChannel
from tests.devtools.local_server import serving
from tests.support.polling import eventually

USER = {"id": "user-1a2b3c4d", "name": "Ada"}


class ReplyingBot:
    """A bot endpoint: records what the channel posts and answers messages with "you said ..."."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""
        self._http = http

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/messages", self._messages)
        return app

    async def _messages(self, request: web.Request) -> web.Response:
        activity = await request.json()
        self.received.append(activity)
        if self.status == 200 and activity["type"] == "message":
            await self.send(activity, {"type": "message", "text": f"you said {activity.get('text')}"}, reply=True)
        return web.Response(status=self.status)

    async def send(
        self, to: dict[str, Any], activity: dict[str, Any], *, reply: bool = False
    ) -> aiohttp.ClientResponse:
        """POST into `to`'s conversation as a proactive send or a reply (botbuilder's two routes)."""
        url = f"{to['serviceUrl']}/v3/conversations/{quote(to['conversation']['id'], safe='')}/activities"
        if reply:
            url += "/" + quote(to["id"], safe="")
        body = {**activity, "from": to["recipient"], "recipient": to["from"], "conversation": to["conversation"]}
        async with self._http.post(url, json=body) as response:
            await response.read()
            return response


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def bot(http: aiohttp.ClientSession) -> AsyncIterator[ReplyingBot]:
    replying = ReplyingBot(http)
    async with serving(replying.app()) as url:
        replying.url = f"{url}/api/messages"
        yield replying


@pytest.fixture
async def channel(bot: ReplyingBot) -> AsyncIterator[WebChatChannel]:
    async with WebChatChannel(bot.url) as web_chat:
        yield web_chat


async def start(http: aiohttp.ClientSession, channel: WebChatChannel, **extra: Any) -> dict[str, Any]:
    """What the page does: a token for this tab's user, then Web Chat starts the conversation."""
    directline = f"{channel.url}/v3/directline"
    async with http.post(f"{directline}/tokens/generate", json={"user": USER, **extra}) as response:
        assert response.status == 200
        token = (await response.json())["token"]
    async with http.post(
        f"{directline}/conversations", headers=bearer(token), json={"user": {"id": USER["id"]}}
    ) as response:
        assert response.status == 201
        return await response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def activities_url(channel: WebChatChannel, conversation: dict[str, Any]) -> str:
    return f"{channel.url}/v3/directline/conversations/{conversation['conversationId']}/activities"


async def post(
    http: aiohttp.ClientSession, channel: WebChatChannel, conversation: dict[str, Any], activity: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    url = activities_url(channel, conversation)
    async with http.post(url, json=activity, headers=bearer(conversation["token"])) as response:
        return response.status, await response.json()


def webchat_message(text: str) -> dict[str, Any]:
    """What Web Chat 4.18 posts when the user presses Enter."""
    return {
        "type": "message",
        "text": text,
        "textFormat": "plain",
        "channelId": "webchat",
        "channelData": {"clientActivityID": "1732612345678abc"},
        "from": {"id": USER["id"], "name": USER["name"], "role": "user"},
        "locale": "en-US",
        "localTimestamp": "2026-11-26T11:00:00.000+01:00",
        "localTimezone": "Europe/Berlin",
        "entities": [
            {"type": "ClientCapabilities", "requiresBotState": True, "supportsListening": True, "supportsTts": True}
        ],
    }


async def next_set(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next ActivitySet from the stream, skipping keep-alive empty messages."""
    while True:
        message = await asyncio.wait_for(ws.receive(), 10)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        if message.data:
            return json.loads(message.data)


async def until_received(bot: ReplyingBot, count: int) -> None:
    await eventually(lambda: len(bot.received) >= count, timeout=10, interval=0.01)


async def test_starting_a_conversation_tells_the_bot_who_joined_and_their_time_zone(http, channel, bot):
    conversation = await start(http, channel, locale="de-DE", localTimezone="Europe/Berlin")

    assert conversation["streamUrl"].startswith("ws://127.0.0.1:")
    await until_received(bot, 1)
    [update] = bot.received
    assert update["type"] == "conversationUpdate"
    assert update["membersAdded"] == [BOT, USER]
    assert update["conversation"] == {"id": conversation["conversationId"]}
    assert update["channelId"] == CHANNEL_ID
    assert update["serviceUrl"] == channel.url
    assert (update["locale"], update["localTimezone"]) == ("de-DE", "Europe/Berlin")


async def test_starting_twice_with_one_token_is_the_same_conversation(http, channel, bot):
    conversation = await start(http, channel)
    url = f"{channel.url}/v3/directline/conversations"
    async with http.post(url, headers=bearer(conversation["token"])) as response:
        assert response.status == 200
        assert (await response.json())["conversationId"] == conversation["conversationId"]
    await asyncio.sleep(0.05)
    assert [a["type"] for a in bot.received] == ["conversationUpdate"]


async def test_a_message_is_echoed_to_the_page_then_the_bots_answer_follows_on_the_stream(http, channel, bot):
    conversation = await start(http, channel)
    async with http.ws_connect(conversation["streamUrl"]) as ws:
        status, answer = await post(http, channel, conversation, webchat_message("hello"))
        echo, reply = (await next_set(ws))["activities"][0], (await next_set(ws))["activities"][0]

    assert status == 200 and answer["id"] == echo["id"]
    # Web Chat marks its message sent when this echo carries its clientActivityID back.
    assert echo["channelData"]["clientActivityID"] == "1732612345678abc"
    assert echo["from"] == {**USER, "role": "user"}
    assert reply["text"] == "you said hello"
    assert reply["from"]["role"] == "bot" and reply["replyToId"] == echo["id"]
    assert reply["id"] == f"{conversation['conversationId']}|0000001"
    # The bot got the user's local time and zone as Web Chat sent them, from the channel's address.
    message = bot.received[-1]
    assert (message["localTimezone"], message["localTimestamp"]) == ("Europe/Berlin", "2026-11-26T11:00:00.000+01:00")
    assert (message["channelId"], message["serviceUrl"], message["recipient"]) == (CHANNEL_ID, channel.url, BOT)


async def test_a_proactive_message_appears_on_an_open_page_without_any_request_from_it(http, channel, bot):
    conversation = await start(http, channel)
    await until_received(bot, 1)
    async with http.ws_connect(conversation["streamUrl"]) as ws:
        await asyncio.sleep(0.05)  # the page is idle, just listening
        response = await bot.send(bot.received[0], {"type": "message", "text": "⏰ Reminder: stretch"})
        [reminder] = (await next_set(ws))["activities"]

    assert response.status == 200
    assert reminder["text"] == "⏰ Reminder: stretch" and "replyToId" not in reminder


async def test_polling_returns_what_follows_the_watermark_without_typing(http, channel, bot):
    conversation = await start(http, channel)
    await post(http, channel, conversation, webchat_message("one"))
    await post(http, channel, conversation, {"type": "typing", "from": {"id": USER["id"]}})
    url = activities_url(channel, conversation)
    async with http.get(url, headers=bearer(conversation["token"])) as response:
        everything = await response.json()
    async with http.get(url, params={"watermark": "2"}, headers=bearer(conversation["token"])) as response:
        later = await response.json()

    assert [a.get("text") for a in everything["activities"]] == ["one", "you said one"]
    assert everything["watermark"] == later["watermark"] == "3"
    assert later["activities"] == []


async def test_a_reloaded_page_resumes_its_conversation_from_its_watermark(http, channel, bot):
    conversation = await start(http, channel)
    await post(http, channel, conversation, webchat_message("before"))
    url = f"{channel.url}/v3/directline/conversations/{conversation['conversationId']}"
    async with http.get(url, params={"watermark": "2"}, headers=bearer(conversation["token"])) as response:
        resumed = await response.json()
    async with http.ws_connect(resumed["streamUrl"]) as ws:
        await post(http, channel, conversation, webchat_message("after"))
        first = (await next_set(ws))["activities"]

    assert [a["text"] for a in first] == ["after"]


async def test_the_bot_cannot_post_to_an_unknown_conversation_nor_change_what_it_did_not_send(http, channel, bot):
    conversation = await start(http, channel)
    await until_received(bot, 1)
    gone = {**bot.received[0], "conversation": {"id": "no-such-conversation"}}
    base = f"{channel.url}/v3/conversations/{conversation['conversationId']}/activities/x"

    assert (await bot.send(gone, {"type": "message", "text": "hi"})).status == 404
    async with http.put(base, json={"type": "message", "text": "edited"}) as response:
        assert response.status == 404
    async with http.delete(base) as response:
        assert response.status == 404
    async with http.post(base, data=b"not json") as response:
        assert response.status == 400


async def test_the_bots_edits_and_deletions_reach_the_page_under_the_same_id(http, channel, bot):
    conversation = await start(http, channel)
    await until_received(bot, 1)
    sent = await bot.send(bot.received[0], {"type": "message", "text": "v0"})
    activity_id = (await sent.json())["id"]
    url = f"{channel.url}/v3/conversations/{conversation['conversationId']}/activities/{activity_id}"

    async with http.put(url, json={"type": "message", "text": "v1"}) as response:
        assert response.status == 200
    async with http.delete(url) as response:
        assert response.status == 200
    async with http.delete(url) as response:
        assert response.status == 404  # deleted already
    async with http.get(activities_url(channel, conversation), headers=bearer(conversation["token"])) as response:
        transcript = (await response.json())["activities"]

    versions = [a for a in transcript if a["id"] == activity_id]
    assert [(a["type"], a.get("text")) for a in versions] == [
        ("message", "v0"),
        ("message", "v1"),
        ("messageDelete", None),
    ]
    assert len({a["timestamp"] for a in versions}) == 1


async def test_like_direct_line_the_channel_can_refuse_changes_with_405(http, channel, bot):
    channel.changes = False
    conversation = await start(http, channel)
    await until_received(bot, 1)
    sent = await bot.send(bot.received[0], {"type": "message", "text": "v0"})
    url = f"{channel.url}/v3/conversations/{conversation['conversationId']}/activities/{(await sent.json())['id']}"

    async with http.put(url, json={"type": "message", "text": "v1"}) as response:
        assert response.status == 405
    async with http.delete(url) as response:
        assert response.status == 405


async def test_tokens_open_only_their_own_conversation(http, channel, bot):
    mine, theirs = await start(http, channel), await start(http, channel)
    url = activities_url(channel, mine)

    async with http.get(url) as response:
        assert response.status == 401
    async with http.get(url, headers=bearer(theirs["token"])) as response:
        assert response.status == 403
    async with http.get(url.replace(mine["conversationId"], "unknown"), headers=bearer(mine["token"])) as response:
        assert response.status == 404
    stolen = mine["streamUrl"].replace(mine["token"], theirs["token"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(stolen)
    assert refused.value.status == 403


async def test_a_bot_that_fails_the_turn_is_reported_to_the_page(http, channel, bot):
    conversation = await start(http, channel)
    bot.status = 500

    status, body = await post(http, channel, conversation, webchat_message("hello"))

    assert status == 502 and body["error"]["code"] == "BotError"


async def test_the_page_and_web_chat_come_from_this_server_only(http, channel):
    async with http.get(channel.url) as response:
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
    async with http.get(f"{channel.url}/vendor/webchat.js") as response:
        assert response.status == 200
        assert len(await response.read()) > 1_000_000  # the full bundle: Adaptive Cards included

    assert '<script src="/vendor/webchat.js">' in page
    assert "default-src 'self'" in policy and "https:" not in policy
