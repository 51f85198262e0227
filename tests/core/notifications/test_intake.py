"""Bulk intake: a process takes on a few seconds of bulk sends per budget scope, and gives the
rest of what the queue offers back for a moment (a sibling, or this process later, takes it)."""

from __future__ import annotations

from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.intake import BulkIntake, scope_of
from proactive_bot.teams.rows import RosterMember
from tests import activities


def member(n: int, tenant: str = activities.TENANT) -> RosterMember:
    return RosterMember(f"29:m{n}", f"aad-{n}", f"Member {n}", tenant, "https://smba.example/")


def test_a_scope_takes_on_a_few_seconds_of_its_pace_and_no_more():
    intake = BulkIntake(per_second=2, seconds=3)  # 6 recipients per scope
    first, second = [member(n) for n in range(5)], [member(n) for n in range(5, 10)]

    with intake.take(first) as taken:
        assert taken and intake.held(scope_of(first[0])) == 5
        with intake.take(second) as again:
            assert not again  # 5 + 5 > 6: given back
        with intake.take([member(20, tenant="other")]) as elsewhere:
            assert elsewhere  # another tenant's budget: room of its own
    with intake.take(second) as taken:
        assert taken  # the first batch is done


def test_an_idle_scope_takes_a_batch_larger_than_its_bound():
    intake = BulkIntake(per_second=1, seconds=1)

    with intake.take([member(n) for n in range(60)]) as taken:
        assert taken


async def test_a_broadcast_batch_without_room_goes_back_on_the_queue_and_an_alert_passes(engine_factory):
    engine = await engine_factory()
    users = await engine.users(3)
    intake = engine.fanout.deliveries.intake
    busy = [member(n) for n in range(intake.bound)]  # this process's room in the tenant, taken

    with intake.take(busy) as taken:
        assert taken
        await engine.fanout.start(validate({"id": "all", "to": {"all": True}, "text": "townhall"}), "test")
        to = {"conversationId": users[0]["conversation"]["id"], "channelId": "msteams"}
        await engine.fanout.start(validate({"id": "alert", "to": to, "text": "disk full"}), "test")

        assert [r.activity["text"] for r in engine.stub.delivered()] == ["disk full"]
        await engine.drain()  # what is visible now: the broadcast's batches come back later

    assert [r.activity["text"] for r in engine.stub.delivered()] == ["disk full"]
    await engine.drain(wait_for_delayed=5)

    assert sorted(r.activity["text"] for r in engine.stub.delivered()) == ["disk full"] + ["townhall"] * 3
