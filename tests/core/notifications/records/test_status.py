"""records.status: a notification's rows counted into what GET answers. No storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.records import ChangeFailure, Header, NotificationState, RecipientRow, RecipientState
from proactive_bot.notifications.records.status import tally

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def header(*, recipients: int = 0, planned: bool = True, version: int = 0, cancelled: bool = False) -> Header:
    return Header(
        notification=validate({"id": "n", "to": {"all": True}, "text": "hi"}),
        created_at=NOW,
        recipients=recipients,
        planned=planned,
        cursor=None,
        pages=1,
        note="",
        etag="e",
        version=version,
        cancelled_at=NOW if cancelled else None,
    )


def row(state: RecipientState, **fields) -> RecipientRow:
    values = dict(channel_id="msteams", conversation_id="c", user_id="u", attempts=1, throttled=0, status=None)
    return RecipientRow(state=state, detail="", updated_at=None, **{**values, **fields})


def test_every_row_is_counted_by_its_state_and_a_walk_done_is_done():
    rows = [row(RecipientState.SENT), row(RecipientState.SENT, throttled=2), row(RecipientState.GONE)]

    status = tally(header(recipients=3), rows, NOW, detail=False, limit=10)

    assert (status.counts[RecipientState.SENT], status.counts[RecipientState.GONE], status.throttled) == (2, 1, 2)
    assert (status.pending, status.state, status.rows) == (0, NotificationState.DONE, None)


def test_recipients_not_settled_yet_are_pending():
    status = tally(header(recipients=5, planned=False), [row(RecipientState.SENT)], NOW, detail=False, limit=10)

    assert (status.recipients, status.pending, status.state) == (5, 4, NotificationState.DELIVERING)


def test_a_dead_senders_row_counts_and_lists_as_unconfirmed():
    dead = row(RecipientState.SENDING, lease_until=NOW - timedelta(seconds=1))

    status = tally(header(recipients=1), [dead], NOW, detail=True, limit=10)

    assert status.counts[RecipientState.UNCONFIRMED] == 1 and status.counts[RecipientState.SENDING] == 0
    assert [r.state for r in status.rows or []] == [RecipientState.UNCONFIRMED]


def test_changes_that_did_not_take_are_counted_apart_and_are_not_pending():
    rows = [
        row(RecipientState.SENT, version=1, edited_at=NOW),  # the edit reached it
        row(RecipientState.SENT, version=0, change=ChangeFailure.UNSUPPORTED.value),
        row(RecipientState.SENT, version=0, change=ChangeFailure.FAILED.value),
        row(RecipientState.SENT, version=0),  # still to reach
    ]

    status = tally(header(recipients=4, version=1), rows, NOW, detail=False, limit=10)

    assert (status.updated, status.unsupported, status.change_failed, status.changing) == (1, 1, 1, 1)
    assert status.pending == 1


def test_once_cancelled_what_was_never_reached_counts_as_never_sent():
    rows = [row(RecipientState.SENT), row(RecipientState.RETRY), row(RecipientState.CANCELLED)]

    status = tally(header(recipients=5, cancelled=True), rows, NOW, detail=False, limit=10)

    assert status.never_sent == 1 + 1 + 2  # marked, waiting for a retry, found but never reached
    assert status.state is NotificationState.CANCELLED


def test_the_listing_stops_at_its_limit_but_the_counts_do_not():
    status = tally(header(recipients=3), [row(RecipientState.SENT)] * 3, NOW, detail=True, limit=2)

    assert len(status.rows or []) == 2 and status.counts[RecipientState.SENT] == 3
