"""status_page/: the page's files, and a clear page (never a trace) for a wrong address."""

from __future__ import annotations

import json

from tests.functions import invoke


async def page(path: str):
    return await invoke.http("status_page", method="GET", route_params={"path": path})


async def test_the_page_and_its_files_are_served_under_the_function_key(app):
    index, script, style = await page(""), await page("status.js"), await page("status.css")

    assert [r.status_code for r in (index, script, style)] == [200, 200, 200]
    assert (index.mimetype, script.mimetype, style.mimetype) == ("text/html", "text/javascript", "text/css")
    assert b'<main id="app">' in index.get_body()
    assert "frame-ancestors 'none'" in index.headers["Content-Security-Policy"]
    trigger = invoke.load("status_page").binding("httpTrigger")
    assert trigger["authLevel"] == "function"  # never anonymous


async def test_a_notification_that_exists_opens_the_page_and_an_unknown_one_says_so(app):
    accepted = await invoke.http("notifications_api", {"to": {"all": True, "channelId": "nowhere"}, "text": "x"})
    notification_id = json.loads(accepted.get_body())["id"]

    known, unknown, elsewhere = await page(f"n/{notification_id}"), await page("n/nope"), await page("admin")

    assert known.status_code == 200
    assert (unknown.status_code, unknown.mimetype) == (404, "text/html")
    assert b"No notification &#x27;nope&#x27; is recorded here." in unknown.get_body()
    assert elsewhere.status_code == 404 and b"Traceback" not in elsewhere.get_body()
