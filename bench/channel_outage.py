"""What a channel outage costs a broadcast: a minute of 503s, and a minute without bot tokens.

Run by hand (not a test):  .venv/bin/python -m bench.channel_outage [--n 1500] [--outage 60]

As bench.broadcast: Azurite (in memory, fresh), the local Functions host in its own process, the
Connector stub in another with 50 ms latency and Teams' limits (50/s per tenant), our limiter on.
N users, one `{"to": {"all": true}}` broadcast. When a quarter has arrived:

1. channel: the stub answers 503 to everything for `--outage` seconds (`POST /_stub/outage`);
2. token: the bot's token endpoint (devtools/openid_stub.py, in this process) answers 503 for
   as long, with tokens living 30 s (always past the refresh margin: no cached token to go on,
   the worst case; a real token lives an hour and carries a broadcast through such an outage).

Printed per run: failed, gone and sent as the status says them, delivered and duplicated at the
stub, requests the stub answered during the outage (against the 50/s × outage the pace would
have sent), and the time from the end of the outage to the first second at >= 90 % of the pace.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.broadcast import APP_BOUND, HOST_KEY, Rig, enqueue, received, rig, stub_stats, until_count
from devtools import azurite
from devtools.openid_stub import OpenIdStub


async def stub_outage(run: Rig, status: int | None) -> None:
    async with run.session.post(run.stub_url + "_stub/outage", json={"status": status}) as resp:
        resp.raise_for_status()


def recovery_seconds(times: list[float], back: float) -> float | None:
    """From `back` to the start of the first 1 s window holding >= 90 % of the pace."""
    after = sorted(t for t in times if t >= back)
    wanted = int(0.9 * APP_BOUND)
    for i in range(len(after) - wanted + 1):
        if after[i + wanted - 1] - after[i] < 1.0:
            return after[i] - back
    return None


async def one_run(connection: str, n: int, outage: float, workdir: Path, kind: str) -> dict:
    name = f"out{kind[:3]}{int(time.time() * 1000) % 10**8}"
    async with OpenIdStub() as identity:
        identity.token_lifetime = 30
        settings = (
            {
                "MicrosoftAppId": "b0c6a3e2-1d53-4d8b-9d1e-5c8f7e9a0b11",
                "MicrosoftAppPassword": "bench-secret",
                "MicrosoftAppTenantId": "5f1b8a9e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",  # SingleTenant (the default) needs one
                "BotTokenEndpoint": identity.token_endpoint,
                "AllowedServiceUrlHosts": "default,127.0.0.1",
            }
            if kind == "token"
            else {}
        )
        async with rig(connection, n, workdir, teams_limits=True, name=name, settings=settings) as run:
            session, stub_url, host_url = run.session, run.stub_url, run.host_urls[0]
            await enqueue(run, {"id": f"bench-{kind}", "to": {"all": True}, "text": "Through an outage"})
            await until_count(session, stub_url, "delivered", n // 4)
            began = time.monotonic()  # the stub's clock: CLOCK_MONOTONIC, the same in every process
            if kind == "channel":
                await stub_outage(run, 503)
            else:
                identity.token_outage = 503
            await asyncio.sleep(outage)
            if kind == "channel":
                await stub_outage(run, None)
            else:
                identity.token_outage = None
            back = time.monotonic()
            await until_count(session, stub_url, "delivered", n, stall=outage + 60)
            await asyncio.sleep(3)  # the last outcomes written, anything doubled arrived
            records = await received(session, stub_url)
            stats = await stub_stats(session, stub_url)
            async with session.get(
                f"{host_url}/api/notifications/bench-{kind}", headers={"x-functions-key": HOST_KEY}
            ) as resp:
                # The status API's answer, or (not JSON: an error) no counts.
                status = await resp.json() if resp.status == 200 else {"error": resp.status}
            token_requests = len(identity.token_requests)
    ok = [r for r in records if 200 <= r["status"] < 300 and r["route"] in ("send", "reply")]
    per_conversation = Counter(r["conversation_id"] for r in ok)
    during = [r for r in records if began <= r["received_monotonic"] < back]
    return {
        "kind": kind,
        "n": n,
        "counts": status.get("counts", {}),
        "delivered": len(per_conversation),
        "duplicated": sum(c - 1 for c in per_conversation.values()),
        "requests_during": len(during),
        "throttled": stats["throttled"],
        "recover": recovery_seconds([r["received_monotonic"] for r in ok], back),
        "token_requests": token_requests,
    }


def report(run: dict, outage: float) -> str:
    counts = run["counts"]
    recover = "never" if run["recover"] is None else f"{run['recover']:.1f} s"
    line = (
        f"{run['kind']} outage {outage:.0f} s, N={run['n']}: failed {counts.get('failed')}, gone {counts.get('gone')}, "
        f"sent {counts.get('sent')}, delivered {run['delivered']}, duplicated {run['duplicated']}; "
        f"requests during the outage {run['requests_during']} (the pace: {APP_BOUND * outage:.0f}); "
        f"full pace {recover} after; 429s {run['throttled']}"
    )
    return line + (f"; token requests {run['token_requests']}" if run["kind"] == "token" else "")


async def main(n: int, outage: float, kinds: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            emulator = azurite.start(workdir / f"azurite-{kind}", in_memory=True)
            try:
                print(report(await one_run(emulator.connection_string, n, outage, workdir, kind), outage), flush=True)
            finally:
                emulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500, help="recipients")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds")
    parser.add_argument("--kinds", default="channel,token", help="channel, token or both")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.outage, args.kinds.split(",")))
