"""The shared send budgets: several instances, one table on Azurite, a ceiling per scope.

Most tests here watch one scope (a Teams tenant); every scope is shared by the same rules
(tests/core/delivery/test_tenant_budgets.py: several at once)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterable, Sequence

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables.aio import TableClient

from devtools.azurite import ACCOUNT, ACCOUNT_KEY, free_port
from proactive_bot.delivery.budget import SharedBudget
from proactive_bot.delivery.budget_table import BudgetTable
from proactive_bot.delivery.limits import ChannelLimits, LimitsConfig
from proactive_bot.delivery.rate_limits import RateLimiter
from tests.net import silent_server

CEILING = 50
SCOPE = "msteams:tenant-a"  # a Teams tenant's budget
# Shorter than in production so the test does not wait long for a row to die; the rule
# self_expiry < dead_after is what matters.
DEAD_AFTER = 1.0
SELF_EXPIRY = 0.8


class Ledger:
    """Every change of every instance's rate in one scope, in the order the loop made them."""

    def __init__(self, scope: str = SCOPE) -> None:
        self.scope = scope
        self.rates: dict[str, int] = {}
        self.most = 0

    def watch(self, budget: SharedBudget) -> SharedBudget:
        use = budget._use

        def recorded(scope: str, rate: int) -> None:
            use(scope, rate)
            self.rates[budget.instance] = budget.rates.get(self.scope, 0)
            self.most = max(self.most, sum(self.rates.values()))

        budget._use = recorded  # type: ignore[method-assign]
        return budget


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make(table: TableClient, name: str, demand: float = 0.0, **options) -> SharedBudget:
    budget = SharedBudget(
        BudgetTable(table, "app"), CEILING, instance=name, dead_after=DEAD_AFTER, self_expiry=SELF_EXPIRY, **options
    )
    wants(budget, demand)
    return budget


def wants(budget: SharedBudget, demand: float) -> None:
    budget.demand = lambda: {SCOPE: demand}


async def test_a_lone_instance_gets_the_whole_ceiling(new_table):
    table = await new_table()
    alone = make(table, "alone", demand=200)

    await alone.round()

    assert alone.rate(SCOPE) == CEILING


async def test_the_sum_of_grants_never_exceeds_the_ceiling(new_table):
    """Three instances whose demands keep changing, heartbeating in every interleaving (one at
    a time, all at once, at random), with clocks hours apart: at no moment do the rates in use
    add up to more than the ceiling, and once demands hold still they add up to it."""
    table = await new_table()
    ledger = Ledger()
    skews = {"a": 0.0, "b": 7200.0, "c": -3600.0}
    budgets = [
        ledger.watch(make(table, name, monotonic=lambda skew=skew: time.monotonic() + skew))
        for name, skew in skews.items()
    ]
    rng = random.Random(13)
    for step in range(40):
        for budget in budgets:
            if rng.random() < 0.3:
                wants(budget, rng.choice([0, 3, 20, 200]))
        if step % 3 == 0:
            await asyncio.gather(*(b.round() for b in budgets))
        else:
            for budget in rng.sample(budgets, len(budgets)):
                await budget.round()
        assert sum(b.rate(SCOPE) for b in budgets) <= CEILING

    for budget in budgets:
        wants(budget, 200)
    for _ in range(4):
        await asyncio.gather(*(b.round() for b in budgets))

    assert ledger.most <= CEILING
    assert sorted(b.rate(SCOPE) for b in budgets) == [16, 17, 17]


def most_in_a_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max((sum(1 for t in stamps if start <= t < start + 1.0) for start in stamps), default=0)


async def flat_out(
    senders: Iterable[tuple[RateLimiter, str]], conversations: int, seconds: float, budgets: Sequence[SharedBudget]
) -> dict[str, list[float]]:
    """Each (limiter, tenant) sends to `conversations` conversations as fast as its limiter lets
    it, for `seconds`; then the budgets close. Returns the slot times per tenant."""
    stamps: dict[str, list[float]] = {}

    async def sender(limiter: RateLimiter, tenant: str, n: int) -> None:
        while True:
            permit = await limiter.acquire("msteams", f"{tenant}-{n}", tenant_id=tenant)
            stamps.setdefault(tenant, []).append(permit.stamp)

    tasks = [
        asyncio.create_task(sender(limiter, tenant, n)) for limiter, tenant in senders for n in range(conversations)
    ]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for budget in budgets:
        await budget.close()
    return stamps


