"""The `make run` path: how soon, and how fast, a broadcast reaches 400 Teams-shaped users.

Run by hand (not a test):  .venv/bin/python -m bench.make_run [--n 400] [--hosts 1]

Starts `python -m devtools.run` as `make run` does (Azurite persisted in .azurite/ on the
development ports, the local host, the console channel and Web Chat in one process; with
`--hosts K`, K-1 sibling hosts), stores N Teams-shaped users whose serviceUrl is the console
channel, puts one `{"to": {"all": true}}` notification on the queue and reads the console
channel's records: the first delivery after enqueue (goal <= 1 s) and the rate from enqueue
to the last delivery as a fraction of the 50/s bound the app paces itself to (goal >= 0.9).
Run it twice in a row and the second run also shows a warm host and a persisted database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from azure.storage.queue.aio import QueueClient

from bench.broadcast import APP_BOUND, delivered, seed, start_process, stop_process, timeline, wait_listening
from devtools.azurite import free_port

DEV_STORAGE = "UseDevelopmentStorage=true"


async def main(n: int, hosts: int, runs: int) -> None:
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
        app = start_process(args, dict(os.environ), Path(os.environ.get("BENCH_LOG_DIR", tmp)) / "run.log")
        try:
            async with aiohttp.ClientSession() as session:
                await wait_listening(session, channel + "_stub/stats", timeout=60)
                await wait_listening(session, f"http://127.0.0.1:{port}/admin/host/status", timeout=60)
                for extra in range(1, hosts):
                    await wait_listening(session, f"http://127.0.0.1:{port + extra}/admin/host/status", timeout=60)
                # The users of this run: fresh conversation ids, on the console channel.
                run_id = uuid.uuid4().hex[:6]
                await seed(DEV_STORAGE, "ConversationReferences", n, channel, prefix=run_id)
                for attempt in range(runs):
                    await session.post(channel + "_stub/reset")
                    await asyncio.sleep(3)  # the host's pollers back off as they would between uses
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
                    started = time.monotonic()
                    while time.monotonic() - started < 120:
                        async with session.get(channel + "_stub/stats") as response:
                            if (await response.json())["delivered"] >= n:
                                break
                        await asyncio.sleep(0.05)
                    stamps = sorted(r["received_wall"] for r in await delivered(session, channel))
                    rate = len(stamps) / (stamps[-1] - enqueued_at) / APP_BOUND
                    print(
                        f"make run, K={hosts}, N={n}, run {attempt + 1}: {len(stamps)} delivered, first after "
                        f"{stamps[0] - enqueued_at:.2f} s, {rate:.3f} of the bound from enqueue (goal <= 1 s, >= 0.9)\n  "
                        + timeline({"delivered_at": stamps, "enqueued_at": enqueued_at}),
                        flush=True,
                    )
        finally:
            stop_process(app)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.hosts, args.runs))
