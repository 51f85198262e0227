"""Cold-start import cost of each function folder, against importing its dependencies alone.

`python -m bench.import_time [--runs 9] [--app-root .]`

A fresh interpreter imports each function folder (what the Functions worker does on cold start)
and then runs its first invocation (against Azurite and the Connector stub: a representative
input per function, `_first_call`), under `python -X importtime`, which reports each module's own
("self") import time, including the imports a first invocation makes (the app's parts load on
first use, clients.py). The ratio is all of it ÷ all but our own modules (the folder and
`proactive_bot.*`): what the function costs against its dependencies alone. Shown for the import
alone and through the first invocation; the harness (tests.*, devtools.*, bench.*) is left out.
Measured inside one process, so other load on the machine shifts both sides alike (wall-clock
comparisons across processes varied by ±25 % on this 2-core machine). Medians over --runs
interpreters; the layout issue's bound is 1.2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HARNESS = ("tests", "devtools", "bench")
INVOKED = "bench.import_time: invoked"  # the child writes this between the import and the call


def _notification() -> bytes:
    return json.dumps({"to": {"channelId": "msteams", "userId": "29:nobody"}, "text": "hi"}).encode()


async def _first_call(folder: str) -> None:
    """One invocation of `folder` through its function.json, as the host would make it."""
    from tests import activities
    from tests.functions import invoke

    if folder == "messages":
        await invoke.http("messages", activities.teams_message("hi", os.environ["BENCH_CHANNEL_URL"]))
    elif folder == "queue_notify":
        await invoke.queue("queue_notify", _notification())
    elif folder == "deliver_batch":
        await invoke.queue("deliver_batch", json.dumps({"kind": "page", "notification": "n-none"}).encode())
    elif folder == "notifications_api":
        await invoke.http("notifications_api", json.loads(_notification()))
    elif folder == "status_page":
        await invoke.http("status_page", method="GET", route_params={"path": ""})
    elif folder == "timer_notify":
        await invoke.timer("timer_notify")
    elif folder == "long_tasks":
        from proactive_bot.tasks import Task

        await invoke.queue("long_tasks", Task("report", "msteams", "a:nobody", "29:nobody").to_message().encode())
    else:
        raise SystemExit(f"no first call for {folder}: add one to _first_call")


def _child(folder: str) -> None:
    __import__(folder)
    from proactive_bot import clients

    print(INVOKED, file=sys.stderr, flush=True)

    async def run() -> None:
        try:
            await _first_call(folder)
        finally:
            await clients.close()

    asyncio.run(run())


def self_times(folder: str, root: Path, env: dict[str, str]) -> tuple[int, int, int, int]:
    """(everything, ours) self times in µs for the import, then the same through the first call."""
    report = subprocess.run(
        [sys.executable, "-X", "importtime", __file__, "--child", folder],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if report.returncode != 0:
        raise SystemExit(f"{folder}: the first call failed:\n{report.stderr[-3000:]}")
    total = ours = import_total = import_ours = 0
    for line in report.stderr.splitlines():
        if line == INVOKED:
            import_total, import_ours = total, ours
            continue
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        top = name.split(".")[0]
        if top in HARNESS:
            continue
        total += int(self_us)
        if top in ("proactive_bot", folder):
            ours += int(self_us)
    return import_total, import_ours, total, ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_time", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--app-root", type=Path, default=Path.cwd())
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    from devtools import azurite
    from devtools.connector_stub import ConnectorStub

    root = args.app_root.resolve()
    folders = sorted(p.parent.name for p in root.glob("*/function.json"))
    emulator = azurite.start(Path(tempfile.mkdtemp(prefix="import-time-")), in_memory=True)

    async def measure() -> list[float]:
        async with ConnectorStub() as channel:
            env = {
                **os.environ,
                "PYTHONPATH": str(root),
                "AzureWebJobsStorage": emulator.connection_string,
                "MicrosoftAppId": "",
                "BENCH_CHANNEL_URL": channel.url,
            }
            print(f"app root {root}; medians of {args.runs} cold starts each")
            print(
                f"{'function':<20} {'import (ms)':>12} {'ours':>7} {'ratio':>7}   "
                f"{'+ 1st call (ms)':>15} {'ours':>7} {'ratio':>7}"
            )
            ratios = []
            for folder in folders:
                runs = [await asyncio.to_thread(self_times, folder, root, env) for _ in range(args.runs)]
                row = [statistics.median(run[i] for run in runs) / 1000 for i in range(4)]
                at_import = statistics.median(t / (t - o) for t, o, _, _ in runs)
                through_call = statistics.median(t / (t - o) for _, _, t, o in runs)
                ratios.append(through_call)
                print(
                    f"{folder:<20} {row[0]:>12.1f} {row[1]:>7.1f} {at_import:>7.3f}   "
                    f"{row[2]:>15.1f} {row[3]:>7.1f} {through_call:>7.3f}",
                    flush=True,
                )
            return ratios

    try:
        ratios = asyncio.run(measure())
    finally:
        emulator.stop()
    print(f"ratio range through the first call {min(ratios):.3f}-{max(ratios):.3f} (bound 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
