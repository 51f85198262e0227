"""Telemetry off (no destination set): every call is a no-op, and OpenTelemetry is never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from proactive_bot import telemetry
from proactive_bot.telemetry import Metric, SpanName
from tests.functions.invoke import APP_ROOT

# A fresh interpreter, as a cold Functions worker: every function folder imported, and the
# invocations that load the delivery engine, the front door and the intake made against Azurite.
FIRST_INVOCATIONS = """
import asyncio, json, sys
import deliver_batch, long_tasks, messages, notifications_api, queue_notify, timer_notify
from proactive_bot import clients
from tests.functions import invoke

async def main():
    try:
        await invoke.queue("deliver_batch", json.dumps({"kind": "page", "notification": "n-none"}).encode())
        note = {"to": {"channelId": "msteams", "userId": "29:nobody"}, "text": "hi"}
        await invoke.queue("queue_notify", json.dumps(note).encode())
        await invoke.http("notifications_api", method="GET", route_params={"id": "n-none"})
    finally:
        await clients.close()

asyncio.run(main())
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry", "azure.monitor", "proactive_bot.telemetry.")))
print(json.dumps(loaded))
"""


def test_with_no_destination_nothing_from_opentelemetry_is_imported(storage_connection):
    off = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    env = {**off, "AzureWebJobsStorage": storage_connection, "MicrosoftAppId": "", "MicrosoftAppPassword": ""}

    run = subprocess.run(
        [sys.executable, "-c", FIRST_INVOCATIONS], cwd=APP_ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.splitlines()[-1])
    # The facade's own light modules only: no otel.py, exporters.py, trace_ids.py, no SDK.
    assert set(loaded) <= {
        "proactive_bot.telemetry.api",
        "proactive_bot.telemetry.facade",
        "proactive_bot.telemetry.names",
        "proactive_bot.telemetry.policy",
    }


def test_off_every_call_is_a_no_op():
    assert not telemetry.enabled()
    with telemetry.span(SpanName.ACCEPT, {"x": 1}, notification="n-1") as span:
        span.set("anything", "goes")
        assert telemetry.traceparent("n-1") is None  # so work messages carry none
    telemetry.count(Metric.DELIVERIES, 1, {"connector.outcome": "sent"})
    telemetry.record(Metric.QUEUE_AGE, 0.5)
    telemetry.observe(Metric.BUDGET_SHARE, lambda: [(1.0, {})])
    telemetry.flush()


def test_start_without_a_destination_stays_off():
    telemetry.start(telemetry.TelemetrySettings())

    assert not telemetry.enabled()
