"""Broadcast throughput: ours through the queue path vs. the newcomer's sequential loop.

Run by hand (not a test):  .venv/bin/python -m bench.broadcast [--n 10000] [--baseline-n 200]

Everything is real but the channel: Azurite, the local Functions host in its own process (as a
Functions worker would be), and the Connector-API stub in another process with 50 ms latency.

1. Limits off: N stored references, one `{"to": {"all": true}}` notification on the queue;
   messages/s from enqueue to the last delivery, against the baseline a newcomer writes (the
   Bot Framework sample's sequential `continue_conversation` loop with the stock adapter),
   measured per message on a smaller N against the same stub. Goal: >= 20x.
2. Teams limits on, in the stub (429 + Retry-After when exceeded) and in our limiter:
   messages/s as a fraction of the 50/s app bound. Goal: >= 0.95, 429s ~ 0.
Both print lost and duplicated counts (goal 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient
from botbuilder.core import BotFrameworkAdapter, BotFrameworkAdapterSettings, MessageFactory
from botbuilder.schema import ConversationReference
from botframework.connector.auth import ClaimsIdentity

from devtools import azurite
from devtools.azurite import free_port
from proactive_bot import clock
from proactive_bot.references import ReferenceStore

REPO = Path(__file__).resolve().parent.parent
LATENCY = 0.05
APP_BOUND = 50.0  # Teams: about 50 sends/s per app


def reference(i: int, service_url: str, prefix: str = "") -> dict:
    """User i; a `prefix` gives other users (Teams and Entra ids), conversation ids and a tenant
    of their own."""
    tenant = f"tenant-{prefix}" if prefix else "bench-tenant"
    aad = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{prefix}/{i}")) if prefix else f"00000000-0000-4000-8000-{i:012d}"
    return {
        "activityId": f"1732{i:09d}",
        "user": {"id": f"29:1user-{prefix}{i:06d}", "name": f"User {i}", "aadObjectId": aad},
        "bot": {"id": "28:bench-bot", "name": "Bench Bot"},
        "conversation": {"conversationType": "personal", "tenantID": tenant, "id": f"a:1bench-{prefix}{i:06d}"},
        "channelId": "msteams",
        "locale": "en-US",
        "serviceUrl": service_url,
    }


async def seed(connection: str, table: str, n: int, service_url: str, prefix: str = "") -> None:
    async with TableClient.from_connection_string(connection, table) as client:
        with contextlib.suppress(ResourceExistsError):
            await client.create_table()
        store = ReferenceStore(client)
        limit = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with limit:
                await store.save(reference(i, service_url, prefix), clock.now())

        await asyncio.gather(*(one(i) for i in range(n)))


async def stub_stats(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url + "_stub/stats") as resp:
        return await resp.json()


async def stub_reset(session: aiohttp.ClientSession, url: str) -> None:
    async with session.post(url + "_stub/reset") as resp:
        resp.raise_for_status()


async def received(session: aiohttp.ClientSession, url: str) -> list[dict]:
    """Every request the stub answered, as its records (JSON)."""
    async with session.get(url + "_stub/received") as resp:
        return await resp.json()


async def delivered(session: aiohttp.ClientSession, url: str) -> list[dict]:
    return [r for r in await received(session, url) if 200 <= r["status"] < 300]


async def until_count(session: aiohttp.ClientSession, url: str, key: str, n: int, stall: float = 60) -> None:
    """Wait until the stub's stats[key] reaches n, or stops growing for `stall` seconds (then
    the caller reports what arrived)."""
    last_change, last = time.monotonic(), -1
    while True:
        count = (await stub_stats(session, url))[key]
        if count >= n:
            return
        if count != last:
            last_change, last = time.monotonic(), count
        elif time.monotonic() - last_change > stall:
            return
        await asyncio.sleep(0.1)


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


async def wait_listening(session: aiohttp.ClientSession, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        await asyncio.sleep(0.2)


HOST_KEY = "bench"


@dataclass(frozen=True)
class Rig:
    """A benchmark run's moving parts, up and listening (see `rig`)."""

    connection: str
    stub_url: str
    host_urls: list[str]
    hosts: list[subprocess.Popen]
    stub: subprocess.Popen
    session: aiohttp.ClientSession
    references_table: str
    notifications_queue: str


