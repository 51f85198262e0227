"""Tenants: does each Teams tenant get its own 50/s, and do one tenant's alerts pass another's broadcast?

Run by hand (not a test):

    .venv/bin/python -m bench.tenants [--tenants 4] [--per-tenant 1000] [--hosts 2] [--big 5000] [--every 2]

A fresh in-memory Azurite, the Connector stub in its own process enforcing Teams' limits (50
requests/s per app per tenant, 7/1 s, 8/2 s ... per conversation; 429 + Retry-After past them)
with 50 ms latency, K local Functions hosts (`python -m devtools.funchost`) on that storage, and
T tenants of `--per-tenant` Teams users each (tenant ids `tenant-t0` ...).

1. One `{"to": {"all": true}}` broadcast to all T x per-tenant users: the pace (first to last
   delivery, and from enqueue) against T x 50/s, the per-tenant ceiling summed (goal >= 0.9);
   per tenant, 429s as a share of its requests (goal <= 0.5 %); lost and duplicated (goal 0).
2. One tenant's `--big`-recipient broadcast (`tenant-big`) and, every `--every` seconds while it
   lasts, an urgent 1:1 notification to a user of `tenant-t1` through the HTTP front door: the
   alerts' p50 and p99 from POST to delivery (goal p99 <= 1.5 s, p50 <= 0.5 s).

Nothing is asserted. The machine's 2 cores are shared by Azurite, the stub and every host.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.alerts import BROADCAST_TEXT, GOAL_PACE, Probes, arrivals, post_alert, waits_line
from bench.broadcast import APP_BOUND, Rig, enqueue, received, reference, rig, seed, stub_reset, stub_stats
from devtools import azurite

GOAL_THROTTLED = 0.5  # per cent of a tenant's requests


def tenant_of(prefix: str) -> str:
    """bench.broadcast.reference's tenant for users seeded with `prefix`."""
    return f"tenant-{prefix}"


async def until_delivered(run: Rig, n: int, stall: float = 30.0) -> None:
    """Until the stub has `n` deliveries, or none came for `stall` seconds."""
    last, changed = -1, time.monotonic()
    while True:
        count = (await stub_stats(run.session, run.stub_url))["delivered"]
        if count >= n:
            return
        if count != last:
            last, changed = count, time.monotonic()
        elif time.monotonic() - changed > stall:
            print(f"  stalled at {count} of {n}", flush=True)
            return
        await asyncio.sleep(0.1)


async def all_tenants(run: Rig, tenants: int, per_tenant: int, hosts: int) -> str:
    await stub_reset(run.session, run.stub_url)
    n = tenants * per_tenant
    enqueued_at = await enqueue(run, {"id": "everyone", "to": {"all": True}, "text": BROADCAST_TEXT})
    await until_delivered(run, n)
    await asyncio.sleep(1)  # anything that would come twice has time to arrive
    records = await received(run.session, run.stub_url)
    async with run.session.get(run.stub_url + "_stub/tenants") as response:
        per_tenant_stats = await response.json()
    delivered = [r for r in records if 200 <= r["status"] < 300]
    stamps = sorted(r["received_wall"] for r in delivered)
    bound = tenants * APP_BOUND
    per_conversation = Counter(r["conversation_id"] for r in delivered)
    expected = {
        reference(i, run.stub_url, f"t{t}")["conversation"]["id"] for t in range(tenants) for i in range(per_tenant)
    }
    lines = [
        f"T={tenants} x {per_tenant} users, K={hosts}, broadcast to all: {len(stamps)} delivered, "
        + (
            f"pace {(len(stamps) - 1) / (stamps[-1] - stamps[0]) / bound:.3f} of {bound:.0f}/s steady, "
            f"{len(stamps) / (stamps[-1] - enqueued_at) / bound:.3f} from enqueue (goal >= {GOAL_PACE}); "
            if len(stamps) > 1
            else ""
        )
        + f"lost {len(expected - set(per_conversation))}, duplicated {sum(c - 1 for c in per_conversation.values() if c > 1)}"
    ]
    for t in range(tenants):
        counts = per_tenant_stats.get(tenant_of(f"t{t}"), {"received": 0, "throttled": 0, "delivered": 0})
        share = 100 * counts["throttled"] / max(1, counts["received"])
        mine = sorted(r["received_wall"] for r in delivered if r.get("tenant_id") == tenant_of(f"t{t}"))
        pace = (len(mine) - 1) / (mine[-1] - mine[0]) / APP_BOUND if len(mine) > 1 else 0.0
        lines.append(
            f"  {tenant_of(f't{t}')}: {counts['delivered']} delivered, pace {pace:.3f} of its 50/s, "
            f"429s {counts['throttled']} of {counts['received']} requests ({share:.2f} %, goal <= {GOAL_THROTTLED} %)"
        )
    lines.append(timeline(delivered, enqueued_at, [tenant_of(f"t{t}") for t in range(tenants)]))
    return "\n".join(lines)


