"""The status page: its static files (HTML, JS, CSS; no build step, no framework) and the pages
a wrong address gets instead of a stack trace.

    /api/status                 the recent notifications
    /api/status/n/<id>          one notification, live
    /api/status/status.js|css   the page's code and style
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from urllib.parse import urlencode

from .. import clients
from .answer import Answer

_STATIC = Path(__file__).with_name("static")
_FILES = {
    "": ("index.html", "text/html"),
    "status.js": ("status.js", "text/javascript"),
    "status.css": ("status.css", "text/css"),
}
_MAX_ID = 256  # longer is no id this app handed out (ids are table keys)
# The page holds the function key in its address: no other site may frame it or read its referrer.
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


async def serve(path: str, code: str | None) -> Answer:
    """What `GET /api/status/<path>[?code=]` answers. The host asks each request for the key,
    the page's own files too, so the page names them with the key it was opened with."""
    path, key = path.strip("/"), _key_query(code)
    if path == "":
        return _index(key)
    if path in _FILES:
        name, mimetype = _FILES[path]
        return Answer(200, _read(name), mimetype, _HEADERS)
    problem = functools.partial(_problem, key=key)
    if path.startswith("n/"):
        notification_id = path[2:]
        if not notification_id or len(notification_id) > _MAX_ID or not notification_id.isprintable():
            return problem(404, "No such notification", "That is not a notification id.")
        app = await clients.get()
        if await app.notifications.header(notification_id) is None:
            return problem(404, "No such notification", f"No notification {notification_id!r} is recorded here.")
        return _index(key)
    return problem(404, "Not found", "The status page lives at /api/status and /api/status/n/<notification id>.")


def _index(key: str) -> Answer:
    return Answer(200, _read("index.html").replace(b"{{key}}", key.encode()), "text/html", _HEADERS)


def _key_query(code: str | None) -> str:
    return html.escape("?" + urlencode({"code": code})) if code else ""


def _problem(status: int, title: str, message: str, *, key: str) -> Answer:
    """A small HTML page saying what went wrong (and where to go), never a trace."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{t}</title>'
        '<link rel="stylesheet" href="{css}"></head><body><main class="problem"><h1>{t}</h1>'
        '<p>{m}</p><p><a data-home href="{home}">All notifications</a></p></main>'
        '<script src="{js}"></script></body></html>'
    ).format(
        t=html.escape(title),
        m=html.escape(message),
        css="/api/status/status.css" + key,
        js="/api/status/status.js" + key,
        home="/api/status",
    )
    return Answer(status, body.encode(), "text/html", _HEADERS)


@functools.cache
def _read(name: str) -> bytes:
    # Read on first request, kept: the page costs nothing at cold start.
    return (_STATIC / name).read_bytes()
