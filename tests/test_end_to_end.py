"""The whole app through the local Functions host, over HTTP, as a channel and a producer see it."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from devtools.connector_stub import ConnectorStub
from devtools.funchost import FunctionHost
from proactive_bot import bot, cli, clock
from tests import activities
from tests.functions.invoke import APP_ROOT


@pytest.fixture
async def host(storage_connection: str) -> AsyncIterator[FunctionHost]:
    settings = {
        "AzureWebJobsStorage": storage_connection,
        "MicrosoftAppId": "",
        "MicrosoftAppPassword": "",
        "NotificationsQueue": "e2e-notifications",
        "TasksQueue": "e2e-tasks",
        "TimerSchedule": "0 0 0 1 1 *",  # yearly: the test runs the timer itself
    }
    function_host = FunctionHost(APP_ROOT, settings)
    await function_host.start(0)
    yield function_host
    await function_host.stop()


async def test_welcome_then_queued_message_then_due_reminder_then_long_task(host, storage_connection, monkeypatch):
    async with ConnectorStub() as channel, aiohttp.ClientSession() as http:
        user = activities.teams_user()
        install = activities.teams_members_added(channel.url, user=user)
        conversation_id = install["conversation"]["id"]
        conversation = {"conversationType": "personal", "tenantId": activities.TENANT, "id": conversation_id}

        # 1. The user installs the bot: a welcome comes back.
        async with http.post(f"{host.url}/api/messages", json=install) as response:
            assert response.status == 200
        [welcome] = await channel.wait_for(1, conversation_id=conversation_id)
        assert "remind me" in welcome.text

        # 2. They ask for a reminder.
        ask = activities.teams_message(
            "remind me in 1 minute to stretch", channel.url, user=user, conversation=conversation
        )
        async with http.post(f"{host.url}/api/messages", json=ask) as response:
            assert response.status == 200
        await channel.wait_for(2, conversation_id=conversation_id)

        # 3. Another system enqueues a notification; the host's queue trigger delivers it.
        await cli.enqueue(
            {"id": "build-42", "to": {"aadObjectId": user["aadObjectId"]}, "text": "Build 42 passed"},
            storage_connection,
            "e2e-notifications",
            base64=True,
        )
        await channel.wait_for(lambda r: r.text == "Build 42 passed", timeout=15)

        # 4. Two minutes later the timer runs (by the admin API) and the reminder arrives.
        later = clock.now() + timedelta(minutes=2)
        monkeypatch.setattr(clock, "now", lambda: later)
        async with http.post(f"{host.url}/admin/functions/timer_notify", json={"input": ""}) as response:
            assert response.status == 202
        await channel.wait_for(lambda r: r.text == "⏰ Reminder: stretch", timeout=15)

        # 5. A long task: the turn answers at once, the host's tasks queue trigger delivers later.
        ask = activities.teams_message("report", channel.url, user=user, conversation=conversation)
        async with http.post(f"{host.url}/api/messages", json=ask) as response:
            assert response.status == 200
        [typing, working] = channel.delivered()[-2:]
        assert (typing.activity["type"], working.text) == ("typing", bot.WORKING)
        [report] = await channel.wait_for(lambda r: (r.text or "").startswith("📋"), timeout=15)
        assert "Delivered in the last 30 days: 1" in report.text

        assert [r.conversation_id for r in channel.delivered()] == [conversation_id] * 7

        # 6. Another system uses the HTTP front door (a function key is required) and the CLI.
        async with http.post(f"{host.url}/api/notifications", json={"to": {"all": True}, "text": "x"}) as response:
            assert response.status == 401
        notify = await cli_run(
            "notify",
            "--all",
            "--channel",
            "msteams",
            "--tenant",
            activities.TENANT,
            "--id",
            "townhall",
            "--text",
            "Town hall at 16:00",
            "--url",
            host.url,
            "--key",
            host.host_key,
        )
        assert notify["id"] == "townhall"
        await channel.wait_for(
            lambda r: r.text == "Town hall at 16:00" and r.conversation_id == conversation_id, timeout=15
        )
        status = await cli_run("status", "townhall", "--url", host.url, "--key", host.host_key)
        assert status["counts"]["sent"] >= 1


async def cli_run(*args: str) -> dict:
    """`python -m proactive_bot ...` in a process of its own, as another system would run it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proactive_bot", *args, cwd=APP_ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out
    return json.loads(out)


async def test_malformed_messages_go_to_poison_once_and_the_ones_behind_them_are_delivered(host, storage_connection):
    from azure.storage.queue.aio import QueueClient

    async with ConnectorStub() as channel, aiohttp.ClientSession() as http:
        hello = activities.webchat_message("hi", channel.url)
        async with http.post(f"{host.url}/api/messages", json=hello) as response:
            assert response.status == 200
        await channel.wait_for(1)
        to = {"conversationId": hello["conversation"]["id"], "channelId": "webchat"}
        bad = ['{"to": {"all": true}, "text": "x", "text": "y"}', "not json", '{"to": {"all": true}, "text": NaN}']
        async with QueueClient.from_connection_string(storage_connection, "e2e-notifications") as queue:
            for n, raw in enumerate(bad):
                await queue.send_message(raw)
                await queue.send_message(json.dumps({"to": to, "text": f"good {n}"}))

            await channel.wait_for(lambda r: r.text == "good 2", timeout=15)
            async with QueueClient.from_connection_string(storage_connection, "e2e-notifications-poison") as poison:
                for _ in range(100):
                    poisoned = (
                        [m.content for m in await poison.peek_messages(max_messages=32)]
                        if await _exists(poison)
                        else []
                    )
                    if len(poisoned) == len(bad):
                        break
                    await asyncio.sleep(0.05)
            # A message leaves the queue when its invocation ends, a little after its send.
            for _ in range(100):
                remaining = await queue.get_queue_properties()
                if remaining.approximate_message_count == 0:
                    break
                await asyncio.sleep(0.05)

    assert sorted(poisoned) == sorted(bad)  # each once, unchanged
    assert sorted(channel.texts(hello["conversation"]["id"])[1:]) == ["good 0", "good 1", "good 2"]
    assert remaining.approximate_message_count == 0


async def _exists(queue) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        await queue.get_queue_properties()
    except ResourceNotFoundError:
        return False
    return True
