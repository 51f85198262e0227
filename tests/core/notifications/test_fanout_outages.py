"""A broadcast through a channel outage and a token endpoint outage: everyone delivered once,
nobody failed or gone, and a down channel only probed (delivery/health.py, retries.OUTAGE).

The outages last a few seconds here instead of a minute (bench/channel_outage.py has the
minute); the assertions are on counts, what the stub saw and what the status says.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from devtools.openid_stub import OpenIdStub
from proactive_bot.app import status_body
from proactive_bot.delivery.limits import APP_CEILING, LimitsConfig
from proactive_bot.notifications import Notification
from tests.conftest import APP_ID, APP_PASSWORD
from tests.support.polling import eventually

OUTAGE_SECONDS = 3.0
PACE = APP_CEILING[0][0]  # requests per second per tenant, as Teams allows


async def broadcast_through(engine, users: list[dict], outage: Callable[[], Awaitable[None]]) -> dict:
    """Start a broadcast, run `outage` once a quarter has arrived, play the host to the end;
    returns the status."""
    notification = Notification(id="b-outage", to={"all": True}, text="Maintenance at 22:00")

    async def run() -> None:
        await engine.fanout.start(notification, source="test")
        await engine.drain(wait_for_delayed=5)

    broadcast = asyncio.create_task(run())
    await eventually(lambda: len(engine.stub.delivered()) >= len(users) // 4)
    await outage()
    await broadcast
    return status_body(await engine.records.status(notification.id))


def once_each(engine, users: list[dict]) -> bool:
    delivered = Counter(r.conversation_id for r in engine.stub.delivered())
    return delivered == Counter({u["conversation"]["id"]: 1 for u in users})


async def test_a_channel_answering_503_for_a_while_ends_with_everyone_delivered(engine_factory):
    engine = await engine_factory(limits=LimitsConfig(), retry_budget=30)
    engine.stub.latency = 0.02
    users = await engine.users(60)

    async def incident() -> None:
        engine.stub.outage(503)
        await asyncio.sleep(OUTAGE_SECONDS)
        engine.stub.outage(None)

    status = await broadcast_through(engine, users, incident)

    assert (status["counts"]["sent"], status["counts"]["failed"], status["counts"]["gone"]) == (60, 0, 0)
    assert once_each(engine, users)
    during = sum(1 for r in engine.stub.received if r.status == 503)
    # The breaker opens after a handful of failures; then a few probes a second, not the pace.
    assert 0 < during < PACE * OUTAGE_SECONDS / 4


async def test_a_channel_refusing_connections_for_a_while_ends_with_everyone_delivered(engine_factory):
    engine = await engine_factory(limits=LimitsConfig(), retry_budget=30)
    users = await engine.users(60)

    async def unreachable() -> None:
        await engine.stub.refuse()
        await asyncio.sleep(OUTAGE_SECONDS)
        await engine.stub.resume()

    status = await broadcast_through(engine, users, unreachable)

    assert (status["counts"]["sent"], status["counts"]["failed"], status["counts"]["gone"]) == (60, 0, 0)
    assert once_each(engine, users)
    assert engine.limiter.health.state("msteams:").value == "answering"


async def test_no_token_for_a_while_delays_sends_and_fails_nobody(engine_factory):
    """The token endpoint down, and the cached token expired: every send waits for a token,
    none is the recipient's failure (not failed, and never gone: the stored addresses stay)."""
    async with OpenIdStub() as identity:
        identity.token_lifetime = 30  # shorter than the refresh margin: fetched for every send
        engine = await engine_factory(
            limits=LimitsConfig(),
            retry_budget=30,
            app_id=APP_ID,
            app_password=APP_PASSWORD,
            token_endpoint=identity.token_endpoint,
            allowed_service_url_hosts=("default", "127.0.0.1"),
        )
        users = await engine.users(40)

        async def token_incident() -> None:
            identity.token_outage = 503
            await asyncio.sleep(OUTAGE_SECONDS)
            identity.token_outage = None

        status = await broadcast_through(engine, users, token_incident)

    assert (status["counts"]["sent"], status["counts"]["failed"], status["counts"]["gone"]) == (40, 0, 0)
    assert once_each(engine, users)
    assert len([r async for r in engine.references.all_active()]) == 40


async def test_a_cached_token_carries_sends_through_a_token_endpoint_outage(engine_factory):
    """The refresh is due five minutes before the token expires: while the endpoint is down the
    token in hand goes on being used, and nothing waits."""
    async with OpenIdStub() as identity:
        identity.token_lifetime = 301  # due for a refresh a second after each fetch
        engine = await engine_factory(
            limits=LimitsConfig(),
            retry_budget=30,
            app_id=APP_ID,
            app_password=APP_PASSWORD,
            token_endpoint=identity.token_endpoint,
            allowed_service_url_hosts=("default", "127.0.0.1"),
        )
        users = await engine.users(150)

        async def token_incident() -> None:
            identity.token_outage = 503
            await asyncio.sleep(OUTAGE_SECONDS)
            identity.token_outage = None

        status = await broadcast_through(engine, users, token_incident)
        refused = len(identity.token_requests)

    assert (status["counts"]["sent"], status["counts"]["failed"]) == (150, 0)
    assert once_each(engine, users)
    assert not any(r.status == 401 for r in engine.stub.received)
    assert refused > 1  # refreshes were tried (and failed) meanwhile
