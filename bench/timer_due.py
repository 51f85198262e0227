"""Benchmark (run by hand): one timer run over 1,000 due reminders, with a large future backlog.

    .venv/bin/python -m bench.timer_due                     # backlogs of 100,000 and 10,000
    .venv/bin/python -m bench.timer_due --future 2000 --due 100

For each backlog size, a fresh Azurite gets that many reminders due over the next three weeks
(up to 100 per user, the per-user maximum) plus `--due` reminders due in the last five minutes,
each for its own conversation on the Connector stub (in its own process, as a channel would be). Rows are seeded with table
batch transactions (one partition, up to 100 rows each). Then one timer run (the same code the
timer_notify function calls) sends what is due. Printed per scenario:

- reminder entities read ÷ due (the goal is at most 1.1; the backlog is never read),
- the run's time and the due query's own time,
- what the stub received (each due reminder exactly once).

Azurite runs in memory here: with disk persistence it rewrites its whole table database every
5 s, which at 200,000 rows stalls every request for seconds and would measure Azurite, not the
run. Azurite still filters a table query in JavaScript over every row of the table, so the due
query's own time grows with the table on Azurite; Azure Table Storage serves a PartitionKey range
from its index. The entities read are what the design controls, and they stay at the due count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from azure.data.tables.aio import TableClient

from devtools import azurite
from devtools.azurite import free_port
from proactive_bot import clients, clock
from proactive_bot.reminders.rows import Reminder, due_row, entry_row
from proactive_bot.reminders.store import MAX_PENDING
from proactive_bot.settings import Settings

BATCH = 100  # the most operations a table transaction takes
SEED_CONCURRENCY = 16


def future_reminders(count: int, now: datetime) -> Iterable[Reminder]:
    """`count` reminders at quarter hours over the next three weeks, up to 100 per user."""
    rng = random.Random(count)
    slots = int(timedelta(days=21) / timedelta(minutes=15))
    start = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0) + timedelta(hours=1)
    for n in range(count):
        user = n // MAX_PENDING
        yield Reminder(
            channel_id="msteams",
            conversation_id=f"a:1future-{user}",
            user_id=f"29:1future-{user}",
            text=f"future {n}",
            due_at=start + rng.randrange(slots) * timedelta(minutes=15),
            zone="Europe/Berlin",
            created_at=now,
        )


def due_reminders(count: int, now: datetime) -> Iterable[Reminder]:
    rng = random.Random(-count)
    for n in range(count):
        yield Reminder(
            channel_id="msteams",
            conversation_id=f"a:1due-{n}",
            user_id=f"29:1due-{n}",
            text=f"due {n}",
            due_at=now - timedelta(seconds=rng.randrange(300)),
            zone="Europe/Berlin",
            created_at=now - timedelta(hours=1),
        )


async def seed(table: TableClient, rows: Iterable[dict[str, Any]]) -> int:
    by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_partition[row["PartitionKey"]].append(row)
    batches = [part[i : i + BATCH] for part in by_partition.values() for i in range(0, len(part), BATCH)]
    limit = asyncio.Semaphore(SEED_CONCURRENCY)

    async def submit(batch: list[dict[str, Any]]) -> None:
        async with limit:
            await table.submit_transaction([("create", row) for row in batch])

    await asyncio.gather(*(submit(b) for b in batches))
    return len(batches)


def reference(reminder: Reminder, service_url: str) -> dict[str, Any]:
    return {
        "user": {"id": reminder.user_id, "name": "Bench User"},
        "bot": {"id": "28:bench-bot", "name": "Reminder Bot"},
        "conversation": {"conversationType": "personal", "tenantId": "bench-tenant", "id": reminder.conversation_id},
        "channelId": reminder.channel_id,
        "locale": "en-US",
        "serviceUrl": service_url,
    }


@contextlib.asynccontextmanager
async def channel_stub():
    """The Connector stub in its own process; yields (serviceUrl, http session)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "devtools.connector_stub", "--port", str(port), "--quiet"])
    url = f"http://127.0.0.1:{port}/"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url + "_stub/stats"):
                        break
                await asyncio.sleep(0.1)
            yield url, http
    finally:
        process.terminate()
        process.wait()


