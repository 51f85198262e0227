"""notifications_api/: the delivery report on the front door - the recent notifications, a page of
one's recipients, and its CSV - from the same records the status reads."""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid

from tests import activities
from tests.functions import invoke
from tests.support.notifications_api import get_status, run_notifications_queue


async def sent_one(app, channel) -> tuple[str, dict]:
    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    notification_id = f"report-{uuid.uuid4().hex[:8]}"
    document = {"id": notification_id, "to": {"aadObjectId": message["from"]["aadObjectId"]}, "text": "Shipped"}
    await invoke.http("notifications_api", document)
    await run_notifications_queue(app)
    return notification_id, message


async def get(route_params: dict[str, str], params: dict[str, str] | None = None):
    return await invoke.http("notifications_api", method="GET", route_params=route_params, params=params)


async def test_the_csv_lists_each_recipient_as_the_status_counts_them(app, channel):
    notification_id, message = await sent_one(app, channel)

    response = await get({"id": notification_id, "action": "recipients.csv"})

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="{notification_id}-recipients.csv"' in response.headers["Content-Disposition"]
    [line] = list(csv.DictReader(io.StringIO(response.get_body().decode())))
    status = json.loads((await get_status(notification_id)).get_body())
    assert (line["state"], line["conversationId"]) == ("sent", message["conversation"]["id"])
    assert status["counts"]["sent"] == 1


async def test_a_client_that_takes_gzip_gets_the_csv_compressed(app, channel):
    notification_id, _ = await sent_one(app, channel)
    route = {"id": notification_id, "action": "recipients.csv"}

    plain = await get(route)
    compressed = await invoke.http(
        "notifications_api", method="GET", route_params=route, headers={"Accept-Encoding": "gzip, deflate, br"}
    )
    refused = await invoke.http(
        "notifications_api", method="GET", route_params=route, headers={"Accept-Encoding": "gzip;q=0, identity"}
    )

    assert compressed.headers["Content-Encoding"] == "gzip" and compressed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(compressed.get_body()) == plain.get_body()
    assert "Content-Encoding" not in plain.headers and "Content-Encoding" not in refused.headers
    assert refused.get_body() == plain.get_body()


async def test_a_page_of_recipients_filtered_by_state(app, channel):
    notification_id, _ = await sent_one(app, channel)

    sent = json.loads((await get({"id": notification_id, "action": "recipients"}, {"state": "sent"})).get_body())
    failed = json.loads((await get({"id": notification_id, "action": "recipients"}, {"state": "failed"})).get_body())

    assert [row["state"] for row in sent["rows"]] == ["sent"] and sent["cursor"] is None
    assert failed["rows"] == [] and "budgetPerSecond" in failed


async def test_the_recent_notifications_are_listed_newest_first(app, channel):
    older, _ = await sent_one(app, channel)
    newer, _ = await sent_one(app, channel)

    listed = json.loads((await get({}, {"size": "100"})).get_body())

    ids = [n["id"] for n in listed["notifications"]]
    assert ids.index(newer) < ids.index(older)


async def test_bad_input_is_a_400_and_an_unknown_notification_a_404(app):
    bad_state = await get({"id": "x", "action": "recipients"}, {"state": "lost"})
    bad_cursor = await get({"id": "x", "action": "recipients"}, {"cursor": "forged"})
    unknown = await get({"id": "never-sent", "action": "recipients.csv"})

    assert [r.status_code for r in (bad_state, bad_cursor, unknown)] == [400, 400, 404]
    assert "state must be one of" in json.loads(bad_state.get_body())["error"]["message"]
    assert "no notification 'never-sent'" in json.loads(unknown.get_body())["error"]["message"]


async def test_counts_as_recorded_are_counted_once_asked_and_match_the_status(app, channel, work):
    notification_id, _ = await sent_one(app, channel)
    await work.drain()

    first = json.loads((await get({"id": notification_id}, {"counts": "recorded"})).get_body())
    ran = await work.drain()  # the recount the view asked for, on the work queue
    second = json.loads((await get({"id": notification_id}, {"counts": "recorded"})).get_body())
    status = json.loads((await get_status(notification_id)).get_body())

    assert first["countedAt"] is None and first["counts"]["sent"] == 0  # never counted before
    assert ran == 1
    assert second["countedAt"] is not None
    assert second["counts"] == status["counts"] and second["state"] == status["state"] == "done"


async def test_counts_as_recorded_of_an_unknown_notification_are_a_404(app):
    response = await get({"id": "no-such-notification"}, {"counts": "recorded"})

    assert response.status_code == 404
    assert "no-such-notification" in json.loads(response.get_body())["error"]["message"]
