"""records.states: what a claim does with a row already there, and what a result leads to. No storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proactive_bot.delivery.outcome import Outcome, Result
from proactive_bot.delivery.retries import NOTIFICATIONS
from proactive_bot.notifications.records.states import (
    Claim,
    Found,
    RecipientState,
    Verdict,
    as_seen,
    on_existing_row,
    settled,
)
from proactive_bot.references import StoredReference

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
RUNNING, OVER = NOW + timedelta(seconds=30), NOW - timedelta(seconds=1)
USER = StoredReference.from_reference(
    {"channelId": "directline", "serviceUrl": "https://x/", "conversation": {"id": "c"}, "user": {"id": "u"}}, NOW
)


@pytest.mark.parametrize("state", [s for s in RecipientState if s.final])
def test_a_settled_row_is_never_sent_again(state):
    assert on_existing_row(state, None, NOW, resend_on_crash=True) is Found.DONE


def test_a_row_being_sent_is_someone_elses_until_its_lease_is_out():
    assert on_existing_row(RecipientState.SENDING, RUNNING, NOW, resend_on_crash=True) is Found.BUSY
    assert on_existing_row(RecipientState.SENDING, OVER, NOW, resend_on_crash=False) is Found.UNCONFIRMED
    assert on_existing_row(RecipientState.SENDING, OVER, NOW, resend_on_crash=True) is Found.RESEND


def test_a_row_given_back_is_taken_again():
    assert on_existing_row(RecipientState.RETRY, None, NOW, resend_on_crash=False) is Found.RETAKE


def test_the_status_sees_a_dead_senders_row_as_unconfirmed():
    assert as_seen(RecipientState.SENDING, OVER, NOW) is RecipientState.UNCONFIRMED
    assert as_seen(RecipientState.SENDING, RUNNING, NOW) is RecipientState.SENDING
    assert as_seen(RecipientState.SENT, OVER, NOW) is RecipientState.SENT


@pytest.mark.parametrize(
    ("outcome", "status", "state"),
    [
        (Outcome.SENT, 200, RecipientState.SENT),
        (Outcome.GONE, 404, RecipientState.GONE),
        (Outcome.THROTTLED, 429, RecipientState.RETRY),
        (Outcome.FAILED, 400, RecipientState.FAILED),
    ],
)
def test_a_result_becomes_its_row(outcome, status, state):
    result = Result(outcome, status=status)

    row = settled(USER, Claim(Verdict.CLAIMED, attempts=1, throttled=1), result)

    assert row.state is state and row.attempts == 2
    assert row.throttled == 1 + (outcome is Outcome.THROTTLED)


def test_retries_end_when_the_policy_is_exhausted():
    claim = Claim(Verdict.CLAIMED, attempts=NOTIFICATIONS.max_attempts - 1)

    row = settled(USER, claim, Result(Outcome.FAILED, status=503))

    assert row.state is RecipientState.FAILED