async def test_limiters_sharing_a_budget_stay_within_the_ceiling_in_every_window(new_table):
    """Three rate limiters, each with its own budget, all as busy as they can be: the sends
    they let through, together, never exceed the app's ceiling in any one-second window."""
    table = await new_table()
    config = LimitsConfig(app=((CEILING, 1.0),), channels={"default": ChannelLimits(())})
    budgets = [SharedBudget(BudgetTable(table, "app"), CEILING, instance=name, period=0.2) for name in "abc"]
    limiters = [RateLimiter(config, budget=budget) for budget in budgets]
    [stamps] = (await flat_out([(limiter, "") for limiter in limiters], 20, 3.0, budgets)).values()

    assert most_in_a_second(stamps) <= CEILING
    assert len(stamps) > CEILING  # they did share it, not starve


async def test_a_dead_instance_share_returns_to_the_others(new_table):
    table = await new_table()
    ledger = Ledger()
    survivor, doomed = ledger.watch(make(table, "survivor", 200)), ledger.watch(make(table, "doomed", 200))
    for _ in range(5):  # instances that join together settle within a few heartbeats
        await asyncio.gather(survivor.round(), doomed.round())
    assert survivor.rate(SCOPE) == doomed.rate(SCOPE) == CEILING // 2

    # `doomed` stops heartbeating (partitioned from storage, or killed). Its row ages in storage
    # time until it is dead; meanwhile it looks at its rate before each send, as its limiter does.
    for _ in range(200):
        assert doomed.rate(SCOPE) in (0, CEILING // 2)
        await survivor.round()
        if survivor.rate(SCOPE) == CEILING:
            break
        await asyncio.sleep(0.05)

    assert survivor.rate(SCOPE) == CEILING
    # It could not have been sending meanwhile: with no heartbeat, its own grant expired first.
    assert doomed.rate(SCOPE) == 0
    assert ledger.most <= CEILING


async def test_a_storage_error_falls_back_to_the_safe_share_then_to_nothing(new_table, storage_connection):
    table = await new_table()
    clock = FakeClock(1000.0)
    busy = make(table, "busy", 200, monotonic=clock)
    light = make(table, "light", 0.5)  # a few sends now and then: it holds a slot
    for _ in range(5):  # instances that join together settle within a few heartbeats
        await asyncio.gather(busy.round(), light.round())
    assert (busy.rate(SCOPE), light.rate(SCOPE)) == (CEILING - 1, 1)

    # The budget table becomes unreachable for `busy` (here: its table is gone).
    async with TableClient.from_connection_string(storage_connection, "missing" + table.table_name) as gone:
        busy.table = BudgetTable(gone, "app")
        await busy.round()
        assert busy.rate(SCOPE) == CEILING // 2  # ceiling / live instances as last seen, at once
        clock.now += SELF_EXPIRY + 0.1
        await busy.round()
        assert busy.rate(SCOPE) == 0  # its row may be counted dead by now: it must not send on it

    busy.table = BudgetTable(table, "app")
    await busy.round()
    await light.round()
    await busy.round()
    assert (
        busy.rate(SCOPE) + light.rate(SCOPE) <= CEILING and busy.rate(SCOPE) > 0
    )  # back, asking only for what is free


@contextlib.asynccontextmanager
async def unreachable_table(how: str, table_name: str):
    """The budget's table behind storage that is down: nothing listens on its port ("refused"),
    or something accepts the connection and never answers ("silent": a latency spike)."""
    async with contextlib.AsyncExitStack() as stack:
        if how == "refused":
            endpoint = f"http://127.0.0.1:{free_port()}/{ACCOUNT}"
        else:
            endpoint = (await stack.enter_async_context(silent_server())).url + f"/{ACCOUNT}"
        credential = AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY)
        yield await stack.enter_async_context(TableClient(endpoint, table_name, credential=credential))


