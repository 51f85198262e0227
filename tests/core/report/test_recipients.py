"""report.recipients: a notification's rows a page at a time, filtered by state (real Azurite)."""

from __future__ import annotations

import pytest

from proactive_bot import clock
from proactive_bot.notifications.records import RecipientState
from proactive_bot.report import recipients
from proactive_bot.report.recipients import BadFilter, Unread, parse_filter


async def test_pages_follow_one_another_until_every_row_is_listed_once(recorded):
    seen, cursor, pages = [], None, 0
    while True:
        page = await recipients.page(recorded.table, recorded.id, None, clock.now(), cursor=cursor, size=7)
        seen += [row.conversation_id for row in page.rows]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor

    assert len(seen) == len(set(seen)) == 25
    assert pages >= 4  # never one query for all


async def test_a_state_filter_lists_only_that_state_with_its_reason(recorded):
    page = await recipients.page(recorded.table, recorded.id, RecipientState.FAILED, clock.now(), size=100)

    assert [row.state for row in page.rows] == [RecipientState.FAILED] * 3
    assert all("BadArgument" in row.detail and row.status == 400 for row in page.rows)


async def test_unread_is_sent_without_a_read_receipt(recorded):
    pages = [p async for p in recipients.pages(recorded.table, recorded.id, Unread.UNREAD, clock.now(), size=8)]

    assert sum(len(p.rows) for p in pages) == 20


async def test_an_unknown_notification_has_no_rows(recorded):
    page = await recipients.page(recorded.table, "nobody-sent-this", None, clock.now())

    assert (page.rows, page.cursor) == ([], None)


def test_filters_are_the_public_state_names_and_unread():
    assert parse_filter("retrying") is RecipientState.RETRY
    assert parse_filter("skipped") is RecipientState.OPTED_OUT
    assert parse_filter("") is None
    with pytest.raises(BadFilter, match="state must be one of"):
        parse_filter("retry")
