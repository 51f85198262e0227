"""The `make run` path: how soon, and how fast, a broadcast reaches 400 Teams-shaped users, as a
user's run does it (5 % of them blocking the bot, one failing twice with 500).

Run by hand (not a test):

    .venv/bin/python -m bench.make_run [--n 400] [--hosts 1] [--runs 2] [--blocked 0.05] [--flaky 1]
        [--teams-limits] [--fresh]

Starts `python -m devtools.run` as `make run` does (Azurite persisted in .azurite/ on the
development ports, the local host, the console channel and Web Chat in one process; with
`--hosts K`, K-1 sibling hosts), stores N Teams-shaped users whose serviceUrl is the console
channel, has the console channel answer `--blocked` of them 403 ConversationBlockedByUser (every
20th, for 5 %) and `--flaky` of them 500 twice before accepting, puts one
`{"to": {"all": true}}` notification on the queue and reads the console channel's records, per
second from enqueue: deliveries, and requests of any answer (what the app's 50/s bound paces).
Printed: the first delivery after enqueue (goal <= 1 s), deliveries and requests from enqueue to
the last delivery as a fraction of the bound (goal >= 0.9 of what can be delivered), the
steady request pace (first to last request), and where the tail went (the flaky recipient's
retries). `--teams-limits` makes the console channel enforce Teams' windows too (429s counted).
Run it twice in a row and the second run also shows a warm host and a persisted database
(the blocked users are inactive by then: nothing is sent to them). `--fresh` moves .azurite/
aside for the run (the user's first run) and puts it back after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from bench.broadcast import APP_BOUND, REPO, received, reference, seed, start_process, stop_process, wait_listening
from devtools.azurite import free_port

DEV_STORAGE = "UseDevelopmentStorage=true"
FLAKY_STATUSES = [500, 500]


async def stub_post(session: aiohttp.ClientSession, channel: str, what: str, params: dict) -> None:
    """Configure the console channel in the other process (`/_stub/block|fail|limits`)."""
    async with session.post(channel + f"_stub/{what}", json=params) as response:
        response.raise_for_status()


def per_second(stamps: list[float], since: float) -> list[int]:
    """How many of `stamps` fall in each whole second after `since`."""
    if not stamps:
        return []
    counts = [0] * (int(max(stamps) - since) + 1)
    for stamp in stamps:
        counts[max(0, int(stamp - since))] += 1
    return counts


@contextlib.contextmanager
def fresh_azurite(fresh: bool) -> Iterator[None]:
    """With `fresh`, .azurite/ is moved aside while the run lasts (what `make clean` gives)."""
    data, aside = REPO / ".azurite", REPO / ".azurite.bench-aside"
    moved = fresh and data.exists()
    if moved:
        data.rename(aside)
    try:
        yield
    finally:
        if fresh:
            shutil.rmtree(data, ignore_errors=True)
        if moved:
            aside.rename(data)


def azurite_size() -> float:
    """MiB of .azurite/ (what old runs left behind)."""
    data = REPO / ".azurite"
    return sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 2**20 if data.exists() else 0.0


@dataclass(frozen=True)
class MakeRun:
    """`python -m devtools.run` up and listening: its console channel and its K hosts."""

    channel: str  # the console channel's serviceUrl (the Connector stub, in the run's process)
    host_urls: list[str]
    session: aiohttp.ClientSession


@contextlib.asynccontextmanager
async def make_run(hosts: int, settings: Mapping[str, str] | None = None) -> AsyncIterator[MakeRun]:
    """`make run` as a user starts it (with `settings` added to its environment), on free ports;
    stopped afterwards. Its log goes to $BENCH_LOG_DIR/run.log (else a temporary folder)."""
    port, channel_port, webchat_port = free_port(), free_port(), free_port()
    channel = f"http://127.0.0.1:{channel_port}/"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            sys.executable,
            "-m",
            "devtools.run",
            "--port",
            str(port),
            "--channel-port",
            str(channel_port),
            "--webchat-port",
            str(webchat_port),
            "--hosts",
            str(hosts),
        ]
        env = {**os.environ, **(settings or {})}
        app = start_process(args, env, Path(os.environ.get("BENCH_LOG_DIR", tmp)) / "run.log")
        try:
            async with aiohttp.ClientSession() as session:
                await wait_listening(session, channel + "_stub/stats", timeout=60)
                host_urls = [f"http://127.0.0.1:{port + k}" for k in range(hosts)]
                for url in host_urls:
                    await wait_listening(session, f"{url}/admin/host/status", timeout=60)
                yield MakeRun(channel, host_urls, session)
        finally:
            stop_process(app)


async def main(n: int, hosts: int, runs: int, blocked: float, flaky: int, teams_limits: bool, old: int) -> None:
    print(f".azurite/ holds {azurite_size():.0f} MiB", flush=True)
    async with make_run(hosts) as run:
        session, channel = run.session, run.channel
        if old:
            # What earlier runs leave behind: users of another tenant, in the same database.
            await seed(DEV_STORAGE, "ConversationReferences", old, channel, prefix="old" + uuid.uuid4().hex[:4])
            print(f"{old} old users stored; .azurite/ holds {azurite_size():.0f} MiB", flush=True)
        # The users of this run: fresh conversation ids, on the console channel.
        run_id = uuid.uuid4().hex[:6]
        await seed(DEV_STORAGE, "ConversationReferences", n, channel, prefix=run_id)
        conversations = [reference(i, channel, run_id)["conversation"]["id"] for i in range(n)]
        every = max(1, round(1 / blocked)) if blocked > 0 else 0
        blocked_ids = conversations[::every] if every else []
        flaky_ids = [c for c in conversations if c not in set(blocked_ids)][1 : 1 + flaky]
        if blocked_ids:
            await stub_post(session, channel, "block", {"conversation_ids": blocked_ids})
        if teams_limits:
            await stub_post(session, channel, "limits", {})
        for attempt in range(runs):
            await session.post(channel + "_stub/reset")
            for conversation_id in flaky_ids:
                await stub_post(
                    session, channel, "fail", {"conversation_id": conversation_id, "statuses": FLAKY_STATUSES}
                )
            await asyncio.sleep(3)  # the host's pollers back off as they would between uses
            enqueued_at = await enqueue_broadcast(run_id, attempt)
            reachable = n - len(blocked_ids)  # blocked users answer 403, or are inactive after it
            records = await until_settled(session, channel, reachable, set(flaky_ids))
            print(report(records, enqueued_at, n, hosts, attempt, len(blocked_ids), set(flaky_ids)), flush=True)
            senders = await instances_since(enqueued_at)
            print(
                f"  instances with budget heartbeats during the run: {len(senders)}"
                + (f" (more than the run's {hosts}: another host shares this storage)" if len(senders) > hosts else ""),
                flush=True,
            )


async def instances_since(since: float) -> set[str]:
    """The instances (Budget table rows) that heartbeated since `since` (wall clock): those
    sending on this storage, the run's own hosts and any other `make run` left running."""
    moment = datetime.fromtimestamp(since, UTC)
    async with TableClient.from_connection_string(DEV_STORAGE, "Budget") as table:
        with contextlib.suppress(ResourceNotFoundError):
            return {e["RowKey"] async for e in table.list_entities() if (e.metadata["timestamp"] or moment) >= moment}
    return set()


