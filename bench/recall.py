"""Recall throughput: deleting a sent broadcast everywhere it went, with Teams limits on.

Run by hand (not a test):  .venv/bin/python -m bench.recall [--n 2000]

As bench.broadcast: Azurite (in memory, fresh), the local Functions host in its own process, the
Connector stub in another with 50 ms latency and Teams' rate limits (429 + Retry-After), our
limiter on. N references; one `{"to": {"all": true}}` broadcast goes out; once it is delivered,
`DELETE /api/notifications/{id}` recalls it. Printed: recall requests/s from the DELETE to the
last deletion, as a fraction of the 50/s app bound (goal >= 0.9); missed (delivered, never
deleted) and doubled (more than one DELETE for one activity); 429s during the recall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.broadcast import APP_BOUND, HOST_KEY, enqueue, received, rig, stub_stats, until_count
from devtools import azurite


async def recall(connection: str, n: int, workdir: Path) -> dict:
    name = f"recall{int(time.time() * 1000) % 10**9}"
    async with rig(connection, n, workdir, teams_limits=True, name=name) as run:
        session, stub_url, host_url = run.session, run.stub_url, run.host_urls[0]
        await enqueue(run, {"id": "bench-recall", "to": {"all": True}, "text": "Recall me"})
        await until_count(session, stub_url, "delivered", n)
        await asyncio.sleep(2)  # the last outcomes written
        throttled_before = (await stub_stats(session, stub_url))["throttled"]

        started = time.monotonic()
        async with session.delete(
            f"{host_url}/api/notifications/bench-recall", headers={"x-functions-key": HOST_KEY}
        ) as resp:
            answer = resp.status
        await until_count(session, stub_url, "deleted", n)
        await asyncio.sleep(2)  # anything doubled has time to arrive
        records = await received(session, stub_url)
        deletes = [r for r in records if r["route"] == "delete"]
        done = [r for r in deletes if 200 <= r["status"] < 300]
        elapsed = max((r["received_monotonic"] for r in done), default=0.0) - min(
            (r["received_monotonic"] for r in deletes), default=0.0
        )
        async with session.get(
            f"{host_url}/api/notifications/bench-recall", headers={"x-functions-key": HOST_KEY}
        ) as resp:
            status = await resp.json()
        # The stub's clock and ours differ; the DELETE call's own time is added to be fair.
        total = time.monotonic() - started
        throttled = (await stub_stats(session, stub_url))["throttled"] - throttled_before
    sent = {r["response_id"] for r in records if r["route"] in ("send", "reply") and 200 <= r["status"] < 300}
    attempts = Counter(r["activity_id"] for r in deletes if r["status"] != 429)
    return {
        "n": n,
        "answer": answer,
        "sent": len(sent),
        "deleted": len(done),
        "seconds": elapsed,
        "seconds_from_delete_call": total,
        "per_second": len(done) / elapsed if elapsed > 0 else 0.0,
        "missed": len(sent - {r["activity_id"] for r in done}),
        "doubled": sum(c - 1 for c in attempts.values() if c > 1),
        "throttled_429": throttled,
        "counts": status.get("counts"),
        "state": status.get("state"),
    }


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        emulator = azurite.start(workdir / "azurite", in_memory=True)
        try:
            run = await recall(emulator.connection_string, n, workdir)
        finally:
            emulator.stop()
    print(
        f"recall, Teams limits on (stub and limiter): N={run['n']}, DELETE answered {run['answer']}, "
        f"{run['deleted']} of {run['sent']} sent deleted in {run['seconds']:.1f} s "
        f"({run['seconds_from_delete_call']:.1f} s from the DELETE call to the status read), "
        f"{run['per_second']:.1f} deletions/s = {run['per_second'] / APP_BOUND:.3f} of the {APP_BOUND:.0f}/s bound "
        f"(goal >= 0.9), missed {run['missed']}, doubled {run['doubled']}, 429s {run['throttled_429']}"
    )
    print(f"  status: {run['state']} {json.dumps(run['counts'])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2_000, help="recipients")
    args = parser.parse_args()
    asyncio.run(main(args.n))
