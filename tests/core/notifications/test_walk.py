"""The audience walk: an audience stored tenant by tenant reaches the queue with its tenants in turn."""

from __future__ import annotations

import json

from proactive_bot import channel as channel_module
from proactive_bot import clock, work
from proactive_bot.notifications import Notification, walk
from proactive_bot.notifications.walk import interleaved
from proactive_bot.references import StoredReference
from proactive_bot.work import BatchWork
from tests import activities


def in_tenant(tenant: str, i: int, service_url: str) -> dict:
    """A Teams user of `tenant` whose conversation id sorts with the tenant's others (the table's order)."""
    conversation = {"conversationType": "personal", "tenantId": tenant, "id": f"a:1{tenant}-{i:03d}"}
    message = activities.teams_message("hi", service_url, conversation=conversation)
    message["channelData"] = {"tenant": {"id": tenant}}
    return channel_module.conversation_reference(channel_module.parse_activity(message))


def batch_of(tenant: str, n: int, service_url: str) -> BatchWork:
    recipients = tuple(StoredReference.from_reference(in_tenant(tenant, i, service_url), clock.now()) for i in range(n))
    return BatchWork(notification="n1", recipients=recipients)


def tenant_of_batch(batch: BatchWork) -> str:
    (tenant,) = {r.tenant_id for r in batch.recipients}
    return tenant


def test_batches_take_turns_by_tenant_in_order_within_each():
    a1, a2, a3 = (batch_of("tenant-a", n, "https://smba.example/") for n in (1, 2, 3))
    b1, c1 = batch_of("tenant-b", 1, "https://smba.example/"), batch_of("tenant-c", 1, "https://smba.example/")

    assert interleaved([a1, a2, a3, b1, c1]) == [a1, b1, c1, a2, a3]


async def test_an_audience_stored_tenant_by_tenant_is_queued_with_its_tenants_in_turn(engine_factory, monkeypatch):
    """Pages come in the table's order (tenant a's users, then b's); the batches an instance
    takes from the queue at once should span both tenants' budgets."""
    monkeypatch.setattr(walk, "PAGE_SIZE", 4)
    monkeypatch.setattr(work, "BATCH_BYTES", 900)  # about two references a batch
    engine = await engine_factory()
    for tenant in ("tenant-a", "tenant-b"):
        for i in range(8):
            await engine.references.save(in_tenant(tenant, i, engine.stub.url))

    await engine.records.create(Notification(id="all", to={"all": True}, text="hi"), clock.now(), source="test")

    await engine.fanout.walk.next_page("all")

    queued = [json.loads(m.content) async for m in engine.work_queue.receive_messages(messages_per_page=32)]
    batches = [BatchWork.parse(m) for m in queued if m["kind"] == "batch"]
    tenants = [tenant_of_batch(b) for b in batches]
    assert sum(len(b.recipients) for b in batches) == 16
    last_of_a = len(tenants) - 1 - tenants[::-1].index("tenant-a")
    assert tenants.index("tenant-b") < last_of_a  # b's batches queued among a's, not after them all