async def enqueue_broadcast(run_id: str, attempt: int) -> float:
    async with QueueClient.from_connection_string(DEV_STORAGE, "notifications") as queue:
        enqueued_at = time.time()
        await queue.send_message(
            json.dumps(
                {
                    "id": f"make-run-{run_id}-{attempt}",
                    "to": {"all": True, "tenantId": f"tenant-{run_id}"},
                    "text": "Town hall at 16:00",
                }
            )
        )
    return enqueued_at


async def until_settled(session: aiohttp.ClientSession, channel: str, reachable: int, flaky: set[str]) -> list[dict]:
    """Wait (at most 120 s) until every reachable user has the message, the flaky ones included;
    then a second for anything that would come twice. Returns the channel's records."""
    started = time.monotonic()
    while time.monotonic() - started < 120:
        async with session.get(channel + "_stub/stats") as response:
            if (await response.json())["delivered"] >= reachable:
                break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    return await received(session, channel)


def report(
    records: list[dict], enqueued_at: float, n: int, hosts: int, attempt: int, blocked: int, flaky: set[str]
) -> str:
    delivered = sorted(r["received_wall"] for r in records if 200 <= r["status"] < 300)
    requests = sorted(r["received_wall"] for r in records)
    if not delivered:
        return f"make run, K={hosts}, N={n}, run {attempt + 1}: nothing delivered"
    span = delivered[-1] - enqueued_at
    steady = (len(requests) - 1) / max(1e-9, requests[-1] - requests[0]) / APP_BOUND
    forbidden = sum(1 for r in records if r["status"] == 403)
    failed = sum(1 for r in records if r["status"] >= 500)
    throttled = sum(1 for r in records if r["status"] == 429)
    flaky_at = sorted(r["received_wall"] - enqueued_at for r in records if r["conversation_id"] in flaky)
    per_conversation: dict[str, int] = {}
    for r in records:
        if 200 <= r["status"] < 300:
            per_conversation[r["conversation_id"]] = per_conversation.get(r["conversation_id"], 0) + 1
    return (
        f"make run, K={hosts}, N={n} ({blocked} blocked, {len(flaky)} flaky), run {attempt + 1}: "
        f"{len(delivered)} delivered, first after {delivered[0] - enqueued_at:.2f} s; from enqueue to the last "
        f"delivery ({span:.1f} s): deliveries {len(delivered) / span / APP_BOUND:.3f}, requests "
        f"{len(requests) / span / APP_BOUND:.3f} of the bound (goal >= 0.9); steady request pace {steady:.3f}; "
        f"403s {forbidden}, 5xx {failed}, 429s {throttled}, duplicated "
        f"{sum(c - 1 for c in per_conversation.values() if c > 1)}\n"
        f"  deliveries per second from enqueue: {' '.join(map(str, per_second(delivered, enqueued_at)))}\n"
        f"  requests per second from enqueue:   {' '.join(map(str, per_second(requests, enqueued_at)))}\n"
        f"  the flaky recipient's requests at: {' '.join(f'{t:.2f}' for t in flaky_at)} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--blocked", type=float, default=0.05, help="share of users answering 403 (0: none)")
    parser.add_argument("--flaky", type=int, default=1, help="users answering 500 twice before accepting")
    parser.add_argument("--teams-limits", action="store_true", help="the console channel enforces Teams' windows")
    parser.add_argument("--fresh", action="store_true", help="an empty .azurite/ for the run (put back after)")
    parser.add_argument("--old-users", type=int, default=0, help="users of another tenant stored first (old rows)")
    args = parser.parse_args()
    with fresh_azurite(args.fresh):
        asyncio.run(main(args.n, args.hosts, args.runs, args.blocked, args.flaky, args.teams_limits, args.old_users))
