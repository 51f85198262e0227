"""`python -m devtools.connector_stub`: the console channel of `make run`, or a stub for
benchmarks in another process (`--quiet`, read through the `/_stub/...` control routes)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from .server import ConnectorStub


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.connector_stub",
        description="Local Bot Connector channel: prints what the bot sends.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3978)
    parser.add_argument("--base-path", default="/", help="serviceUrl path, e.g. /amer/")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--teams-limits",
        action="store_true",
        help="emulate Teams rate limits (per conversation, and 50 requests/s per tenant)",
    )
    parser.add_argument(
        "--app-wide-limit",
        action="store_true",
        help="with --teams-limits: one 50/s window for all tenants, not one per tenant",
    )
    parser.add_argument("--expect-bearer", metavar="TOKEN", help="require this bearer token")
    parser.add_argument("--quiet", action="store_true", help="print nothing per request")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    stub = ConnectorStub(
        latency=args.latency,
        base_path=args.base_path,
        console=None if args.quiet else sys.stdout,
    )
    if args.teams_limits:
        stub.limits(per_tenant=not args.app_wide_limit)
    stub.expect_bearer(args.expect_bearer)
    url = await stub.start(args.host, args.port)
    print(f"connector stub listening; serviceUrl={url}", flush=True)
    stopping = asyncio.Event()
    # `make run` stops its children with SIGTERM; leave through stop() rather than die mid-write.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await stopping.wait()
    finally:
        await stub.stop()


def main(argv: Sequence[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