@pytest.mark.parametrize("how", ["refused", "silent"])
async def test_storage_down_falls_back_to_the_safe_share_then_to_nothing(new_table, how):
    """As above, with storage really unreachable: connections refused, or accepted and never
    answered (each call gives up after the budget's timeout)."""
    table = await new_table()
    clock = FakeClock(1000.0)
    busy = make(table, "busy", 200, monotonic=clock, timeout=0.5)
    light = make(table, "light", 0.5)  # a few sends now and then: it holds a slot
    for _ in range(5):
        await asyncio.gather(busy.round(), light.round())
    assert (busy.rate(SCOPE), light.rate(SCOPE)) == (CEILING - 1, 1)

    async with unreachable_table(how, table.table_name) as down:
        busy.table = BudgetTable(down, "app")
        await busy.round()
        assert busy.rate(SCOPE) == CEILING // 2
        clock.now += SELF_EXPIRY + 0.1
        await busy.round()
        assert busy.rate(SCOPE) == 0

    busy.table = BudgetTable(table, "app")
    await busy.round()
    await light.round()
    await busy.round()
    assert busy.rate(SCOPE) + light.rate(SCOPE) <= CEILING and busy.rate(SCOPE) > 0


async def test_waiters_with_no_rate_hurry_the_heartbeat_once_not_at_every_wake(new_table, storage_connection):
    """Sends waiting with no rate at all (storage failing fast, e.g. a 503 ServerBusy; here a
    missing table) each hurry the heartbeat as they look again. Many waiters arriving one after
    another must not turn the heartbeat into a loop against storage: about one round a period."""
    table = await new_table()
    async with TableClient.from_connection_string(storage_connection, "missing" + table.table_name) as gone:
        reads = 0
        budget_table = BudgetTable(gone, "app")
        read = budget_table.read

        async def counted() -> list:
            nonlocal reads
            reads += 1
            return await read()

        budget_table.read = counted  # type: ignore[method-assign]
        budget = SharedBudget(budget_table, CEILING, instance="starved", period=0.2)
        limiter = RateLimiter(
            LimitsConfig(app=((CEILING, 1.0),), channels={"default": ChannelLimits(())}), budget=budget
        )
        started = time.monotonic()
        waiters = []
        for n in range(64):
            waiters.append(asyncio.create_task(limiter.acquire("msteams", f"c{n}")))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.4)
        elapsed = time.monotonic() - started
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        await budget.close()

    assert budget.rate(SCOPE) == 0
    # A slow machine only makes fewer rounds; the hurry adds at most one per drop to nothing.
    assert reads <= elapsed / budget.period + 2


async def test_an_idle_instance_hands_its_share_back(new_table):
    table = await new_table()
    other = make(table, "other", 200)
    idle = make(table, "idle", 200)
    for _ in range(5):  # instances that join together settle within a few heartbeats
        await asyncio.gather(other.round(), idle.round())

    await idle.close()  # as when it goes idle or shuts down: its row is emptied
    await other.round()  # asks for the freed share
    await other.round()  # and takes it

    assert other.rate(SCOPE) == CEILING


# ---- a budget per Teams tenant, and the app-wide cap --------------------------------------------

CONTOSO, FABRIKAM, NORTHWIND = "msteams:contoso", "msteams:fabrikam", "msteams:northwind"


async def test_each_tenant_is_shared_on_its_own(new_table):
    """One instance busy in two tenants, another in one of them: the shared tenant is split
    between them, the other one is all the first's. Other channels have a budget each too."""
    table = await new_table()
    both, one = make(table, "both"), make(table, "one")
    both.demand = lambda: {CONTOSO: 200, FABRIKAM: 200, "slack": 3}
    one.demand = lambda: {CONTOSO: 200}
    for _ in range(5):
        await asyncio.gather(both.round(), one.round())

    assert both.rates == {CONTOSO: 25, FABRIKAM: CEILING, "slack": CEILING}
    assert one.rates == {CONTOSO: 25}


