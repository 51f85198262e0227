"""notifications_api/: the HTTP front door for other systems, and the status it reports."""

from __future__ import annotations

import json

from tests import activities
from tests.functions import invoke


async def run_notifications_queue(app) -> None:
    """Play the Functions host: hand what the front door enqueued to queue_notify."""
    async for message in app.notifications_queue.receive_messages(max_messages=32):
        await invoke.queue("queue_notify", message.content.encode(), dequeue_count=message.dequeue_count)
        await app.notifications_queue.delete_message(message)


async def test_post_then_follow_the_status_url(app, channel):
    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    channel.clear()
    document = {"to": {"aadObjectId": message["from"]["aadObjectId"]}, "text": "Your order shipped"}

    accepted = await invoke.http("notifications_api", document)

    assert accepted.status_code == 202
    body = json.loads(accepted.get_body())
    assert body["status"] == f"http://localhost:7071/api/notifications/{body['id']}"
    assert accepted.headers["Location"] == body["status"]
    queued = json.loads((await get_status(body["id"])).get_body())
    assert queued["state"] == "accepted" and queued["counts"]["recipients"] == 0

    await run_notifications_queue(app)

    done = json.loads((await get_status(body["id"], detail=True)).get_body())
    assert done["state"] == "done"
    assert done["counts"]["sent"] == 1 and done["counts"]["pending"] == 0
    [row] = done["recipients"]
    assert row["conversationId"] == message["conversation"]["id"] and row["state"] == "sent"
    assert channel.texts() == ["Your order shipped"]


async def test_posting_the_same_id_twice_is_one_notification(app, channel):
    document = {"id": "invoice-7781", "to": {"all": True, "channelId": "nowhere"}, "text": "x"}

    first = await invoke.http("notifications_api", document)
    second = await invoke.http("notifications_api", document)

    assert json.loads(first.get_body())["id"] == json.loads(second.get_body())["id"] == "invoice-7781"


async def test_bad_input_is_a_400_that_names_the_problem(app):
    not_json = await invoke.http("notifications_api", b"{oops")
    no_text = await invoke.http("notifications_api", {"to": {"all": True}})
    by_url = await invoke.http("notifications_api", {"to": {"serviceUrl": "https://evil.example/"}, "text": "x"})

    assert [r.status_code for r in (not_json, no_text, by_url)] == [400, 400, 400]
    assert "not JSON" in json.loads(not_json.get_body())["error"]["message"]
    assert "to: must be exactly one of" in json.loads(by_url.get_body())["error"]["message"]


async def test_unknown_id_is_404(app):
    response = await get_status("never-sent")

    assert response.status_code == 404


async def get_status(notification_id: str, detail: bool = False):
    return await invoke.http(
        "notifications_api",
        method="GET",
        route_params={"id": notification_id},
        params={"detail": "true"} if detail else None,
    )
