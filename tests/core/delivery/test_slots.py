"""The bound on requests in flight keeps room for urgent calls however busy bulk is, and one
scope's bulk calls cannot keep another scope's from starting."""

from __future__ import annotations

import asyncio
import contextlib

from proactive_bot.delivery.lanes import Lane
from proactive_bot.delivery.slots import Slots


async def holding(
    slots: Slots, lane: Lane, entered: asyncio.Event, release: asyncio.Event, scope: str = "msteams|t1"
) -> None:
    async with slots.hold(lane, scope):
        entered.set()
        await release.wait()


async def test_bulk_calls_cannot_take_the_slots_kept_for_urgent_ones():
    slots = Slots(4)  # one kept back
    release = asyncio.Event()
    bulk = [asyncio.Event() for _ in range(4)]
    tasks = [asyncio.create_task(holding(slots, Lane.BULK, entered, release)) for entered in bulk]
    await asyncio.sleep(0.05)
    assert [entered.is_set() for entered in bulk] == [True, True, True, False]  # the fourth waits

    urgent = asyncio.Event()
    tasks.append(asyncio.create_task(holding(slots, Lane.URGENT, urgent, release)))
    await asyncio.wait_for(urgent.wait(), 1)  # gets in beside the broadcast

    release.set()
    await asyncio.gather(*tasks)
    assert all(entered.is_set() for entered in bulk)


async def test_urgent_calls_may_take_every_slot():
    slots = Slots(3)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(3):
            await stack.enter_async_context(slots.hold(Lane.URGENT))
        assert slots.locked()


async def test_a_tenant_whose_bulk_calls_hold_every_slot_does_not_keep_another_tenants_from_starting():
    """Slots are held while calls wait for their scope's pace: one pool for all would let the
    batch that started first (one tenant's) hold them all while the other tenants' lines stood empty."""
    slots = Slots(4)  # three for bulk, in each scope
    release = asyncio.Event()
    first = [asyncio.Event() for _ in range(4)]
    tasks = [asyncio.create_task(holding(slots, Lane.BULK, entered, release, "msteams|t1")) for entered in first]
    await asyncio.sleep(0.05)
    assert [entered.is_set() for entered in first] == [True, True, True, False]

    other = asyncio.Event()
    tasks.append(asyncio.create_task(holding(slots, Lane.BULK, other, release, "msteams|t2")))
    await asyncio.wait_for(other.wait(), 1)  # its own pool

    release.set()
    await asyncio.gather(*tasks)
    assert all(entered.is_set() for entered in first)
    assert not slots._pools  # an idle scope's pool is dropped


def test_one_slot_is_bulks_too():
    """With a single slot there is nothing to keep back: bulk would never start."""
    assert Slots(1).bulk == 1
    assert Slots(128).reserved == 32
