"""Scale-out: K local hosts on one storage and one Teams-limited channel share the app's budget.

Run by hand (not a test):

    .venv/bin/python -m bench.scaleout [--n 2000] [--hosts 1 2 3 4] [--kill-n 2000] [--big-n 10000] [--resend]

Each run: a fresh in-memory Azurite, the Connector stub in its own process with Teams limits
(429 + Retry-After past 50/s per app, 7/1 s... per conversation) and 50 ms latency, K local
Functions hosts (`python -m devtools.funchost`, one process each), N stored Teams users, one
`{"to": {"all": true}}` notification on the queue. Printed per run: the delivery rate as a
fraction of the 50/s bound (from enqueue to the last delivery, and from the first delivery to
the last: the steady pace), the first delivery after enqueue, 429s as a share of the channel's
requests, lost and duplicated recipients.

1. K = 1, 2, 3, 4 hosts, N recipients. Goal: >= 0.95 of the bound for every K, 429s <= 0.5 %,
   lost 0, duplicated 0.
2. K = 3, the first host SIGKILLed once a third is delivered: the others finish; duplicated 0;
   how long until the survivors' grants in the Budget table add up to the ceiling again; how
   many recipients are missing, held in `sending` by the dead host (reported `unconfirmed` once
   their lease runs out) or already `unconfirmed`. Then (`--resend`, about 2 more minutes) the
   operator's resend once their leases have run out: missing and duplicated after it.
3. K = 1, a big N (10,000). Goal: >= 0.98 of the bound, 429s ~ 0.

The machine has 2 cores shared by Azurite, the stub and every host (and, often, other people's
test runs): figures move from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from azure.data.tables.aio import TableClient

from bench.broadcast import APP_BOUND, HOST_KEY, delivered, enqueue, reference, rig, stub_stats, timeline
from devtools import azurite
from proactive_bot.delivery.budget_table import BudgetTable, Row
from proactive_bot.notifications.records import NotificationStore, RecipientState

NOTIFICATION = "bench"


@dataclass
class Run:
    n: int
    hosts: int
    enqueued_at: float = 0.0
    delivered_at: list[float] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0
    lost: int = 0
    duplicated: int = 0
    # the kill run
    killed_after: int | None = None
    reclaim_seconds: float | None = None
    held: int = 0
    unconfirmed: int = 0
    resent: int | None = None  # with --resend: how many the resend handed out
    lost_after_resend: int | None = None
    duplicated_after_resend: int | None = None
    host_cpu: list[float] = field(default_factory=list)  # CPU seconds of each host process
    granted: list[int] = field(default_factory=list)  # the Budget table's grants, summed, sampled

    @property
    def first_delivery(self) -> float:
        return self.delivered_at[0] - self.enqueued_at

    @property
    def from_enqueue(self) -> float:
        return len(self.delivered_at) / (self.delivered_at[-1] - self.enqueued_at) / APP_BOUND

    @property
    def pace(self) -> float:
        return (len(self.delivered_at) - 1) / (self.delivered_at[-1] - self.delivered_at[0]) / APP_BOUND

    def line(self) -> str:
        share = 100 * self.throttled / max(1, self.requests)
        return (
            f"N={self.n} K={self.hosts}: {self.from_enqueue:.3f} of the bound from enqueue "
            f"({self.pace:.3f} steady, first delivery after {self.first_delivery:.2f} s), "
            f"429s {self.throttled} of {self.requests} requests ({share:.2f} %), "
            f"lost {self.lost}, duplicated {self.duplicated}; host CPU "
            + "+".join(f"{cpu:.0f}" for cpu in self.host_cpu)
            + " s; "
            + (
                f"grants summed to {sum(self.granted) / len(self.granted):.1f}/s on average, "
                f"{max(self.granted)} at most\n  "
                if self.granted
                else "\n  "
            )
            + timeline({"delivered_at": self.delivered_at, "enqueued_at": self.enqueued_at})
        )


async def broadcast(n: int, hosts: int, workdir: Path, *, kill: bool = False, resend: bool = False) -> Run:
    emulator = azurite.start(workdir / f"azurite-{n}-{hosts}-{kill}", in_memory=True)
    try:
        return await _broadcast(emulator.connection_string, n, hosts, workdir, kill, resend)
    finally:
        emulator.stop()


async def _broadcast(connection: str, n: int, hosts: int, workdir: Path, kill: bool, resend: bool = False) -> Run:
    # With a kill, the killed host's queue messages come back after this, not the host's 10 minutes.
    settings = {"FUNCHOST_PROCESSING_VISIBILITY_SECONDS": "60"} if kill else {}
    run = Run(n, hosts)
    async with contextlib.AsyncExitStack() as stack:
        rigged = await stack.enter_async_context(
            rig(connection, n, workdir, teams_limits=True, hosts=hosts, settings=settings)
        )
        # Read before the rig stops the hosts (a stopped process has no CPU time to read).
        stack.callback(lambda: run.host_cpu.extend(cpu_seconds(process.pid) for process in rigged.hosts))
        notes = await stack.enter_async_context(TableClient.from_connection_string(connection, "Notifications"))
        budget = BudgetTable(
            await stack.enter_async_context(TableClient.from_connection_string(connection, "Budget")), "local"
        )
        session, stub_url, processes = rigged.session, rigged.stub_url, rigged.hosts
        run.enqueued_at = await enqueue(rigged, {"id": NOTIFICATION, "to": {"all": True}, "text": "Benchmark"})
        records = NotificationStore(notes)
        sampler = asyncio.create_task(sample_grants(budget, run.granted))
        reclaim: asyncio.Task[float | None] | None = None
        last_change, last_count = time.monotonic(), -1
        while True:
            stats = await stub_stats(session, stub_url)
            if kill and run.killed_after is None and stats["delivered"] >= n // 3:
                victim = processes[0]
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait()
                run.killed_after = stats["delivered"]
                reclaim = asyncio.create_task(until_reclaimed(budget, victim.pid))
            if stats["delivered"] >= n:
                break
            if kill and run.killed_after is not None and await settled_except_held(records, n):
                break
            if stats["delivered"] != last_count:
                last_change, last_count = time.monotonic(), stats["delivered"]
            elif time.monotonic() - last_change > (90 if kill else 30):
                print(f"  stalled at {stats['delivered']} of {n}", flush=True)
                break
            await asyncio.sleep(0.1)
        sampler.cancel()
        await asyncio.sleep(1)  # anything that would duplicate has time to arrive
        received = await delivered(session, stub_url)
        stats = await stub_stats(session, stub_url)
        if kill:
            status = await records.status(NOTIFICATION)
            if status is not None:
                run.held = status.counts[RecipientState.SENDING]
                run.unconfirmed = status.counts[RecipientState.UNCONFIRMED]
            if reclaim is not None:
                run.reclaim_seconds = await reclaim
            if resend:
                run.resent = await resend_unconfirmed(session, records, rigged.host_urls[-1])
                received_after = await delivered(session, stub_url)
    per_conversation = Counter(r["conversation_id"] for r in received)
    expected = {reference(i, stub_url)["conversation"]["id"] for i in range(n)}
    run.delivered_at = sorted(r["received_wall"] for r in received)
    run.lost = len(expected - set(per_conversation))
    run.duplicated = sum(c - 1 for c in per_conversation.values() if c > 1)
    run.requests = stats["received"]
    run.throttled = stats["throttled"]
    if run.resent is not None:
        after = Counter(r["conversation_id"] for r in received_after)
        run.lost_after_resend = len(expected - set(after))
        run.duplicated_after_resend = sum(c - 1 for c in after.values() if c > 1)
    return run


async def resend_unconfirmed(session: aiohttp.ClientSession, records: NotificationStore, host_url: str) -> int:
    """What an operator does after a crash: wait until the dead host's rows are unconfirmed
    (their 2-minute lease), ask a live host to resend them, and wait for the sends to land."""
    for _ in range(200):
        status = await records.status(NOTIFICATION)
        if status is not None and status.counts[RecipientState.SENDING] == 0:
            break
        await asyncio.sleep(1)
    url = f"{host_url}/api/notifications/{NOTIFICATION}/resend?state=unconfirmed"
    async with session.post(url, headers={"x-functions-key": HOST_KEY}) as response:
        answer = await response.json(content_type=None)
    for _ in range(120):
        status = await records.status(NOTIFICATION)
        if status is not None and status.pending == 0:
            break
        await asyncio.sleep(1)
    await asyncio.sleep(1)  # anything that would duplicate has time to arrive
    return int(answer.get("resending", 0))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def granted(row: Row) -> int:
    """What an instance's row grants it, over its scopes (the bench's users share one tenant)."""
    return sum(share.granted for share in row.scopes.values())


async def sample_grants(budget: BudgetTable, into: list[int]) -> None:
    """The sum of the live instances' grants, every 0.2 s (rows written in the last 3 s)."""
    while True:
        with contextlib.suppress(Exception):
            rows = await budget.read()
            if rows:
                newest = max(row.written for row in rows)
                into.append(sum(granted(row) for row in rows if (newest - row.written).total_seconds() <= 3))
        await asyncio.sleep(0.2)


