"""The CSV delivery report's memory: a 100,000-row export against a 10,000-row one.

Run by hand (not a test):  .venv/bin/python -m bench.csv_export [--small 10000] [--large 100000]

Azurite (in memory, fresh) holds one notification's recipient rows, written straight into its
shards as the deliveries would have (`state`, `attempts`, `detail`, times ...). The report is
read the way `GET /api/notifications/{id}/recipients.csv` reads it (report.recipients.pages, a
table page of 1,000 rows at a time, into report.export.csv_chunks), under tracemalloc:

- streamed: each chunk handed on and dropped (what a host that streams the body holds);
- whole body: the one body the Python worker hands the host (report.export.csv_body), as sent to
  a client that does not take gzip;
- gzip: the same, compressed page by page, as sent to one that does (browsers, curl --compressed).

Printed: the peak Python allocation of each for both sizes, and large ÷ small. Flat means the
streamed ratio stays near 1 while the rows grow tenfold.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from azure.data.tables.aio import TableClient

from devtools import azurite
from proactive_bot.notifications.records import RecipientRow, RecipientState, shard_partition
from proactive_bot.notifications.records.keys import SHARDS
from proactive_bot.report import export, recipients


def _entity(notification_id: str, n: int, now: datetime) -> dict:
    failed = n % 97 == 0
    return {
        "PartitionKey": shard_partition(notification_id, n % SHARDS),
        "RowKey": f"r|u|29:1user-{n:07d}",
        "channelId": "msteams",
        "conversationId": f"a:1conversation-{n:07d}-Xyz-Abc_Def",
        "userId": f"29:1user-{n:07d}-Klm-Nop",
        "state": (RecipientState.FAILED if failed else RecipientState.SENT).value,
        "status": 400 if failed else 201,
        "attempts": 1,
        "throttled": 0,
        "detail": "channel answered 400 BadArgument: Invalid request payload." if failed else "",
        "resends": 0,
        "claimedAt": now,
        "updatedAt": now,
        "activityId": f"1:{n:012d}",
        "version": 0,
    }


async def _fill(table: TableClient, notification_id: str, count: int) -> None:
    now = datetime.now(UTC)
    batches: list[list[dict]] = []
    for shard in range(SHARDS):
        rows = [_entity(notification_id, n, now) for n in range(shard, count, SHARDS)]
        batches += [rows[i : i + 100] for i in range(0, len(rows), 100)]  # a transaction: one partition, <= 100
    gate = asyncio.Semaphore(8)

    async def write(batch: list[dict]) -> None:
        async with gate:
            await table.submit_transaction([("upsert", e) for e in batch])

    await asyncio.gather(*(write(batch) for batch in batches))


async def _rows(table: TableClient, notification_id: str) -> AsyncIterator[list[RecipientRow]]:
    async for page in recipients.pages(table, notification_id, None, datetime.now(UTC)):
        yield page.rows


MODES = ("streamed", "whole body", "gzip")


async def _measure(table: TableClient, notification_id: str, mode: str) -> tuple[int, int, float]:
    """(peak bytes, body bytes, seconds) of one export."""
    tracemalloc.start()
    started = time.perf_counter()
    size = 0
    if mode == "streamed":
        async for chunk in export.csv_chunks(_rows(table, notification_id)):
            size += len(chunk.encode())
    else:
        body = await export.csv_body(_rows(table, notification_id), gzip=mode == "gzip")
        size = len(body)
        del body
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, size, elapsed


async def main(small: int, large: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        emulator = azurite.start(Path(workdir), in_memory=True)
        try:
            async with TableClient.from_connection_string(emulator.connection_string, "CsvBench") as table:
                await table.create_table()
                results = {}
                for count in (small, large):
                    notification_id = f"csv-{count}"
                    started = time.perf_counter()
                    await _fill(table, notification_id, count)
                    print(f"{count} rows written in {time.perf_counter() - started:.0f} s", flush=True)
                    for mode in MODES:
                        peak, size, elapsed = await _measure(table, notification_id, mode)
                        results[count, mode] = peak
                        print(
                            f"  {mode:<10} N={count}: peak {peak / 2**20:.1f} MiB, body {size / 2**20:.1f} MiB, "
                            f"{elapsed:.1f} s ({count / elapsed:.0f} rows/s)",
                            flush=True,
                        )
                for mode in MODES:
                    ratio = results[large, mode] / results[small, mode]
                    print(f"{mode}: peak at N={large} ÷ N={small} = {ratio:.2f}")
        finally:
            emulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.small, arguments.large))
