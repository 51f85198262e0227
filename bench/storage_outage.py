"""What a storage blip costs a broadcast: issue 25's run, where the status must still tell the truth.

Run by hand (not a test):  .venv/bin/python -m bench.storage_outage [--n 1500] [--freeze 15] [--channel 30]

As bench.broadcast: Azurite (persisted to disk, as the issue's run), the local Functions host in
its own process, the Connector stub in another with 50 ms latency and Teams' limits, our limiter
on. N users, one `{"to": {"all": true}}` broadcast. When a quarter has arrived the stub answers
503 to everything for `--channel` seconds (0: no channel outage); when two thirds have arrived
Azurite is frozen (SIGSTOP to its process group) for `--freeze` seconds, then resumed: nothing is
lost, storage just does not answer, as in a latency spike or a partition.

Printed: the status's sent, unconfirmed, failed; delivered and duplicated at the stub; the sends
the stub answered while storage was frozen (in flight or started then: outcomes the process knew
and could not write yet); the time from the thaw to the first second at >= 90 % of the pace.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.broadcast import HOST_KEY, Rig, enqueue, received, rig, until_count
from bench.channel_outage import recovery_seconds, stub_outage
from devtools import azurite


async def status_of(run: Rig, notification_id: str) -> dict:
    url = f"{run.host_urls[0]}/api/notifications/{notification_id}"
    for _ in range(60):  # the broadcast's last outcomes may still be on their way
        async with run.session.get(url, headers={"x-functions-key": HOST_KEY}) as resp:
            status = await resp.json() if resp.status == 200 else {"error": resp.status}
        if status.get("state") == "done":
            return status
        await asyncio.sleep(1)
    return status


async def one_run(emulator: azurite.Azurite, n: int, freeze: float, channel: float, workdir: Path) -> dict:
    name = f"stor{int(time.time() * 1000) % 10**8}"
    async with rig(emulator.connection_string, n, workdir, teams_limits=True, name=name) as run:
        session, stub_url = run.session, run.stub_url
        await enqueue(run, {"id": "bench-storage", "to": {"all": True}, "text": "Through a storage blip"})
        if channel:
            await until_count(session, stub_url, "delivered", n // 4)
            await stub_outage(run, 503)
            await asyncio.sleep(channel)
            await stub_outage(run, None)
        await until_count(session, stub_url, "delivered", 2 * n // 3, stall=120)
        frozen = time.monotonic()
        os.killpg(emulator.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(freeze)
        finally:
            os.killpg(emulator.process.pid, signal.SIGCONT)
        thawed = time.monotonic()
        await until_count(session, stub_url, "delivered", n, stall=120)
        status = await status_of(run, "bench-storage")
        records = await received(session, stub_url)
    ok = [r for r in records if 200 <= r["status"] < 300 and r["route"] in ("send", "reply")]
    per_conversation = Counter(r["conversation_id"] for r in ok)
    return {
        "n": n,
        "state": status.get("state"),
        "counts": status.get("counts", {}),
        "delivered": len(per_conversation),
        "duplicated": sum(c - 1 for c in per_conversation.values()),
        "during": sum(1 for r in ok if frozen <= r["received_monotonic"] < thawed),
        "recover": recovery_seconds([r["received_monotonic"] for r in ok], thawed),
    }


def report(run: dict, freeze: float, channel: float) -> str:
    counts, recover = run["counts"], "never" if run["recover"] is None else f"{run['recover']:.1f} s"
    return (
        f"N={run['n']}, channel 503 {channel:.0f} s, storage frozen {freeze:.0f} s: status {run['state']}: "
        f"sent {counts.get('sent')}, unconfirmed {counts.get('unconfirmed')}, failed {counts.get('failed')}; "
        f"stub: delivered {run['delivered']}, duplicated {run['duplicated']}; "
        f"sends answered while frozen {run['during']}; full pace {recover} after the thaw"
    )


async def main(n: int, freeze: float, channel: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        workdir = Path(tmp)
        emulator = azurite.start(workdir / "azurite", in_memory=False)
        try:
            print(report(await one_run(emulator, n, freeze, channel, workdir), freeze, channel), flush=True)
        finally:
            emulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500, help="recipients")
    parser.add_argument("--freeze", type=float, default=15.0, help="seconds storage is frozen")
    parser.add_argument("--channel", type=float, default=30.0, help="seconds of channel 503s first (0: none)")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.freeze, args.channel))