async def until_reclaimed(budget: BudgetTable, dead_pid: int, timeout: float = 30.0) -> float | None:
    """Seconds from the kill until the survivors' grants add up to the ceiling again."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        rows = await budget.read()
        survivors = sum(granted(row) for row in rows if f"-{dead_pid}-" not in row.instance)
        if survivors >= APP_BOUND:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def settled_except_held(records: NotificationStore, n: int) -> bool:
    """Everyone is settled but the rows the dead host held (`sending`)."""
    status = await records.status(NOTIFICATION)
    if status is None or not status.header.planned:
        return False
    final = sum(count for state, count in status.counts.items() if state.final)
    return final + status.counts[RecipientState.SENDING] >= n


async def main(n: int, hosts: list[int], kill_n: int, big_n: int, resend: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for k in hosts:
            print((await broadcast(n, k, workdir)).line(), flush=True)
        if kill_n:
            run = await broadcast(kill_n, 3, workdir, kill=True, resend=resend)
            missing = run.lost
            print(
                f"{run.line()}\n  one of K=3 SIGKILLed after {run.killed_after} delivered: survivors' grants back at "
                f"the ceiling after {run.reclaim_seconds if run.reclaim_seconds is None else round(run.reclaim_seconds, 2)} s; "
                f"missing {missing} (held in 'sending' by the dead host {run.held}, unconfirmed {run.unconfirmed}), "
                f"duplicated {run.duplicated}",
                flush=True,
            )
            if run.resent is not None:
                print(
                    f"  after the operator's resend of the unconfirmed ({run.resent} handed out): missing "
                    f"{run.lost_after_resend}, duplicated {run.duplicated_after_resend} (a resend is at least once: "
                    f"a held row whose message had arrived gets it twice)",
                    flush=True,
                )
        if big_n:
            print((await broadcast(big_n, 1, workdir)).line(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="recipients per run with K hosts")
    parser.add_argument("--hosts", type=int, nargs="*", default=[1, 2, 3, 4], help="values of K")
    parser.add_argument("--kill-n", type=int, default=2000, help="recipients of the kill run (0: skip)")
    parser.add_argument("--big-n", type=int, default=10_000, help="recipients of the K=1 run (0: skip)")
    parser.add_argument("--resend", action="store_true", help="after the kill run, the operator's resend (~2 min more)")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.hosts, args.kill_n, args.big_n, args.resend))
