"""The delivery report as CSV: one line per recipient row, written page by page so that memory
holds one page of rows however many there are (see README, "Status page and delivery report")."""

from __future__ import annotations

import csv
import io
import zlib
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


async def csv_body(pages: AsyncIterator[list[RecipientRow]], *, gzip: bool) -> bytes:
    """The whole report as one body (the worker cannot stream one), each page's text encoded and,
    with `gzip`, compressed as it comes: what is held is then the compressed body, a few times
    smaller than the text, and never the text and its join at once."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if gzip else None  # gzip framing
    body = bytearray()
    async for chunk in csv_chunks(pages):
        data = chunk.encode("utf-8")
        body += compressor.compress(data) if compressor else data
    if compressor:
        body += compressor.flush()
    return bytes(body)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Does an Accept-Encoding header take gzip (RFC 9110: `gzip` or `*`, unless its q is 0)?"""
    for item in (accept_encoding or "").split(","):
        name, *params = (part.strip().lower() for part in item.split(";"))
        refused = any(param.replace(" ", "") in ("q=0", "q=0.", "q=0.0", "q=0.00", "q=0.000") for param in params)
        if name in ("gzip", "x-gzip", "*") and not refused:
            return True
    return False


def _lines(records: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(records)
    return buffer.getvalue()


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""
