"""OpenTelemetry on, over OTLP/HTTP: one broadcast through the local host, as a collector sees it.

The host runs in a process of its own (the SDK's providers are global: this one, the test's,
keeps telemetry off), with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a real receiver on loopback
(tests/support/otlp.py). The broadcast goes in by the HTTP front door, is walked by a page work
message and delivered by batch work messages: every hop of it must be one trace, each span the
child of the one that put its message, and the Connector calls and their counts must be there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from devtools.azurite import free_port
from devtools.connector_stub import ConnectorStub
from proactive_bot.telemetry import Metric, SpanName
from proactive_bot.telemetry import names as attribute
from tests import activities
from tests.conftest import unique
from tests.functions.invoke import APP_ROOT
from tests.support.otlp import Received, otlp_receiver
from tests.support.polling import eventually

USERS = 6
HOST_KEY = "otlp-test-host-key"


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, Received]]:
    async with otlp_receiver() as receiver:
        yield receiver


@pytest.fixture
def host(storage_connection: str, collector: tuple[str, Received], tmp_path: Path) -> Iterator[str]:
    """The app in `python -m devtools.funchost`, its telemetry exported to the collector."""
    port = free_port()
    queue = unique("otel-")
    env = {
        **os.environ,
        "AzureWebJobsStorage": storage_connection,
        "MicrosoftAppId": "",
        "MicrosoftAppPassword": "",
        "FUNCTIONS_HOST_KEY": HOST_KEY,
        # Its own tables and queues: "everyone" is the users this test installs, no one else's.
        "NotificationsQueue": queue,
        "TasksQueue": f"{queue}-tasks",
        "ReferencesTable": unique("OtelRefs"),
        "NotificationsTable": unique("OtelNotes"),
        "TeamsTable": unique("OtelTeams"),
        "BudgetTable": unique("OtelBudget"),
        "TimerSchedule": "0 0 0 1 1 *",  # yearly: never during the test
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector[0],
        # Export soon rather than every 5 s (spans) and 60 s (metrics): the test waits for them.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
    }
    log = (tmp_path / "host.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.funchost", "--app-root", str(APP_ROOT), "--port", str(port)],
        cwd=APP_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if process.returncode not in (0, -15):
            print((tmp_path / "host.log").read_text("utf-8", "replace")[-4000:])


async def _up(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/api/notifications/none", headers={"x-functions-key": HOST_KEY}) as response:
            return response.status in (200, 404)
    except aiohttp.ClientError:
        return False


async def test_a_broadcast_is_one_trace_linked_hop_by_hop_with_its_connector_calls_and_counts(host, collector):
    _, received = collector
    async with ConnectorStub() as channel, aiohttp.ClientSession() as http:
        await eventually(lambda: _up(http, host), timeout=60, interval=0.2)
        users = [activities.teams_user() for _ in range(USERS)]
        conversations = []
        for user in users:  # each installs the bot (and is welcomed)
            install = activities.teams_members_added(channel.url, user=user)
            conversations.append(install["conversation"]["id"])
            async with http.post(f"{host}/api/messages", json=install) as response:
                assert response.status == 200
        await channel.wait_for(USERS, timeout=30)
        throttled, blocked = conversations[0], conversations[1]
        channel.fail(throttled, statuses=(429,), retry_after=1)  # sent on the second attempt
        channel.block(blocked, 403, "ConversationBlockedByUser")

        notification = unique("otel-town-")
        document = {"id": notification, "to": {"all": True, "channelId": "msteams"}, "text": "Town hall at 16:00"}
        async with http.post(
            f"{host}/api/notifications", json=document, headers={"x-functions-key": HOST_KEY}
        ) as response:
            assert response.status == 202
        await channel.wait_for(lambda r: r.text == "Town hall at 16:00" and r.ok, count=USERS - 1, timeout=60)

        def traced() -> bool:
            tagged = [s for s in received.spans if s.attributes.get(attribute.NOTIFICATION) == notification]
            spans = [s for t in {s.trace_id for s in tagged} for s in received.spans_of(t)]
            calls = [s for s in spans if s.name == SpanName.CONNECTOR_CALL]
            # A batch's span ends (and is exported) after its calls' spans: wait for those too.
            batched = sum(s.attributes[attribute.RECIPIENTS] for s in spans if s.name == SpanName.work("batch"))
            return len(calls) >= USERS + 1 and batched >= USERS  # one 429 and its retry among the calls

        await eventually(traced, timeout=30, interval=0.1)

    mine = [s for s in received.spans if s.attributes.get(attribute.NOTIFICATION) == notification]
    [trace_id] = {s.trace_id for s in mine}  # one trace per notification
    spans = received.spans_of(trace_id)
    by_id = {s.span_id: s for s in spans}
    names = [s.name for s in spans]
    assert {SpanName.ACCEPT, SpanName.work("page"), SpanName.work("batch"), SpanName.CONNECTOR_CALL} <= set(names)
    assert all(s.service == "proactive-bot" for s in spans)

    # Each hop's span is the child of the span that put its message on the queue.
    [accept] = [s for s in spans if s.name == SpanName.ACCEPT]
    assert accept.parent_span_id == ""
    [page] = [s for s in spans if s.name == SpanName.work("page")]
    assert page.parent_span_id == accept.span_id
    batches = [s for s in spans if s.name == SpanName.work("batch")]
    assert batches and all(b.parent_span_id == page.span_id for b in batches)
    assert sum(b.attributes[attribute.RECIPIENTS] for b in batches) == USERS
    calls = [s for s in spans if s.name == SpanName.CONNECTOR_CALL]
    assert all(by_id[c.parent_span_id].name == SpanName.work("batch") for c in calls)

    # A Connector call's span carries its answer: status, retry-after, attempt.
    statuses = sorted(c.attributes[attribute.STATUS] for c in calls)
    assert statuses == [200] * (USERS - 1) + [403, 429]
    [throttle] = [c for c in calls if c.attributes[attribute.STATUS] == 429]
    assert throttle.attributes[attribute.RETRY_AFTER] == 1.0
    assert throttle.attributes[attribute.ATTEMPT] == 1
    assert throttle.attributes[attribute.OUTCOME] == "throttled"
    retried = [c for c in calls if c.attributes[attribute.ATTEMPT] == 2]
    assert [c.attributes[attribute.STATUS] for c in retried] == [200]
    [gone] = [c for c in calls if c.attributes[attribute.STATUS] == 403]
    assert gone.attributes[attribute.ERROR] == "ConversationBlockedByUser"

    # The metrics carry the counts (cumulative: each series' newest point is its total).
    def counted() -> bool:
        return received.total(Metric.DELIVERIES, **{attribute.OUTCOME: "sent"}) >= USERS - 1 and bool(
            received.latest(Metric.QUEUE_AGE)
        )

    await eventually(counted, timeout=30, interval=0.1)
    assert received.total(Metric.DELIVERIES, **{attribute.OUTCOME: "sent", attribute.DELIVERY_KIND: "send"}) == (
        USERS - 1
    )
    assert received.total(Metric.DELIVERIES, **{attribute.OUTCOME: "gone"}) == 1
    assert received.total(Metric.DELIVERIES, **{attribute.REASON: "ConversationBlockedByUser"}) == 1
    assert received.total(Metric.CONNECTOR_CALLS, **{attribute.STATUS: 429}) == 1
    assert received.total(Metric.CONNECTOR_CALLS, **{attribute.STATUS: 200}) >= USERS - 1
    ages = {p.attributes.get(attribute.WORK_KIND) for p in received.latest(Metric.QUEUE_AGE)}
    assert {"page", "batch"} <= ages
    durations = received.latest(Metric.DELIVERY_DURATION)
    assert sum(p.count for p in durations) >= USERS