def start_stub(
    port: int, workdir: Path, *, teams_limits: bool, env: Mapping[str, str] | None = None, log: str = "stub.log"
) -> subprocess.Popen:
    """The Connector stub in its own process, LATENCY per request, Teams' limits if asked."""
    args = [sys.executable, "-m", "devtools.connector_stub", "--port", str(port), "--latency", str(LATENCY), "--quiet"]
    if teams_limits:
        args.append("--teams-limits")
    return start_process(args, dict(env if env is not None else os.environ), workdir / log)


@contextlib.asynccontextmanager
async def rig(
    connection: str,
    n: int,
    workdir: Path,
    *,
    teams_limits: bool,
    hosts: int = 1,
    name: str = "",
    settings: Mapping[str, str] | None = None,
) -> AsyncIterator[Rig]:
    """The set-up of a benchmark run: N Teams users stored (serviceUrl: the stub), the stub and
    K local Functions hosts (`python -m devtools.funchost`, a process each) on `connection`,
    all listening; everything stopped afterwards. `name`: tables and a queue of the run's own
    (else the app's defaults); `settings`: more app settings."""
    stub_port = free_port()
    stub_url = f"http://127.0.0.1:{stub_port}/"
    names = (
        {
            "ReferencesTable": f"Refs{name}",
            "NotificationsTable": f"Notes{name}",
            "RemindersTable": f"Rem{name}",
            "NotificationsQueue": name,
        }
        if name
        else {}
    )
    env = {
        **os.environ,
        "AzureWebJobsStorage": connection,
        **names,
        "TimerSchedule": "0 0 0 1 1 *",
        "RateLimitsEnabled": "true" if teams_limits else "false",
        "FUNCTIONS_HOST_KEY": HOST_KEY,
        **(settings or {}),
    }
    references_table = names.get("ReferencesTable", "ConversationReferences")
    await seed(connection, references_table, n, stub_url)
    stub = start_stub(stub_port, workdir, teams_limits=teams_limits, env=env)
    ports = [free_port() for _ in range(hosts)]
    processes = [
        start_process(
            [sys.executable, "-m", "devtools.funchost", "--port", str(port)],
            env,
            workdir / (f"host{i}.log" if hosts > 1 else "host.log"),
        )
        for i, port in enumerate(ports)
    ]
    try:
        async with aiohttp.ClientSession() as session:
            await wait_listening(session, stub_url + "_stub/stats")
            host_urls = [f"http://127.0.0.1:{port}" for port in ports]
            for url in host_urls:
                await wait_listening(session, f"{url}/admin/host/status")
            yield Rig(
                connection,
                stub_url,
                host_urls,
                processes,
                stub,
                session,
                references_table,
                names.get("NotificationsQueue", "notifications"),
            )
    finally:
        for process in processes:
            stop_process(process)
        stop_process(stub)


async def enqueue(run: Rig, notification: dict) -> float:
    """Put a notification on the run's queue, as a client would; returns when (wall clock)."""
    async with QueueClient.from_connection_string(run.connection, run.notifications_queue) as queue:
        enqueued_at = time.time()
        await queue.send_message(json.dumps(notification))
    return enqueued_at


async def our_broadcast(connection: str, n: int, teams_limits: bool, workdir: Path) -> dict:
    """One broadcast to n users through the queue path; returns rate, lost, duplicated, 429s."""
    name = f"bench{int(time.time() * 1000) % 10**9}"
    async with rig(connection, n, workdir, teams_limits=teams_limits, name=name) as run:
        session, stub_url = run.session, run.stub_url
        started = time.monotonic()
        enqueued_at = await enqueue(run, {"id": "bench", "to": {"all": True}, "text": "Benchmark broadcast"})
        await until_count(session, stub_url, "delivered", n)
        elapsed = time.monotonic() - started
        await asyncio.sleep(1)  # anything that would duplicate has time to arrive
        received = await delivered(session, stub_url)
        per_conversation = Counter(r["conversation_id"] for r in received)
        stats = await stub_stats(session, stub_url)
    expected = {reference(i, stub_url)["conversation"]["id"] for i in range(n)}
    return {
        "n": n,
        "seconds": elapsed,
        "per_second": sum(per_conversation.values()) / elapsed,
        "lost": len(expected - set(per_conversation)),
        "duplicated": sum(c - 1 for c in per_conversation.values() if c > 1),
        "throttled_429": stats["throttled"],
        "enqueued_at": enqueued_at,
        "delivered_at": sorted(r["received_wall"] for r in received),
    }


