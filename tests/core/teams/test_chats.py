"""Creating conversations when the channel says no for now (429) or for good (403).

Real Azurite and the Connector stub (its Teams directory: devtools/connector_stub/teams.py).
"""

from __future__ import annotations

from devtools.connector_stub import CREATE
from proactive_bot.delivery.rate_limits import APP_MARGIN_MIN
from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.records import RecipientState
from tests.activities import TENANT
from tests.support.teams import TEAM, creates, installed

CHANNEL = "19:c0ffee@thread.tacv2"


def statuses(engine) -> list[int]:
    return [r.status for r in engine.stub.received if r.route == CREATE]


async def test_a_create_answered_429_is_made_again_after_its_retry_after_and_opens_one_chat(engine_factory) -> None:
    engine = await engine_factory()
    [member] = await installed(engine, 1)
    engine.stub.clear()
    engine.stub.fail(None, statuses=[429], retry_after=1)

    await engine.fanout.start(validate({"id": "n429", "to": {"teamId": TEAM}, "text": "hi"}), "test")
    await engine.drain()

    assert statuses(engine) == [429, 201] and creates(engine) == {member["id"]: 2}
    status = await engine.records.status("n429", detail=True)
    assert engine.limiter.app_margin > APP_MARGIN_MIN  # a create's 429 tells the pace, as a send's does
    assert status.counts[RecipientState.SENT] == 1 and status.throttled == 1
    assert status.rows[0].chat_created and engine.stub.texts(status.rows[0].conversation_id) == ["hi"]


async def test_a_create_whose_retry_after_outlasts_the_budget_is_handed_back_not_hammered(engine_factory) -> None:
    engine = await engine_factory(retry_budget=1.0)
    await installed(engine, 1)
    engine.stub.clear()
    engine.stub.fail(None, statuses=[429], retry_after=30)

    await engine.fanout.start(validate({"id": "later", "to": {"teamId": TEAM}, "text": "hi"}), "test")
    await engine.drain()

    assert statuses(engine) == [429]
    status = await engine.records.status("later", detail=True)
    assert status.counts[RecipientState.RETRY] == 1 and status.pending == 1
    assert engine.stub.delivered() == []


async def test_a_channel_post_answered_429_is_posted_once_after_its_retry_after(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)
    engine.stub.clear()
    engine.stub.fail(None, statuses=[429], retry_after=1)

    await engine.fanout.start(
        validate({"id": "post", "to": {"teamChannel": {"teamId": TEAM, "channelId": CHANNEL}}, "text": "launch"}),
        "test",
    )
    await engine.drain(wait_for_delayed=4)

    assert statuses(engine) == [429, 201]
    status = await engine.records.status("post", detail=True)
    assert status.counts[RecipientState.SENT] == 1 and status.state.value == "done"
    assert engine.stub.texts(status.rows[0].conversation_id) == ["launch"]
    assert status.rows[0].throttled == 1 and status.rows[0].attempts == 2  # the 429 is still counted
    assert engine.limiter.app_margin > APP_MARGIN_MIN


async def test_a_channel_post_held_by_another_invocation_is_looked_at_again_after_its_lease(engine_factory) -> None:
    """An invocation that died mid-post leaves the row held; the host's retry of the message
    must not just end there, or nobody ever settles that row."""
    from proactive_bot import clock
    from proactive_bot.notifications.posts import TeamsChannelPost

    engine = await engine_factory()
    await installed(engine, 1)
    notification = validate({"id": "held", "to": {"teamChannel": {"teamId": TEAM, "channelId": CHANNEL}}, "text": "x"})
    await engine.records.create(notification, clock.now(), "test")
    await engine.records.claim("held", TeamsChannelPost(CHANNEL), clock.now())  # the invocation that died
    engine.stub.clear()

    await engine.fanout.start_scheduled("held")

    assert statuses(engine) == []
    assert (await engine.work_queue.get_queue_properties()).approximate_message_count == 1  # hidden for the lease


async def test_a_channel_post_answered_403_is_not_retried(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)
    engine.stub.clear()
    engine.stub.fail(None, statuses=[403])

    await engine.fanout.start(
        validate({"id": "no", "to": {"teamChannel": {"teamId": TEAM, "channelId": CHANNEL}}, "text": "launch"}), "test"
    )
    await engine.drain(wait_for_delayed=2)

    assert statuses(engine) == [403]
    status = await engine.records.status("no", detail=True)
    assert status.counts[RecipientState.GONE] == 1 and status.pending == 0 and status.rows[0].status == 403


async def test_a_create_answered_404_fails_that_user_as_not_found_and_is_not_retried(engine_factory) -> None:
    engine = await engine_factory()
    await installed(engine, 1)  # an install in the tenant: its serviceUrl is known
    engine.stub.clear()
    nobody = "00000000-0000-0000-0000-0000000000ff"  # an object id Teams does not know

    await engine.fanout.start(
        validate({"id": "n404", "to": {"aadObjectIds": [nobody], "tenantId": TENANT}, "text": "hi"}), "test"
    )
    await engine.drain(wait_for_delayed=2)

    assert statuses(engine) == [404]
    status = await engine.records.status("n404", detail=True)
    [row] = status.rows
    assert row.state is RecipientState.FAILED and row.status == 404 and "user not found" in row.detail
    assert status.pending == 0 and status.state.value == "done"