async def test_limiters_sharing_tenant_budgets_stay_within_each_tenants_ceiling(new_table):
    """Two instances, each with its own limiter and budget on one table, as busy as they can be
    in three tenants (one of them only in the second instance): in no one-second window does
    any tenant see more than its ceiling, and together they send more than one ceiling."""
    table = await new_table()
    config = LimitsConfig(app=((CEILING, 1.0),), channels={"default": ChannelLimits(())})
    budgets = [SharedBudget(BudgetTable(table, "app"), CEILING, instance=name, period=0.2) for name in "ab"]
    limiters = [RateLimiter(config, budget=budget) for budget in budgets]
    tenants = {limiters[0]: ["contoso", "fabrikam"], limiters[1]: ["contoso", "fabrikam", "northwind"]}
    stamps = await flat_out([(limiter, t) for limiter, names in tenants.items() for t in names], 10, 3.0, budgets)

    assert set(stamps) == {"contoso", "fabrikam", "northwind"}
    for tenant, times in stamps.items():
        assert most_in_a_second(times) <= CEILING, tenant
    assert most_in_a_second([t for times in stamps.values() for t in times]) > CEILING  # more than one ceiling


async def test_the_app_wide_cap_holds_across_tenants_and_instances(new_table):
    table = await new_table()
    cap = 30
    config = LimitsConfig(app=((CEILING, 1.0),), channels={"default": ChannelLimits(())}, app_wide=((cap, 1.0),))
    budgets = [
        SharedBudget(BudgetTable(table, "app"), CEILING, app_ceiling=cap, instance=name, period=0.2) for name in "ab"
    ]
    limiters = [RateLimiter(config, budget=budget) for budget in budgets]
    per_tenant = await flat_out(
        [(limiter, t) for limiter in limiters for t in ("contoso", "fabrikam")], 8, 2.5, budgets
    )
    stamps = [t for times in per_tenant.values() for t in times]

    assert most_in_a_second(stamps) <= cap
    assert len(stamps) > cap  # they did send


async def test_a_lost_row_is_written_again_asking_only_for_what_is_free(new_table):
    """Someone deletes an instance's row (by hand, or a sibling that took it for dead): the
    others may hand its shares out at once, so its next round asks only for what is free."""
    table = await new_table()
    ledgers = {scope: Ledger(scope) for scope in (CONTOSO, FABRIKAM)}
    lost, other = make(table, "lost"), make(table, "other")
    for budget in (lost, other):
        for ledger in ledgers.values():
            ledger.watch(budget)
    lost.demand = lambda: {CONTOSO: 200, FABRIKAM: 200}
    other.demand = lambda: {CONTOSO: 200}
    for _ in range(5):
        await asyncio.gather(lost.round(), other.round())
    assert lost.rates == {CONTOSO: 25, FABRIKAM: CEILING}

    await table.delete_entity(BudgetTable(table, "app")._partition, "lost")
    other.demand = lambda: {CONTOSO: 200, FABRIKAM: 200}
    for _ in range(3):  # `lost` is slow to heartbeat: `other` alone sees its row gone
        await other.round()
    assert other.rates == {CONTOSO: 25}  # the vanished row's grants still count
    for _ in range(4):
        await asyncio.gather(lost.round(), other.round())

    for scope, ledger in ledgers.items():
        assert ledger.most <= CEILING, scope
    assert lost.rates == other.rates == {CONTOSO: 25, FABRIKAM: 25}


