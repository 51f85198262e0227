"""A Functions worker killed mid-broadcast (SIGKILL): the queue redelivers, nobody gets it twice.

The one thing a hard kill can leave open is a send whose request may or may not have left when
the process died. Those recipients keep their "sending" row; they are never sent again (that
would risk a duplicate) and, once the row's lease runs out, the status reports them as
unconfirmed. A recipient is claimed only while its request is on the wire (waits for a
Retry-After or a backoff give the claim back first), so they are at most the requests in flight.
Everyone else gets the broadcast exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter

import aiohttp
import pytest
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from devtools.azurite import free_port
from devtools.connector_stub import ConnectorStub
from proactive_bot.channel import conversation_reference, parse_activity
from proactive_bot.notifications.records import NotificationStore, RecipientState
from proactive_bot.references import ReferenceStore
from tests import activities
from tests.functions.invoke import APP_ROOT
from tests.support.polling import eventually

RECIPIENTS = 200


def start_host(env: dict[str, str], port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.funchost", "--port", str(port)],
        cwd=APP_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def until_up(port: int) -> None:
    async with aiohttp.ClientSession() as http:

        async def answers() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/admin/host/status") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(answers, timeout=20, interval=0.1)


def host_env(storage_connection: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "AzureWebJobsStorage": storage_connection,
        "ReferencesTable": f"KillRefs{suffix}",
        "NotificationsTable": f"KillNotes{suffix}",
        "RemindersTable": f"KillReminders{suffix}",
        "NotificationsQueue": f"kill-{suffix}",
        "TimerSchedule": "0 0 0 1 1 *",
        "RateLimitsEnabled": "false",
        "DeliveryConcurrency": str(IN_FLIGHT),
        "FUNCHOST_PROCESSING_VISIBILITY_SECONDS": "3",  # the killed worker's messages come back soon
    }


IN_FLIGHT = 8  # requests one worker has on the wire at most (DeliveryConcurrency)


async def broadcast_killed_midway(
    storage_connection: str, channel: ConnectorStub, *, throttle_every: int = 0
) -> tuple[set[str], set[str], Counter[str], int]:
    """Broadcast to RECIPIENTS users; SIGKILL the worker after a third is delivered; a second
    worker finishes. `throttle_every`: every n-th user's first send is answered 429 with a
    Retry-After of 5 s, and the kill comes while some of them wait for it.

    Returns (everyone, held by the killed worker's claims, deliveries per conversation, delivered at kill).
    """
    env = host_env(storage_connection)
    async with (
        TableClient.from_connection_string(storage_connection, env["ReferencesTable"]) as references_table,
        TableClient.from_connection_string(storage_connection, env["NotificationsTable"]) as notifications_table,
    ):
        await references_table.create_table()
        references = ReferenceStore(references_table)
        everyone = set()
        for n in range(RECIPIENTS):
            reference = conversation_reference(parse_activity(activities.teams_message("hi", channel.url)))
            await references.save(reference)
            everyone.add(reference["conversation"]["id"])
            if throttle_every and n % throttle_every == 0:
                channel.fail(reference["conversation"]["id"], [429], retry_after=5)

        first_port, second_port = free_port(), free_port()
        first = start_host(env, first_port)
        try:
            await until_up(first_port)
            async with QueueClient.from_connection_string(storage_connection, env["NotificationsQueue"]) as queue:
                await queue.send_message(
                    json.dumps({"id": "all-hands", "to": {"all": True}, "text": "All hands at 10"})
                )
            await channel.wait_for(RECIPIENTS // 3, timeout=30)
            if throttle_every:
                await channel.wait_for(lambda r: r.status == 429, timeout=30)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        delivered_at_kill = len(channel.delivered())

        second = start_host(env, second_port)
        try:
            records = NotificationStore(notifications_table)
            held = await settled_except_held(records, channel, everyone)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait()
    return everyone, held, Counter(r.conversation_id for r in channel.delivered()), delivered_at_kill


@pytest.mark.timeout(120)
async def test_killed_mid_broadcast_then_redelivered(storage_connection):
    async with ConnectorStub(latency=0.05) as channel:
        everyone, held, per_conversation, delivered_at_kill = await broadcast_killed_midway(storage_connection, channel)

    lost = everyone - set(per_conversation)
    print(
        f"\nkilled after {delivered_at_kill} of {RECIPIENTS}; held at kill {len(held)}; lost {len(lost)}; "
        f"duplicated {sum(n - 1 for n in per_conversation.values())}"
    )
    assert delivered_at_kill < RECIPIENTS  # the kill really was mid-broadcast
    assert max(per_conversation.values()) == 1  # nobody twice
    assert lost <= held  # anyone not reached is reported, never silently dropped
    assert len(lost) <= IN_FLIGHT  # and only requests on the wire can have missed it


@pytest.mark.timeout(120)
async def test_killed_while_recipients_wait_on_retry_after_strands_only_what_was_on_the_wire(storage_connection):
    async with ConnectorStub(latency=0.05) as channel:
        everyone, held, per_conversation, delivered_at_kill = await broadcast_killed_midway(
            storage_connection, channel, throttle_every=3
        )
        throttled = sum(r.status == 429 for r in channel.received)

    lost = everyone - set(per_conversation)
    print(
        f"\nkilled after {delivered_at_kill} of {RECIPIENTS} with {throttled} answered 429; "
        f"held at kill {len(held)}; lost {len(lost)}"
    )
    assert throttled > IN_FLIGHT  # more were waiting on a Retry-After than could be on the wire
    # Those waiting had given their claim back: the second worker delivered them. Only what was
    # on the wire can be missing (held rows also include sends that arrived but whose outcome
    # the killed worker had not written yet: outcomes are written in batches, ~0.5 s).
    assert lost <= held and len(lost) <= IN_FLIGHT
    assert max(per_conversation.values()) == 1


async def settled_except_held(records: NotificationStore, channel: ConnectorStub, everyone: set[str]) -> set[str]:
    """Wait until every recipient is delivered or held by the killed worker's claim; return the held."""
    for _ in range(600):
        status = await records.status("all-hands", detail=True, limit=len(everyone))
        if status is not None:
            assert status.rows is not None  # asked with detail=True
            held = {r.conversation_id for r in status.rows if r.state is RecipientState.SENDING}
            reached = {r.conversation_id for r in channel.delivered()}
            if (
                status.recipients == len(everyone)
                and reached | held >= everyone
                and (status.counts[RecipientState.SENT] + len(held) >= len(everyone))
            ):
                return held
        await asyncio.sleep(0.1)
    raise AssertionError(f"the broadcast did not settle: {status and status.counts}")
