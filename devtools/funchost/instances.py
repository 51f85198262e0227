"""More instances of one app: sibling hosts, each its own process, on the same storage.

Azure scales a queue-triggered app out to many instances, each a process of its own that polls
the same queues; this is that, locally: `python -m devtools.funchost --instances 3` or
`make run RUN_ARGS="--hosts 3"`. The siblings listen on the ports after the first host's and
run no timers (in Azure, the timer's singleton lock lets one instance run each occurrence).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

SIBLING_FLAG = "--sibling"  # what a sibling is started with: serve, run no timers, spawn nothing


def start_siblings(
    app_root: Path, first_port: int, count: int, host: str = "127.0.0.1", verbose: bool = False
) -> list[subprocess.Popen[bytes]]:
    """Start `count` more hosts of the app at `app_root`, on ports first_port+1, +2, ..."""
    siblings = []
    for n in range(1, count + 1):
        args = [
            sys.executable,
            "-m",
            "devtools.funchost",
            "--app-root",
            str(app_root),
            "--port",
            str(first_port + n),
            "--host",
            host,
            SIBLING_FLAG,
        ]
        if verbose:
            args.append("--verbose")
        # Inherits this process's environment (the app's settings included) and its terminal.
        siblings.append(subprocess.Popen(args, cwd=Path(__file__).resolve().parents[2]))
    return siblings


def stop_siblings(siblings: list[subprocess.Popen[bytes]], timeout: float = 35.0) -> None:
    """SIGTERM each (they drain their invocations, as the host does on shutdown), then wait."""
    for process in siblings:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    for process in siblings:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
