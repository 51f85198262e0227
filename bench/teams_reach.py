"""A `teamId` notification to a roster of N members the bot has never talked to, Teams limits on.

Run by hand (not a test):  .venv/bin/python -m bench.teams_reach [--n 5000]

Real Azurite (in memory), the app's own clients (`clients.build`, rate limiter on at 50/s) in
this process, and the Connector stub in its own process with Teams' limits (per-conversation
windows, 50/s app-wide counting creates and sends, the paged members limits) and 50 ms
latency. The work queue is played by 16 concurrent handlers, as the Functions host's queue
trigger (batchSize 16) would.

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
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench.broadcast import APP_BOUND, LATENCY, received, start_process, stop_process, stub_stats, wait_listening
from devtools import azurite
from devtools.azurite import free_port
from devtools.connector_stub import CREATE, ConnectorStub
from devtools.connector_stub.teams import teams_member
from proactive_bot import clients, work
from proactive_bot.notifications.contract import validate
from proactive_bot.settings import Settings
from tests import activities

HANDLERS = 16


failures: list[str] = []  # failed invocations (retried, as the host would)


async def play_work_queue(app: clients.Clients, until: asyncio.Event) -> int:
    """Run work messages with up to HANDLERS at once until `until` is set."""
    queue = app.queues.get_queue_client(app.settings.work_queue)
    running: set[asyncio.Task[None]] = set()
    ran = 0

    async def one(message) -> None:
        try:
            await app.work_handlers.run(work.parse(json.loads(message.content)))
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
            # The host makes a failed message visible again at once (visibilityTimeout 0).
            await queue.update_message(message, visibility_timeout=0)
            return
        await queue.delete_message(message)

    while not until.is_set():
        room = HANDLERS - len(running)
        messages = (
            [m async for m in queue.receive_messages(max_messages=min(32, room), visibility_timeout=300)]
            if room
            else []
        )
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


async def serve_stub(port: int, n: int) -> None:
    """The channel, in its own process: Teams limits, 50 ms latency, a team of n members."""
    stub = ConnectorStub(latency=LATENCY)
    stub.limits()  # Teams: 7/1 s, 8/2 s, 60/30 s, 1800/h per conversation; 50/s app-wide
    stub.teams.add_team(activities.TEAM["id"], n)
    await stub.start(port=port)
    await asyncio.Event().wait()


async def run(n: int, workdir: Path) -> dict:
    emulator = azurite.start(workdir / "azurite", in_memory=True)
    port = free_port()
    stub_url = f"http://127.0.0.1:{port}/"
    stub = start_process(
        [sys.executable, "-m", "bench.teams_reach", "--serve-stub", str(port), "--n", str(n)],
        dict(os.environ),
        workdir / "stub.log",
    )
    try:
        async with aiohttp.ClientSession() as session:
            await wait_listening(session, stub_url + "_stub/stats")
            team = activities.TEAM
            roster = [teams_member(i, team=team["id"]) for i in range(n)]
            settings = Settings(storage_connection=emulator.connection_string, max_sends_per_second=APP_BOUND)
            app = await clients.build(settings)
            done = asyncio.Event()
            player = asyncio.create_task(play_work_queue(app, done))
            try:
                started = time.monotonic()
                await app.adapter.run_turn(activities.teams_install(stub_url), "", app.bot)
                while (t := await app.teams.store.team(team["id"])) is None or t.roster_members < n:
                    await asyncio.sleep(0.2)
                roster_seconds = time.monotonic() - started

                before = len(await received(session, stub_url))
                enqueued_wall = time.time()
                document = {"id": "bench-team", "to": {"teamId": team["id"]}, "text": "Town hall at 3pm"}
                await app.fanout.start(validate(document), "bench")  # what queue_notify does
                # Watch the channel's count (cheap); the record's status reads every recipient row,
                # which polled often would load storage more than the delivery does.
                while (await stub_stats(session, stub_url))["delivered"] < n:
                    await asyncio.sleep(0.5)
                while not (status := await app.notifications.status("bench-team")) or status.state.value != "done":
                    await asyncio.sleep(2)
            finally:
                done.set()
                await player
                await app.close()
            records = (await received(session, stub_url))[before:]
    finally:
        stop_process(stub)
        emulator.stop()
    ok = [r for r in records if 200 <= r["status"] < 300 and r["route"] in (CREATE, "send", "reply")]
    first, last = min(r["received_wall"] for r in ok), max(r["received_wall"] for r in ok)
    creates = Counter(r["body"]["members"][0]["id"] for r in ok if r["route"] == CREATE)
    chat_of = {r["body"]["members"][0]["id"]: r["response_id"] for r in ok if r["route"] == CREATE}
    deliveries = Counter(r["conversation_id"] for r in ok if r["route"] != CREATE)
    lost = sum(1 for m in roster if deliveries.get(chat_of.get(m["id"], ""), 0) == 0)
    duplicated = sum(
        1 for m in roster if creates.get(m["id"], 0) > 1 or deliveries.get(chat_of.get(m["id"], ""), 0) > 1
    )
    seconds = last - enqueued_wall
    return {
        "n": n,
        "roster_seconds": roster_seconds,
        "seconds": seconds,
        "requests": len(ok),
        "per_second": len(ok) / seconds,
        "steady_per_second": len(ok) / (last - first),
        "throttled": sum(1 for r in records if r["status"] == 429),
        "lost": lost,
        "duplicated": duplicated,
        "creates": sum(creates.values()),
        "failed_invocations": len(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="roster members")
    parser.add_argument("--serve-stub", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub:
        asyncio.run(serve_stub(args.serve_stub, args.n))
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.n, Path(tmp)))
    print(f"roster of {result['n']} read and stored in {result['roster_seconds']:.1f} s")
    print(
        f"teamId to N={result['n']}: {result['creates']} creates + sends = {result['requests']} requests in "
        f"{result['seconds']:.1f} s = {result['per_second']:.1f}/s = {result['per_second'] / APP_BOUND:.3f} "
        f"of the {APP_BOUND:.0f}/s bound (first to last request: {result['steady_per_second'] / APP_BOUND:.3f}); "
        f"429s: {result['throttled']}; lost: {result['lost']}; duplicated: {result['duplicated']}; "
        f"failed invocations (retried): {result['failed_invocations']}"
    )


if __name__ == "__main__":
    main()