async def baseline(n: int, workdir: Path) -> dict:
    """The Bot Framework sample's way: for each stored reference, await continue_conversation."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    stub = start_stub(port, workdir, teams_limits=False, log="baseline-stub.log")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_listening(session, url + "_stub/stats")
        adapter = BotFrameworkAdapter(BotFrameworkAdapterSettings("", ""))
        references = [ConversationReference().deserialize(reference(i, url)) for i in range(n)]

        async def send(context):
            await context.send_activity(MessageFactory.text("Benchmark broadcast"))

        started = time.monotonic()
        for ref in references:
            await adapter.continue_conversation(ref, send, claims_identity=ClaimsIdentity({}, True))
        elapsed = time.monotonic() - started
    finally:
        stop_process(stub)
    return {"n": n, "seconds": elapsed, "per_second": n / elapsed}


async def on_fresh_storage(n: int, teams_limits: bool, workdir: Path) -> dict:
    """One broadcast on an Azurite of its own, in memory. Persisted, Azurite rewrites its whole
    table database every few seconds: an emulator cost that grows with what earlier runs left
    behind, and that Table Storage does not have."""
    emulator = azurite.start(workdir / f"azurite-{'limited' if teams_limits else 'fast'}", in_memory=True)
    try:
        return await our_broadcast(emulator.connection_string, n, teams_limits=teams_limits, workdir=workdir)
    finally:
        emulator.stop()


async def main(n: int, baseline_n: int, limited_n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        base = await baseline(baseline_n, workdir)
        print(
            f"baseline (sequential continue_conversation, stock adapter): N={base['n']}, "
            f"{base['per_second']:.1f} msg/s ({1000 * base['seconds'] / base['n']:.1f} ms/message)",
            flush=True,
        )
        fast = await on_fresh_storage(n, teams_limits=False, workdir=workdir)
        print(
            f"ours, limits off: N={fast['n']}, {fast['seconds']:.1f} s, {fast['per_second']:.1f} msg/s, "
            f"ratio to baseline {fast['per_second'] / base['per_second']:.1f}x (goal >= 20x), "
            f"lost {fast['lost']}, duplicated {fast['duplicated']}, 429s {fast['throttled_429']}",
            flush=True,
        )
        print(f"  {timeline(fast)}", flush=True)
        limited = await on_fresh_storage(limited_n, teams_limits=True, workdir=workdir)
        print(
            f"ours, Teams limits on (stub and limiter): N={limited['n']}, {limited['seconds']:.1f} s, "
            f"{limited['per_second']:.1f} msg/s = {limited['per_second'] / APP_BOUND:.3f} of the {APP_BOUND:.0f}/s bound "
            f"(goal >= 0.95), 429s {limited['throttled_429']}, lost {limited['lost']}, duplicated {limited['duplicated']}"
        )
        print(f"  {timeline(limited)}")


def timeline(run: dict) -> str:
    """Where the time went: until the first delivery, then the rate in each tenth of the deliveries."""
    stamps = run["delivered_at"]
    if len(stamps) < 20:
        return "too few deliveries for a timeline"
    tenth = len(stamps) // 10
    rates = [tenth / max(1e-9, stamps[(k + 1) * tenth - 1] - stamps[k * tenth]) for k in range(10)]
    return f"first delivery after {stamps[0] - run['enqueued_at']:.1f} s; msg/s by tenth: " + " ".join(
        f"{r:.0f}" for r in rates
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="recipients, limits off")
    parser.add_argument("--limited-n", type=int, default=10_000, help="recipients, Teams limits on")
    parser.add_argument("--baseline-n", type=int, default=200, help="messages in the baseline loop")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.baseline_n, args.limited_n))
