"""`python -m devtools.funchost`: serve a Functions app until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

from .config import HostStartupError
from .host import FunctionHost
from .instances import SIBLING_FLAG, start_siblings, stop_siblings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.funchost", description="Run a Python (v1 model) Azure Functions app locally."
    )
    parser.add_argument(
        "--app-root",
        type=Path,
        default=Path.cwd(),
        help="folder with host.json and the function folders (default: cwd)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="HTTP port (default: Host.LocalHttpPort in local.settings.json, else 7071)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        metavar="K",
        help="run K hosts of the app on the same storage, each its own process, on "
        "ports PORT..PORT+K-1, as K scaled-out instances (default 1)",
    )
    parser.add_argument(SIBLING_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    return args


def configure_logging(verbose: bool) -> None:
    """One line per record on stderr, UTC timestamps, like the Functions host's console."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("[%(asctime)s.%(msecs)03dZ] %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # The storage SDK logs every HTTP request at INFO.
    logging.getLogger("azure").setLevel(logging.WARNING)


async def serve(
    app_root: Path, port: int | None, host: str, *, instances: int = 1, sibling: bool = False, verbose: bool = False
) -> int:
    functions_host = FunctionHost(app_root, host=host, run_timers=not sibling)
    try:
        await functions_host.start(port)
    except HostStartupError as exc:
        logging.getLogger("funchost").error("The host did not start:\n%s", exc)
        return 1
    siblings = start_siblings(app_root, functions_host.port, instances - 1, host, verbose)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        stop.set()
        # A second Ctrl-C interrupts the graceful wait.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop)
    await stop.wait()
    logging.getLogger("funchost").info("Stopping the host...")
    await asyncio.gather(functions_host.stop(), asyncio.to_thread(stop_siblings, siblings))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    app_root = args.app_root.resolve()
    # func start runs the worker in the app root; relative paths in functions resolve there.
    os.chdir(app_root)
    return asyncio.run(
        serve(app_root, args.port, args.host, instances=args.instances, sibling=args.sibling, verbose=args.verbose)
    )


if __name__ == "__main__":
    sys.exit(main())
