"""Alert latency during a broadcast, through `make run`: do urgent messages wait behind bulk ones?

Run by hand (not a test):

    .venv/bin/python -m bench.alerts [--n 10000] [--hosts 1 3] [--every 2] [--keep-azurite] [--trace]

For each K in `--hosts`: `python -m devtools.run --hosts K` as `make run` starts it (the console
channel, Azurite on the development ports; .azurite/ moved aside for the run unless
`--keep-azurite`, since a big persisted database stalls storage every 5 s, see bench.make_run;
one empty database per K),
N Teams-shaped users of one tenant whose serviceUrl is the console channel, one
`{"to": {"all": true, "tenantId": ...}}` broadcast on the queue, and for as long as it lasts,
every `--every` seconds:

- an urgent 1:1 notification to one of the broadcast's users, POSTed to the HTTP front door
  (`/api/notifications`, `"priority": "high"`; a front door that does not know `priority` yet is
  asked again without it, and the run says so), as an operator or another system would;
- a reminder due now for another of them, and the timer run (`/admin/functions/timer_notify`)
  that a minute boundary would start. Runs of a timer function are serialized (as Azure's
  singleton timer is): a run that waits for its sends holds up the runs asked for after it,
  so a reminder's wait includes the slow runs before its own.

With `--trace` the hosts export OpenTelemetry to a receiver in the bench (tests/support/otlp.py),
and each alert over the p99 goal is printed with its spans (accept, intake, Connector call) and
their times from the broadcast's enqueue: where its time went.

Printed per K: p50 and p99 from the POST (the timer invocation, for reminders) to the delivery
at the console channel, against the goals p99 <= 1.5 s, p50 <= 0.5 s; the broadcast's pace
(first to last broadcast delivery, and from enqueue) as a fraction of the 50/s bound (goal
>= 0.9); alerts lost. Nothing is asserted: it reports what a user's run does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from bench.broadcast import APP_BOUND, HOST_KEY, received, reference, seed
from bench.make_run import DEV_STORAGE, MakeRun, fresh_azurite, make_run
from proactive_bot import clock
from proactive_bot.reminders.rows import Reminder
from proactive_bot.reminders.store import ReminderStore
from proactive_bot.telemetry.names import NOTIFICATION, WAITED
from tests.support.otlp import Received, otlp_receiver

GOAL_P99, GOAL_P50, GOAL_PACE = 1.5, 0.5, 0.9
BROADCAST_TEXT = "Town hall at 16:00"


@dataclass
class Probes:
    """The urgent messages of one run: text -> when it was asked for (wall clock)."""

    alerts: dict[str, float] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # alert text -> its notification id
    reminders: dict[str, float] = field(default_factory=dict)
    priority_refused: bool = False
    failed_posts: int = 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


async def post_alert(
    session: aiohttp.ClientSession, host_url: str, probes: Probes, conversation_id: str, text: str
) -> None:
    """The front door's POST, `priority` high unless the door refuses the field."""
    body = {
        "id": f"alert-{uuid.uuid4().hex[:10]}",
        "to": {"conversationId": conversation_id, "channelId": "msteams"},
        "text": text,
    }
    url = f"{host_url}/api/notifications"
    headers = {"x-functions-key": HOST_KEY}
    asked = time.time()
    probes.ids[text] = str(body["id"])
    if not probes.priority_refused:
        async with session.post(url, json={**body, "priority": "high"}, headers=headers) as response:
            if response.status < 300:
                probes.alerts[text] = asked
                return
            if "priority" not in await response.text():
                probes.failed_posts += 1
                return
            probes.priority_refused = True
    asked = time.time()
    async with session.post(url, json=body, headers=headers) as response:
        if response.status < 300:
            probes.alerts[text] = asked
        else:
            probes.failed_posts += 1


