"""A `teamId` notification to a roster of N members the bot has never talked to, Teams limits on.

Run by hand (not a test):  .venv/bin/python -m bench.teams_reach [--n 5000]

Real Azurite (in memory), the app's own clients (`clients.build`, rate limiter on at 50/s), and
the Connector stub with Teams' limits (per-conversation windows, 50/s app-wide counting creates
and sends, the paged members limits) and 50 ms latency, in this process. The work queue is
played by 16 concurrent handlers, as the Functions host's queue trigger (batchSize 16) would.

1. The install: one installationUpdate turn, then the roster walk (pages of 500) until stored.
2. One `{"to": {"teamId": ...}}` notification: every member needs a 1:1 chat created, then the
   message. Printed: requests/s (creates + sends) from enqueue to the last delivery, as a fraction
   of the 50/s bound (goal >= 0.9), 429s, lost (members with no message) and duplicated (members
   with more than one create or message). Goal 0 and 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from devtools import azurite
from devtools.connector_stub import CREATE, ConnectorStub
from proactive_bot import clients
from proactive_bot.notifications.contract import validate
from proactive_bot.settings import Settings
from tests import activities

APP_BOUND = 50.0
HANDLERS = 16


async def play_work_queue(app: clients.Clients, until: asyncio.Event) -> int:
    """Run work messages with up to HANDLERS at once until `until` is set."""
    queue = app.queues.get_queue_client(app.settings.work_queue)
    running: set[asyncio.Task[None]] = set()
    ran = 0

    async def one(message) -> None:
        await app.fanout.handle(json.loads(message.content))
        await queue.delete_message(message)

    while not until.is_set():
        room = HANDLERS - len(running)
        messages = [m async for m in queue.receive_messages(max_messages=min(32, room), visibility_timeout=300)] if room else []
        for message in messages:
            task = asyncio.create_task(one(message))
            running.add(task)
            task.add_done_callback(running.discard)
            ran += 1
        if not messages:
            await asyncio.sleep(0.1)
    if running:
        await asyncio.wait(running)
    return ran


async def run(n: int, workdir: Path) -> dict:
    emulator = azurite.start(workdir / "azurite", in_memory=True)
    try:
        async with ConnectorStub(latency=0.05) as stub:
            stub.limits()  # Teams: 7/1 s, 8/2 s, 60/30 s, 1800/h per conversation; 50/s app-wide
            team = activities.TEAM
            roster = stub.teams.add_team(team["id"], n)
            settings = Settings(storage_connection=emulator.connection_string, max_sends_per_second=APP_BOUND,
                                allowed_service_url_hosts=("127.0.0.1",))
            app = await clients.build(settings)
            done = asyncio.Event()
            player = asyncio.create_task(play_work_queue(app, done))
            try:
                started = time.monotonic()
                await app.adapter.run_turn(activities.teams_install(stub.url), "", app.bot)
                while (t := await app.teams.store.team(team["id"])) is None or t.roster_members < n:
                    await asyncio.sleep(0.2)
                roster_seconds = time.monotonic() - started

                stub.clear()
                enqueued = time.monotonic()
                document = {"id": "bench-team", "to": {"teamId": team["id"]}, "text": "Town hall at 3pm"}
                await app.fanout.start(validate(document), "bench")  # what queue_notify does
                while True:
                    status = await app.notifications.status("bench-team")
                    if status is not None and status.state.value == "done":
                        break
                    await asyncio.sleep(0.5)
                received = stub.received
                ok = [r for r in received if r.ok and r.route in (CREATE, "send", "reply")]
                last = max(r.received_monotonic for r in ok)
                first = min(r.received_monotonic for r in ok)
            finally:
                done.set()
                await player
                await app.close()
            creates = Counter(r.body["members"][0]["id"] for r in received if r.route == CREATE and r.ok)
            deliveries = Counter(r.conversation_id for r in stub.delivered())
            chat_of = {m["id"]: stub.teams.chat_of(m["id"]) for m in roster}
            lost = sum(1 for m in roster if deliveries.get(chat_of[m["id"]] or "", 0) == 0)
            duplicated = sum(1 for m in roster if creates.get(m["id"], 0) > 1 or deliveries.get(chat_of[m["id"]] or "", 0) > 1)
            seconds = last - enqueued
            return {
                "n": n, "roster_seconds": roster_seconds, "seconds": seconds, "requests": len(ok),
                "per_second": len(ok) / seconds, "steady_per_second": len(ok) / (last - first),
                "throttled": stub.throttled_count, "lost": lost, "duplicated": duplicated,
                "sent": status.counts, "creates": sum(creates.values()),
            }
    finally:
        emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="roster members")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.n, Path(tmp)))
    print(f"roster of {result['n']} read and stored in {result['roster_seconds']:.1f} s")
    print(f"teamId to N={result['n']}: {result['creates']} creates + sends = {result['requests']} requests in "
          f"{result['seconds']:.1f} s = {result['per_second']:.1f}/s = {result['per_second'] / APP_BOUND:.3f} "
          f"of the {APP_BOUND:.0f}/s bound (first to last request: {result['steady_per_second'] / APP_BOUND:.3f}); "
          f"429s: {result['throttled']}; lost: {result['lost']}; duplicated: {result['duplicated']}")


if __name__ == "__main__":
    main()
