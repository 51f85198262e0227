"""The notifications recorded lately, newest first, a page at a time.

Headers carry no time in their keys (a notification's partition is its id), so this reads the
header rows of the last `days` (the table service filters them; no recipient row travels) and
orders them here; the page is an offset into that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.data.tables.aio import TableClient

from ..notifications.records import Header
from ..notifications.records.keys import HEADER
from ..notifications.records.rows import header_of

DAYS = 7  # how far back the list looks by default
PAGE_SIZE = 20


@dataclass(frozen=True)
class Recent:
    headers: list[Header]  # newest first
    next_offset: int | None  # where the next page starts; None: this was the last


async def recent(
    table: TableClient, now: datetime, *, days: int = DAYS, offset: int = 0, size: int = PAGE_SIZE
) -> Recent:
    """Up to `size` notifications recorded in the last `days`, newest first, from `offset`."""
    query = "RowKey eq @header and createdAt ge @since"
    params = {"header": HEADER, "since": now - timedelta(days=days)}
    headers = [header_of(entity) async for entity in table.query_entities(query, parameters=params)]
    headers.sort(key=lambda header: header.created_at, reverse=True)
    end = offset + size
    return Recent(headers[offset:end], end if end < len(headers) else None)
