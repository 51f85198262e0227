"""Coalesced writes: rows that come together share a transaction; a lone row does not wait."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.exceptions import ResourceExistsError

from proactive_bot.storage.batching import CoalescedWrites, Write

LONG_WINDOW = 30.0  # far longer than any write here takes: waiting it out would fail the test


def row(n: int) -> dict:
    return {"PartitionKey": "p", "RowKey": f"r{n:03d}", "n": n}


async def test_a_lone_write_goes_at_once(new_table):
    table = await new_table()
    writes = CoalescedWrites(table, Write.CREATE, window=LONG_WINDOW)

    await asyncio.wait_for(writes.write([row(1)]), timeout=LONG_WINDOW / 2)

    assert (await table.get_entity("p", "r001"))["n"] == 1


async def test_rows_that_come_while_one_is_on_its_way_share_a_transaction(new_table):
    table = await new_table()
    requests: list[str] = []
    writes = CoalescedWrites(table, Write.CREATE, window=0.2)
    original = table.submit_transaction

    async def counted(operations, **kwargs):
        requests.append(f"transaction of {len(operations)}")
        return await original(operations, **kwargs)

    table.submit_transaction = counted

    results = await asyncio.gather(*(writes.write([row(n)]) for n in range(10)), return_exceptions=True)

    assert not any(isinstance(r, BaseException) for r in results)
    assert "transaction of 9" in requests  # the first went alone, the rest waited for company
    assert len([e async for e in table.list_entities()]) == 10


async def test_a_create_of_an_existing_row_says_so(new_table):
    table = await new_table()
    writes = CoalescedWrites(table, Write.CREATE, window=LONG_WINDOW)
    await writes.write([row(1)])

    with pytest.raises(ResourceExistsError):
        await asyncio.wait_for(writes.write([row(1)]), timeout=LONG_WINDOW / 2)


async def test_one_existing_row_in_a_shared_transaction_fails_only_its_own_writer(new_table):
    """A transaction is all or nothing: one row already there sinks it, so the rows go one by
    one; the others are written and only that row's writer hears ResourceExistsError."""
    table = await new_table()
    await table.create_entity(row(5))
    writes = CoalescedWrites(table, Write.CREATE, window=0.2)

    results = await asyncio.gather(*(writes.write([row(n)]) for n in range(10)), return_exceptions=True)

    failed = [n for n, result in enumerate(results) if isinstance(result, BaseException)]
    assert failed == [5] and isinstance(results[5], ResourceExistsError)
    assert sorted([e["n"] async for e in table.list_entities()]) == list(range(10))


@pytest.mark.parametrize("together", [1, 10], ids=["lone", "shared-transaction"])
async def test_storage_unreachable_every_writer_hears_it(together):
    """Nothing listens where the table should be: every waiting writer gets the error (none
    hangs, none is told its row is written)."""
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.exceptions import AzureError
    from azure.data.tables.aio import TableClient

    from devtools.azurite import ACCOUNT, ACCOUNT_KEY, free_port

    endpoint = f"http://127.0.0.1:{free_port()}/{ACCOUNT}"
    async with TableClient(
        endpoint, "Down", credential=AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY), retry_total=0
    ) as down:
        writes = CoalescedWrites(down, Write.UPSERT, window=0.05)
        results = await asyncio.wait_for(
            asyncio.gather(*(writes.write([row(n)]) for n in range(together)), return_exceptions=True), timeout=20
        )

    assert all(isinstance(result, AzureError) for result in results), results
