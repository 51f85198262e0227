"""Delivery: one message to one recipient, through whatever the channel answers."""

from __future__ import annotations

import asyncio
import time

import pytest

from proactive_bot import clock
from proactive_bot.activities import message
from proactive_bot.delivery import Lane, Outcome
from proactive_bot.delivery.limits import LimitsConfig
from proactive_bot.references import StoredReference


async def one_recipient(engine):
    [reference] = await engine.users(1)
    return StoredReference.from_reference(reference, clock.now())


def patience(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


async def test_sent(engine_factory):
    engine = await engine_factory()
    recipient = await one_recipient(engine)

    result = await engine.delivery.send(recipient, [message("hello")])

    assert result.outcome is Outcome.SENT
    [sent] = engine.stub.activities(recipient.conversation_id)
    assert sent["text"] == "hello" and sent["recipient"]["id"] == recipient.user_id


@pytest.mark.parametrize(
    ("retry_after", "as_date"),
    [(1, False), (2, True), (None, False)],
    ids=["with-retry-after", "with-an-http-date", "without"],
)
async def test_429_is_retried_after_the_channels_wait(engine_factory, retry_after, as_date):
    engine = await engine_factory()
    recipient = await one_recipient(engine)
    engine.stub.fail(recipient.conversation_id, [429], retry_after=retry_after, retry_after_as_date=as_date)

    result = await engine.delivery.send_patiently(recipient, [message("hi")], deadline=patience())

    assert (result.outcome, result.throttled, result.attempts) == (Outcome.SENT, 1, 2)
    first, second = engine.stub.received
    if retry_after is not None:
        # Honoured: the retry came no sooner than the channel asked (the stub's own clock).
        assert second.received_monotonic - first.received_monotonic >= retry_after


async def test_server_errors_are_retried_with_backoff(engine_factory):
    engine = await engine_factory()
    recipient = await one_recipient(engine)
    engine.stub.fail(recipient.conversation_id, [500, 502, 503, 504, 412])

    result = await engine.delivery.send_patiently(recipient, [message("hi")], deadline=patience(60))

    assert (result.outcome, result.attempts) == (Outcome.SENT, 6)
    assert [r.status for r in engine.stub.received] == [500, 502, 503, 504, 412, 200]


@pytest.mark.parametrize("status", [403, 404])
async def test_blocked_or_gone_is_never_retried_and_marks_the_address_inactive(engine_factory, status):
    engine = await engine_factory()
    recipient = await one_recipient(engine)
    engine.stub.block(recipient.conversation_id, status)

    result = await engine.delivery.send_patiently(recipient, [message("hi")], deadline=patience())

    assert result.outcome is Outcome.GONE and result.attempts == 1
    assert len(engine.stub.received) == 1
    stored = await engine.references.get(recipient.channel_id, recipient.conversation_id)
    assert not stored.active and stored.inactive_reason.startswith(str(status))


async def test_out_of_patience_says_when_to_come_back(engine_factory):
    engine = await engine_factory()
    recipient = await one_recipient(engine)
    engine.stub.fail(recipient.conversation_id, [429], retry_after=30)

    result = await engine.delivery.send_patiently(recipient, [message("hi")], deadline=patience(1))

    assert result.outcome is Outcome.THROTTLED and result.retryable
    assert result.retry_after == 30
    assert len(engine.stub.received) == 1  # it did not sleep 30 s inside the invocation


async def test_a_bad_request_is_not_retried(engine_factory):
    engine = await engine_factory()
    recipient = await one_recipient(engine)
    engine.stub.fail(recipient.conversation_id, [400])

    result = await engine.delivery.send_patiently(recipient, [message("hi")], deadline=patience())

    assert result.outcome is Outcome.FAILED and not result.retryable and result.status == 400


async def test_a_tampered_address_is_refused_once_and_never_retried(engine_factory):
    engine = await engine_factory()
    reference = dict((await engine.users(1))[0], serviceUrl="https://collector.evil.example/")
    await engine.references.save(reference)  # as if someone edited the row in storage
    recipient = await engine.references.get(reference["channelId"], reference["conversation"]["id"])

    result = await engine.delivery.send_patiently(recipient, [message("hi")], deadline=patience())

    assert (result.outcome, result.retryable, result.attempts) == (Outcome.FAILED, False, 1)
    assert "serviceUrl not allowed" in result.detail
    assert engine.stub.received == []


async def test_a_single_attempts_429_holds_the_conversation_for_every_sender(engine_factory):
    """A reminder or a task's result makes one attempt (`send`); its 429's Retry-After still
    holds the conversation, so the next send there (another reminder, a notification) waits
    for it rather than drawing another 429."""
    from proactive_bot.delivery.limits import LimitsConfig

    engine = await engine_factory(limits=LimitsConfig())
    recipient = await one_recipient(engine)
    engine.stub.fail(recipient.conversation_id, [429], retry_after=1)

    first = await engine.delivery.send(recipient, [message("reminder")])
    second = await engine.delivery.send(recipient, [message("notification")])

    assert (first.outcome, second.outcome) == (Outcome.THROTTLED, Outcome.SENT)
    throttled, sent = engine.stub.received
    assert sent.received_monotonic - throttled.received_monotonic >= 1  # the stub's own clock


@pytest.mark.parametrize(
    ("status", "code"), [(405, "MethodNotAllowed"), (501, "DeleteActivityAPINotImplemented")], ids=["405", "501"]
)
async def test_a_change_the_channel_cannot_make_is_unsupported_tried_once_and_keeps_the_channels_reason(
    engine_factory, status, code
):
    # Direct Line answers 405; Microsoft's Teams emulator answers a DELETE with 501.
    from devtools.connector_stub import DELETE, UPDATE
    from proactive_bot.delivery import Edit, Recall

    engine = await engine_factory()
    recipient = await one_recipient(engine)
    sent = await engine.delivery.send(recipient, [message("v0")])
    engine.stub.refuse_changes(status=status)

    for change, route in ((Edit(sent.activity_id, message("v1")), UPDATE), (Recall(sent.activity_id), DELETE)):
        result = await engine.delivery.send_patiently(recipient, change, deadline=patience())

        assert (result.outcome, result.status, result.attempts) == (Outcome.FAILED, status, 1)
        assert result.unsupported and not result.retryable
        assert f"{status} {code}" in result.detail and result.code == code
        assert [r.status for r in engine.stub.received if r.route == route] == [status]  # not retried
    assert (await engine.references.get(recipient.channel_id, recipient.conversation_id)).active


async def test_an_urgent_send_overtakes_a_broadcast_already_waiting(engine_factory):
    """A broadcast's sends wait for the tenant's pace; a 1:1 alert sent after them reaches the
    channel with the next slot, not after them all."""
    engine = await engine_factory(limits=LimitsConfig(app=((20, 1.0),)))
    *everyone, alerted = [StoredReference.from_reference(r, clock.now()) for r in await engine.users(8)]
    broadcast = [
        asyncio.create_task(engine.delivery.send(user, [message("news")], lane=Lane.BULK)) for user in everyone
    ]
    while engine.limiter.app_demand() < len(everyone):  # all of it sent or waiting in line
        await asyncio.sleep(0.001)

    alert = await engine.delivery.send(alerted, [message("alert")], lane=Lane.URGENT)
    await asyncio.gather(*broadcast)

    assert alert.outcome is Outcome.SENT
    arrived = [r.activity["text"] for r in engine.stub.delivered() if r.activity]
    assert arrived[:3] == ["news", "alert", "news"] and len(arrived) == len(everyone) + 1