def timeline(delivered: list[dict], since: float, tenants: list[str]) -> str:
    """Deliveries per second from enqueue, per tenant: where a pace below the bound was lost."""
    seconds = int(max(r["received_wall"] for r in delivered) - since) + 1
    rows = []
    for tenant in tenants:
        per_second = Counter(int(r["received_wall"] - since) for r in delivered if r.get("tenant_id") == tenant)
        rows.append(f"  {tenant} per s: " + " ".join(str(per_second.get(s, 0)) for s in range(seconds)))
    return "\n".join(rows)


async def big_beside_alerts(run: Rig, big: int, per_tenant: int, every: float) -> str:
    await stub_reset(run.session, run.stub_url)
    probes = Probes()
    enqueued_at = await enqueue(
        run, {"id": "big", "to": {"all": True, "tenantId": tenant_of("big")}, "text": BROADCAST_TEXT}
    )
    pending: set[asyncio.Task[None]] = set()
    k, started = 0, time.monotonic()
    while time.monotonic() - started < max(60.0, 4 * big / APP_BOUND):
        if (await stub_stats(run.session, run.stub_url))["delivered"] >= big + len(probes.alerts):
            break
        conversation = reference((k * 7919) % per_tenant, run.stub_url, "t1")["conversation"]["id"]
        alert = post_alert(run.session, run.host_urls[k % len(run.host_urls)], probes, conversation, f"ALERT {k}")
        pending.add(asyncio.create_task(alert))
        k += 1
        await asyncio.sleep(every)
    await asyncio.gather(*pending, return_exceptions=True)
    await asyncio.sleep(5)  # the last alerts arrive
    arrived, broadcast = arrivals(await received(run.session, run.stub_url), probes)
    head = f"{tenant_of('big')}'s {big}-recipient broadcast: {len(broadcast)} delivered"
    if len(broadcast) > 1:
        head += (
            f", pace {(len(broadcast) - 1) / (broadcast[-1] - broadcast[0]) / APP_BOUND:.3f} of its 50/s steady, "
            f"{len(broadcast) / (broadcast[-1] - enqueued_at) / APP_BOUND:.3f} from enqueue"
        )
    lines = [head, waits_line(f"{tenant_of('t1')}'s urgent 1:1 notifications beside it", probes.alerts, arrived)]
    if probes.priority_refused:
        lines.append('  (the front door refused "priority": the alerts were posted without it)')
    if probes.failed_posts:
        lines.append(f"  {probes.failed_posts} front-door POSTs failed")
    return "\n".join(lines)


async def main(tenants: int, per_tenant: int, hosts: int, big: int, every: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        emulator = azurite.start(workdir / "azurite", in_memory=True)
        try:
            async with rig(emulator.connection_string, 0, workdir, teams_limits=True, hosts=hosts) as run:
                for t in range(tenants):
                    await seed(run.connection, run.references_table, per_tenant, run.stub_url, prefix=f"t{t}")
                print(await all_tenants(run, tenants, per_tenant, hosts), flush=True)
                if big:
                    await seed(run.connection, run.references_table, big, run.stub_url, prefix="big")
                    print(await big_beside_alerts(run, big, per_tenant, every), flush=True)
        finally:
            emulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=4, help="T")
    parser.add_argument("--per-tenant", type=int, default=1000, help="Teams users per tenant")
    parser.add_argument("--hosts", type=int, default=2, help="K")
    parser.add_argument("--big", type=int, default=5000, help="the one tenant's broadcast (0: skip part 2)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between alerts in part 2")
    args = parser.parse_args()
    asyncio.run(main(args.tenants, args.per_tenant, args.hosts, args.big, args.every))
