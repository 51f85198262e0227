"""One page of a notification's recipient rows, optionally of one state, and where the next begins.

The state is filtered by the table service (only the rows asked for travel), then as the status
sees it (`as_seen`: a `sending` row past its lease is `unconfirmed`), so a page may hold fewer
rows than asked and still have a next one.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from azure.data.tables.aio import TableClient

from ..notifications.records import RecipientRow, RecipientState
from ..notifications.records.keys import shards_range
from ..notifications.records.rows import recipient_row
from ..notifications.records.states import as_seen
from ..storage.paging import one_page

PAGE_SIZE = 100  # rows a page of the table (or the status page's table) shows
MAX_PAGE_SIZE = 1000  # the table service's own largest page


class Unread(enum.Enum):
    """Sent, and no read receipt (yet): a filter of its own, not a row state."""

    UNREAD = "unread"


RowFilter = RecipientState | Unread | None


class BadFilter(ValueError):
    """A `state=` the report does not know."""


FILTER_NAMES = sorted([state.public for state in RecipientState] + [Unread.UNREAD.value])


def parse_filter(name: str | None) -> RowFilter:
    """`state=` as the API takes it: a state's public name, `unread`, or nothing (every row)."""
    if not name:
        return None
    if name == Unread.UNREAD.value:
        return Unread.UNREAD
    for state in RecipientState:
        if state.public == name:
            return state
    raise BadFilter(f"state must be one of {', '.join(FILTER_NAMES)} (not {name[:40]!r})")


@dataclass(frozen=True)
class Page:
    rows: list[RecipientRow]  # their state as the status sees it
    cursor: dict[str, str] | None  # where the next page starts; None: this was the last


async def page(
    table: TableClient,
    notification_id: str,
    wanted: RowFilter,
    now: datetime,
    *,
    cursor: dict[str, str] | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """Up to `size` rows of `notification_id` in state `wanted`, from `cursor`."""
    query, params = _query(notification_id, wanted, now)
    entities, following = await one_page(table, query, params, cursor, min(size, MAX_PAGE_SIZE))
    rows = [_as_seen(recipient_row(entity), now) for entity in entities]
    return Page([row for row in rows if _matches(row, wanted)], following)


async def pages(
    table: TableClient, notification_id: str, wanted: RowFilter, now: datetime, *, size: int = MAX_PAGE_SIZE
) -> AsyncIterator[Page]:
    """Every page, one after another: only one page's rows are held at a time."""
    cursor: dict[str, str] | None = None
    while True:
        found = await page(table, notification_id, wanted, now, cursor=cursor, size=size)
        yield found
        if found.cursor is None:
            return
        cursor = found.cursor


def _query(notification_id: str, wanted: RowFilter, now: datetime) -> tuple[str, dict[str, Any]]:
    # Spaces around every @name: the SDK finds parameters by splitting on whitespace.
    query = "PartitionKey gt @lo and PartitionKey lt @hi"
    params: dict[str, Any] = dict(shards_range(notification_id))
    if wanted is None:
        return query, params
    stored = RecipientState.SENT if wanted is Unread.UNREAD else wanted
    if stored is RecipientState.UNCONFIRMED:
        # A row still `sending` past its lease is unconfirmed too (as the status counts it).
        query += " and ( state eq @state or ( state eq @sending and leaseUntil lt @now ) )"
        params.update(sending=RecipientState.SENDING.value, now=now)
    else:
        query += " and state eq @state"
    params["state"] = stored.value
    return query, params


def _as_seen(row: RecipientRow, now: datetime) -> RecipientRow:
    seen = as_seen(row.state, row.lease_until, now)
    if seen is row.state:
        return row
    return replace(row, state=seen)


def _matches(row: RecipientRow, wanted: RowFilter) -> bool:
    if wanted is None:
        return True
    if wanted is Unread.UNREAD:
        return row.state is RecipientState.SENT and row.read_at is None
    return row.state is wanted
