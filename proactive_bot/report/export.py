"""The delivery report as CSV: one line per recipient row, written page by page so that memory
holds one page of rows however many there are (see README, "Status page and delivery report")."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime

from ..notifications.records import RecipientRow

COLUMNS = (
    "userId",
    "conversationId",
    "channelId",
    "state",
    "reason",
    "httpStatus",
    "attempts",
    "throttled",
    "resends",
    "lastAttemptAt",
    "updatedAt",
    "readAt",
    "editedAt",
    "recalledAt",
    "version",
    "change",
    "activityId",
)

# A spreadsheet runs a cell that starts with one of these as a formula; a failure's reason is text
# a channel wrote, so it is never allowed to start one.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def fields(row: RecipientRow) -> list[str]:
    """A row's cells, in COLUMNS order."""
    return [
        row.user_id,
        row.conversation_id,
        row.channel_id,
        row.state.public,
        _text(row.detail),
        str(row.status or ""),
        str(row.attempts),
        str(row.throttled),
        str(row.resends),
        _iso(row.claimed_at),
        _iso(row.updated_at),
        _iso(row.read_at),
        _iso(row.edited_at),
        _iso(row.recalled_at),
        str(row.version),
        row.change,
        row.activity_id or "",
    ]


async def csv_chunks(pages: AsyncIterator[list[RecipientRow]]) -> AsyncIterator[str]:
    """The header line, then one chunk of lines per page of rows."""
    yield _lines([list(COLUMNS)])
    async for rows in pages:
        if rows:
            yield _lines([fields(row) for row in rows])


def _lines(records: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(records)
    return buffer.getvalue()


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""
