"""The report's HTTP answers, as the front door (notifications_api) returns them: the recent
notifications, one's counts as last counted, a page of its recipients (JSON), and its CSV
delivery report.

Counts and states come from the records' status path (`NotificationStore.status`, the one
`GET /api/notifications/{id}` answers), for views as it last counted them (records/counting.py);
the rows from paged queries (recipients.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from azure.data.tables.aio import TableClient

from .. import clients, clock
from ..app import HttpResult, status_body
from ..work import RecountWork
from . import cursors, export, recent, recipients
from .answer import Answer


async def recent_notifications(offset: str | None, size: str | None) -> HttpResult:
    """GET /api/notifications: the notifications of the last days, newest first."""
    try:
        start, count = _number(offset, 0, "offset"), min(_number(size, recent.PAGE_SIZE, "size"), 100)
    except ValueError as error:
        return _error(400, str(error))
    app = await clients.get()
    found = await recent.recent(_table(app), clock.now(), offset=start, size=count)
    return HttpResult(
        200,
        {
            "notifications": [_summary(header) for header in found.headers],
            "nextOffset": found.next_offset,
            "budgetPerSecond": app.settings.max_sends_per_second,
        },
    )


async def counted_status(notification_id: str) -> HttpResult:
    """GET /api/notifications/{id}?counts=recorded: its status with the counts as last counted
    (`countedAt`: when; null: not yet, every count 0), and a recount asked for if they are old.
    What the status page polls: it reads no recipient row."""
    app = await clients.get()
    now = clock.now()
    counted = await app.notifications.counted(notification_id, now)
    if counted is None:
        return _error(404, f"no notification {notification_id!r}")
    if await app.notifications.ask_recount(notification_id, counted, now):
        await app.work.put(RecountWork(notification=notification_id))
    body = status_body(counted.status)
    body["countedAt"] = counted.counted_at.isoformat() if counted.counted_at else None
    return HttpResult(200, body)


async def recipients_page(notification_id: str, state: str | None, cursor: str | None, size: str | None) -> HttpResult:
    """GET /api/notifications/{id}/recipients[?state=&cursor=&size=]: one page of rows."""
    try:
        wanted = recipients.parse_filter(state)
        start = cursors.decode(cursor)
        count = min(_number(size, recipients.PAGE_SIZE, "size"), recipients.MAX_PAGE_SIZE)
    except ValueError as error:  # BadFilter, BadCursor
        return _error(400, str(error))
    app = await clients.get()
    if await app.notifications.header(notification_id) is None:
        return _error(404, f"no notification {notification_id!r}")
    found = await recipients.page(_table(app), notification_id, wanted, clock.now(), cursor=start, size=count)
    return HttpResult(
        200,
        {
            "columns": list(export.COLUMNS),
            "rows": [dict(zip(export.COLUMNS, export.fields(row), strict=True)) for row in found.rows],
            "cursor": cursors.encode(found.cursor),
            "budgetPerSecond": app.settings.max_sends_per_second,
        },
    )


async def recipients_csv(
    notification_id: str, state: str | None, accept_encoding: str | None = None
) -> Answer | HttpResult:
    """GET /api/notifications/{id}/recipients.csv[?state=]: the delivery report, gzip-encoded
    for a client that takes it (browsers, curl --compressed)."""
    try:
        wanted = recipients.parse_filter(state)
    except recipients.BadFilter as error:
        return _error(400, str(error))
    app = await clients.get()
    if await app.notifications.header(notification_id) is None:
        return _error(404, f"no notification {notification_id!r}")
    # The Python worker hands the host a whole body (it cannot stream one): the rows are read and
    # written a page at a time, so what is held is the (compressed) text, never the rows.
    gzip = export.accepts_gzip(accept_encoding)
    body = await export.csv_body(_row_pages(_table(app), notification_id, wanted), gzip=gzip)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in notification_id)[:80]
    suffix = f"-{state}" if state else ""
    headers = {
        "Content-Disposition": f'attachment; filename="{name}{suffix}-recipients.csv"',
        "Vary": "Accept-Encoding",
    }
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return Answer(200, body, "text/csv", headers)


async def _row_pages(table: TableClient, notification_id: str, wanted: recipients.RowFilter) -> AsyncIterator[Any]:
    async for found in recipients.pages(table, notification_id, wanted, clock.now()):
        yield found.rows


def _summary(header: Any) -> dict[str, Any]:
    notification = header.notification
    return {
        "id": notification.id,
        "createdAt": header.created_at.isoformat(),
        "to": notification.to,
        "text": notification.text if isinstance(notification.text, str) else None,
        "recipients": header.recipients,
        "planned": header.planned,
        "cancelled": header.cancelled,
        "version": header.version,
    }


def _table(app: clients.Clients) -> TableClient:
    return app.tables.get_table_client(app.settings.notifications_table)


def _number(value: str | None, default: int, name: str) -> int:
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number (not {value[:20]!r})")
    return max(int(value), 1) if name == "size" else int(value)


def _error(status: int, message: str) -> HttpResult:
    return HttpResult(status, {"error": {"message": message}})