async def test_storage_failing_falls_back_in_every_tenant(new_table, storage_connection):
    table = await new_table()
    clock = FakeClock(1000.0)
    busy = make(table, "busy", monotonic=clock)
    light = make(table, "light")
    busy.demand = lambda: {CONTOSO: 200, FABRIKAM: 200}
    light.demand = lambda: {CONTOSO: 0.5}
    for _ in range(5):
        await asyncio.gather(busy.round(), light.round())
    assert busy.rates == {CONTOSO: CEILING - 1, FABRIKAM: CEILING}

    async with TableClient.from_connection_string(storage_connection, "missing" + table.table_name) as gone:
        busy.table = BudgetTable(gone, "app")
        await busy.round()
        # Each tenant: its ceiling / the instances last seen in it.
        assert busy.rates == {CONTOSO: CEILING // 2, FABRIKAM: CEILING}
        clock.now += SELF_EXPIRY + 0.1
        assert busy.rate(CONTOSO) == busy.rate(FABRIKAM) == 0  # then nothing anywhere

    busy.table = BudgetTable(table, "app")
    for _ in range(3):
        await busy.round()
        await light.round()
    assert busy.rate(CONTOSO) + light.rate(CONTOSO) <= CEILING and busy.rate(FABRIKAM) == CEILING


async def test_a_row_that_cannot_be_read_fails_the_round_safely(new_table):
    """Its grants are unknown: counting them as nothing could overrun the ceiling."""
    table = await new_table()
    busy = make(table, "busy", 200)
    await busy.round()
    assert busy.rate(SCOPE) == CEILING
    partition = BudgetTable(table, "app")._partition
    await table.upsert_entity({"PartitionKey": partition, "RowKey": "broken", "scopes": "{not json"})

    await busy.round()

    assert busy.rate(SCOPE) == CEILING  # the safe share as last seen: it was alone
    assert busy._view is None  # and it rejoins by reading first


async def test_an_idle_tenant_drops_out_of_the_row(new_table):
    table = await new_table()
    clock = FakeClock(1000.0)
    budget = make(table, "busy", monotonic=clock, scope_idle=5.0)
    budget.demand = lambda: {CONTOSO: 200, FABRIKAM: 200}
    await budget.round()
    budget.demand = lambda: {CONTOSO: 200, FABRIKAM: 0}

    clock.now += 4.0
    await budget.round()
    assert set(budget.rates) == {CONTOSO, FABRIKAM}  # idle for a moment: still listed
    clock.now += 2.0
    await budget.round()

    assert set(budget.rates) == {CONTOSO}
    [row] = await BudgetTable(table, "app").read()
    assert set(row.scopes) == {CONTOSO}


async def test_a_row_lists_at_most_max_scopes_and_the_rest_wait_their_turn(new_table):
    """The row's JSON must stay under a Table property's 64 KiB: past `max_scopes`, a tenant
    gets no rate in this instance until another drops out."""
    table = await new_table()
    clock = FakeClock(1000.0)
    budget = make(table, "busy", monotonic=clock, scope_idle=5.0, max_scopes=2)
    budget.demand = lambda: {CONTOSO: 200, FABRIKAM: 100}
    await budget.round()
    budget.demand = lambda: {CONTOSO: 200, FABRIKAM: 0, NORTHWIND: 300}
    await budget.round()
    assert set(budget.rates) == {CONTOSO, FABRIKAM}  # listed first, kept: northwind waits

    clock.now += 6.0  # fabrikam has been idle long enough
    await budget.round()

    assert set(budget.rates) == {CONTOSO, NORTHWIND}


async def test_while_a_share_moves_the_heartbeats_come_sooner(new_table):
    """A share handed from one instance to another takes two rounds (the giver writes its lower
    grant, then the taker reads it): while it moves, both say so, and their next rounds come
    after SETTLE_PERIOD instead of a whole period."""
    table = await new_table()
    busy, newcomer = make(table, "busy", 200), make(table, "newcomer")
    await busy.round()
    assert busy.rate(SCOPE) == CEILING and not busy.settling

    wants(newcomer, 200)
    await newcomer.round()
    assert newcomer.rate(SCOPE) == 0 and newcomer.settling  # wants room the busy one still holds
    await busy.round()
    assert busy.settling  # its row still grants it the whole ceiling: half is someone else's now
    await busy.round()  # writes half
    await newcomer.round()  # asks for half (it asks only for what its last view left free)
    assert newcomer.settling
    await newcomer.round()  # and takes it

    assert busy.rate(SCOPE) == newcomer.rate(SCOPE) == CEILING // 2
    assert not busy.settling and not newcomer.settling