async def delivered_per_conversation(http: aiohttp.ClientSession, url: str) -> Counter[str]:
    async with http.get(url + "_stub/received") as response:
        records = await response.json()
    return Counter(r["conversation_id"] for r in records if 200 <= r["status"] < 300)


async def write_probe(table: TableClient, rows: list[dict[str, Any]]) -> float:
    """Seconds for one merge into each row, 32 at a time: what a plain write costs Azurite now."""
    limit = asyncio.Semaphore(32)

    async def touch(row: dict[str, Any]) -> None:
        async with limit:
            await table.update_entity({"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "probe": 1})

    started = time.perf_counter()
    await asyncio.gather(*(touch(row) for row in rows))
    return time.perf_counter() - started


async def scenario(future: int, due: int, workdir: Path) -> dict[str, float]:
    emulator = azurite.start(workdir / f"azurite-{future}", in_memory=True)
    try:
        async with channel_stub() as (stub_url, http):
            settings = Settings(storage_connection=emulator.connection_string)
            app = await clients.build(settings)
            table = TableClient.from_connection_string(emulator.connection_string, settings.reminders_table)
            now = clock.now()
            seeding = time.perf_counter()
            pending = list(due_reminders(due, now))
            limit = asyncio.Semaphore(32)

            async def save(reminder: Reminder) -> None:
                async with limit:
                    await app.references.save(reference(reminder, stub_url), now)

            await asyncio.gather(*(save(r) for r in pending))
            backlog = list(future_reminders(future, now))
            batches = await seed(table, [due_row(r) for r in [*backlog, *pending]])
            batches += await seed(table, [entry_row(r) for r in [*backlog, *pending]])
            seeded = time.perf_counter() - seeding
            probe_rows = [entry_row(r) for r in backlog[:due]]
            # The seeding's objects would make every garbage collection during the run slower
            # with the backlog: that is the benchmark's memory, not the timer's.
            del backlog
            gc.collect()

            query_started = time.perf_counter()
            await app.reminders.due(now)
            query = time.perf_counter() - query_started

            started, cpu = time.perf_counter(), time.process_time()
            summary = await app.reminder_timer.run(clock.now())
            run, cpu = time.perf_counter() - started, time.process_time() - cpu

            per_conversation = await delivered_per_conversation(http, stub_url)
            again = await app.reminder_timer.run(clock.now())
            probe = await write_probe(table, probe_rows)
            await table.close()
            await app.close()
    finally:
        emulator.stop()
    assert summary.sent == due and sorted(per_conversation.values()) == [1] * due, (summary, per_conversation)
    assert again.due == 0
    print(
        f"future backlog {future:,} + due {due:,}\n"
        f"  seeded {2 * (future + due):,} rows in {batches:,} batch transactions: {seeded:.1f} s\n"
        f"  one timer run: sent {summary.sent:,} (stub: each exactly once), read {summary.read:,} reminder entities, "
        f"read/due = {summary.read / due:.2f}\n"
        f"  run {run:.2f} s = {due / run:,.0f} reminders/s (app CPU {cpu:.2f} s); due query alone {query * 1000:.0f} ms; "
        f"the next run read {again.read}\n"
        f"  Azurite alone: {len(probe_rows):,} plain merges {probe:.2f} s",
        flush=True,
    )
    return {"run": run, "query": query, "ratio": summary.read / due, "probe": probe}


async def main(futures: list[int], due: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-timer-") as workdir:
        results = {future: await scenario(future, due, Path(workdir)) for future in futures}
    if len(results) >= 2:
        big, small = max(results), min(results)
        ratio = {key: results[big][key] / results[small][key] for key in ("run", "query", "probe")}
        print(
            f"backlog x{big / small:.0f} ({small:,} -> {big:,}), N = {due:,} due: entities read per due reminder "
            f"{results[small]['ratio']:.2f} -> {results[big]['ratio']:.2f}; run time x{ratio['run']:.2f}, "
            f"due query x{ratio['query']:.2f}, Azurite's plain write x{ratio['probe']:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--future", type=int, nargs="+", default=[100_000, 10_000])
    parser.add_argument("--due", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.future, args.due))
