"""Notification records: claims and outcomes, and what callers hear when storage fails."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.data.tables.aio import TableClient

from proactive_bot import clock
from proactive_bot.notifications.contract import Notification
from proactive_bot.notifications.records import NotificationStore, RecipientState, Settled, Verdict, shard_of
from proactive_bot.references import StoredReference
from proactive_bot.storage.outage import StorageGate, probe_of
from tests.conftest import unreachable_connection


def recipient(n: int):
    return StoredReference.from_reference(
        {
            "channelId": "msteams",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "conversation": {"id": f"a:1records-{n}", "conversationType": "personal"},
            "user": {"id": f"29:1user-{n}"},
            "bot": {"id": "28:bot"},
        },
        clock.now(),
    )


def same_shard(count: int):
    """Recipients whose rows share a partition, so their writes share a transaction."""
    by_shard: dict[int, list] = {}
    n = 0
    while True:
        r = recipient(n)
        group = by_shard.setdefault(shard_of(r), [])
        group.append(r)
        if len(group) == count:
            return group
        n += 1


@pytest.fixture
async def unreachable_store():
    """A store whose storage account does not answer (nothing listens on the port), and waits for
    it a second (in the app: a send's lease)."""
    async with TableClient.from_connection_string(unreachable_connection(), "Notifications", retry_total=0) as table:
        yield NotificationStore(table, gate=StorageGate(probe_of(table), patience=1.0))


async def test_outcomes_sharing_a_transaction_fail_loudly_when_storage_stays_unreachable(unreachable_store):
    outcomes = [Settled(r, RecipientState.SENT, attempts=1, status=200) for r in same_shard(3)]

    with pytest.raises(ServiceRequestError):
        # Every waiter hears why; none is left waiting for a write that never comes.
        await asyncio.wait_for(unreachable_store.settle("n-1", outcomes, clock.now(), at_once=True), timeout=20)


async def test_claims_sharing_a_transaction_fail_loudly_when_storage_stays_unreachable(unreachable_store):
    claims = [unreachable_store.claim("n-2", r, clock.now()) for r in same_shard(3)]

    results = await asyncio.wait_for(asyncio.gather(*claims, return_exceptions=True), timeout=20)

    assert all(isinstance(result, ServiceRequestError) for result in results)


async def test_claim_then_settle_then_no_second_claim(new_table):
    store = NotificationStore(await new_table())
    first, second = same_shard(2)

    claims = await asyncio.gather(store.claim("n-3", first, clock.now()), store.claim("n-3", second, clock.now()))
    await store.settle(
        "n-3",
        [Settled(first, RecipientState.SENT, 1, status=200), Settled(second, RecipientState.GONE, 1, status=403)],
        clock.now(),
    )

    assert [c.verdict for c in claims] == [Verdict.CLAIMED, Verdict.CLAIMED]
    assert (await store.claim("n-3", first, clock.now())).verdict is Verdict.DONE
    assert (await store.claim("n-3", second, clock.now())).verdict is Verdict.DONE


async def test_an_edit_with_a_text_per_language_is_read_back_as_written(new_table):
    store = NotificationStore(await new_table())
    created = await store.create(Notification(id="n-4", to={"all": True}, text="Hello"), clock.now(), "api")
    texts = {"en": "Bye", "de": "Tschüss", "zh-Hans": "再见"}

    edited = await store.edit(created, texts, None)

    assert edited is not None and edited.notification.text == texts
    header = await store.header("n-4")
    assert header is not None
    assert header.notification.text == texts
    assert header.original is not None and header.original.text == "Hello"
    assert header.version == created.version + 1