async def due_reminder(run: MakeRun, reminders: ReminderStore, probes: Probes, k: int, user: int, prefix: str) -> None:
    """A reminder due now for user `user`, then the timer run a minute boundary would start."""
    ref = reference(user, run.channel, prefix)
    text = f"REMINDER {k} stand up"
    now = clock.now()
    await reminders.add(
        Reminder(
            channel_id="msteams",
            conversation_id=ref["conversation"]["id"],
            user_id=ref["user"]["id"],
            text=text,
            due_at=now - timedelta(seconds=1),
            created_at=now - timedelta(minutes=5),
        )
    )
    probes.reminders[text] = time.time()
    url = f"{run.host_urls[0]}/admin/functions/timer_notify"
    async with run.session.post(url, json={"input": ""}, headers={"x-functions-key": HOST_KEY}) as response:
        response.raise_for_status()


async def one_run(n: int, hosts: int, every: float, otlp: tuple[str, Received] | None = None) -> str:
    # The timer only when asked (the bench's reminders), not every minute of the run.
    settings = {"FUNCTIONS_HOST_KEY": HOST_KEY, "TimerSchedule": "0 0 0 1 1 *"}
    if otlp is not None:
        settings |= {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp[0], "OTEL_BSP_SCHEDULE_DELAY": "500"}
    async with (
        make_run(hosts, settings) as run,
        TableClient.from_connection_string(DEV_STORAGE, "Reminders") as table,
    ):
        with contextlib.suppress(Exception):
            await table.create_table()
        reminders = ReminderStore(table)
        prefix = uuid.uuid4().hex[:6]
        await seed(DEV_STORAGE, "ConversationReferences", n, run.channel, prefix=prefix)
        await run.session.post(run.channel + "_stub/reset")
        await asyncio.sleep(3)  # the host's pollers back off as they would between uses
        probes = Probes()
        async with QueueClient.from_connection_string(DEV_STORAGE, "notifications") as queue:
            enqueued_at = time.time()
            notification = {"id": f"bcast-{prefix}", "to": {"all": True, "tenantId": f"tenant-{prefix}"}}
            await queue.send_message(json.dumps({**notification, "text": BROADCAST_TEXT}))
        k, pending = 0, set[asyncio.Task[None]]()
        started = time.monotonic()
        while time.monotonic() - started < max(60.0, 4 * n / APP_BOUND):
            async with run.session.get(run.channel + "_stub/stats") as response:
                if (await response.json())["delivered"] >= n + len(probes.alerts) + len(probes.reminders):
                    break
            alert_user, reminder_user = (k * 7919) % n, (k * 7919 + n // 2) % n
            conversation = reference(alert_user, run.channel, prefix)["conversation"]["id"]
            alert = post_alert(run.session, run.host_urls[0], probes, conversation, f"ALERT {k} disk full")
            pending.add(asyncio.create_task(alert))
            pending.add(asyncio.create_task(due_reminder(run, reminders, probes, k, reminder_user, prefix)))
            k += 1
            await asyncio.sleep(every)
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(5)  # the last alerts and reminders arrive (and their spans are exported)
        records = await received(run.session, run.channel)
    return summary(records, probes, n, hosts, enqueued_at, otlp[1] if otlp else None)


def arrivals(records: list[dict], probes: Probes) -> tuple[dict[str, float], list[float]]:
    """(probe text -> its first delivery, the broadcast's deliveries sorted), wall clock."""
    arrived: dict[str, float] = {}
    broadcast: list[float] = []
    for r in records:
        if not 200 <= r["status"] < 300 or not isinstance(r.get("body"), dict):
            continue
        text = str(r["body"].get("text") or "")
        if BROADCAST_TEXT in text:
            broadcast.append(r["received_wall"])
            continue
        for asked in (probes.alerts, probes.reminders):
            for probe in asked:
                if probe in text:
                    arrived.setdefault(probe, r["received_wall"])
    return arrived, sorted(broadcast)


def waits_line(name: str, asked: dict[str, float], arrived: dict[str, float]) -> str:
    """p50/p99 from asking to delivery, against the goals."""
    waits = [arrived[p] - t for p, t in asked.items() if p in arrived]
    if not waits:
        return f"  {name}: none delivered of {len(asked)}"
    return (
        f"  {name}: {len(waits)} of {len(asked)} delivered, p50 {statistics.median(waits):.2f} s, "
        f"p99 {percentile(waits, 0.99):.2f} s, max {max(waits):.2f} s (goals p50 <= {GOAL_P50}, p99 <= {GOAL_P99})"
    )


def slow_lines(
    asked: dict[str, float],
    arrived: dict[str, float],
    ids: dict[str, str],
    enqueued_at: float,
    spans: Received | None = None,
) -> list[str]:
    """The probes over the p99 goal: when they were asked (from the broadcast's enqueue) and how
    long they took; with `spans`, each one's spans and their times."""
    lines = []
    for t, p in sorted((t, p) for p, t in asked.items() if p in arrived and arrived[p] - t > GOAL_P99):
        lines.append(
            f"    over {GOAL_P99} s: {p!r} {ids.get(p, '')} asked at +{t - enqueued_at:.1f} s, took {arrived[p] - t:.2f} s"
        )
        # Its trace: the spans tagged with its id, and their children (the Connector call's).
        traces = {s.trace_id for s in spans.spans if s.attributes.get(NOTIFICATION) == ids.get(p)} if spans else set()
        mine = [s for s in spans.spans if s.trace_id in traces] if spans else []
        lines.extend(
            f"      {s.name} +{s.start / 1e9 - enqueued_at:.2f} s to +{s.end / 1e9 - enqueued_at:.2f} s"
            + (f", waited {s.attributes[WAITED]:.2f} s for its slot" if WAITED in s.attributes else "")
            for s in sorted(mine, key=lambda s: s.start)
        )
    return lines


def summary(
    records: list[dict], probes: Probes, n: int, hosts: int, enqueued_at: float, spans: Received | None = None
) -> str:
    arrived, broadcast = arrivals(records, probes)
    lines = [f"make run, K={hosts}, N={n}: broadcast delivered {len(broadcast)} of {n}"]
    if len(broadcast) > 1:
        steady = (len(broadcast) - 1) / (broadcast[-1] - broadcast[0]) / APP_BOUND
        whole = len(broadcast) / (broadcast[-1] - enqueued_at) / APP_BOUND
        lines[0] += f", pace {steady:.3f} of the bound steady, {whole:.3f} from enqueue (goal >= {GOAL_PACE})"
    lines.append(waits_line("urgent 1:1 notifications", probes.alerts, arrived))
    lines.extend(slow_lines(probes.alerts, arrived, probes.ids, enqueued_at, spans))
    lines.append(waits_line("due reminders", probes.reminders, arrived))
    lines.extend(slow_lines(probes.reminders, arrived, {}, enqueued_at))
    if probes.priority_refused:
        lines.append('  (the front door refused "priority": the alerts were posted without it)')
    if probes.failed_posts:
        lines.append(f"  {probes.failed_posts} front-door POSTs failed")
    return "\n".join(lines)


async def main(n: int, hosts: list[int], every: float, keep_azurite: bool, trace: bool) -> None:
    for k in hosts:
        # Each K on an empty database: a 10,000-user run leaves ~60 MB that Azurite rewrites
        # every 5 s, enough to time out the next run's budget heartbeats.
        with fresh_azurite(not keep_azurite):
            if not trace:
                print(await one_run(n, k, every), flush=True)
                continue
            async with otlp_receiver() as otlp:
                print(await one_run(n, k, every, otlp), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="broadcast recipients")
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 3], help="values of K")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between alerts (and reminders)")
    parser.add_argument("--keep-azurite", action="store_true", help="run on .azurite/ as it is")
    parser.add_argument("--trace", action="store_true", help="print the spans of each slow alert")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.hosts, args.every, args.keep_azurite, args.trace))
