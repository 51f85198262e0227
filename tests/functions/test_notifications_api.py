"""notifications_api/: the HTTP front door for other systems, and the status it reports."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, timedelta
from typing import Any

from proactive_bot import clock
from proactive_bot.notifications import contract
from proactive_bot.notifications.records import SEND_LEASE
from tests import activities
from tests.functions import invoke
from tests.support.notifications_api import enqueue_notification, get_status, run_notifications_queue


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
    # One recipient: delivered by the POST itself (the urgent lane, no queue hop).
    done = json.loads((await get_status(body["id"], detail=True)).get_body())
    assert done["state"] == "done" and done["class"] == "urgent"
    assert done["counts"]["sent"] == 1 and done["counts"]["pending"] == 0
    [row] = done["recipients"]
    assert row["conversationId"] == message["conversation"]["id"] and row["state"] == "sent"
    assert channel.texts() == ["Your order shipped"]
    # Its fallback queue message (hidden, there in case the request died first) is gone.
    assert (await app.notifications_queue.get_queue_properties()).approximate_message_count == 0


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
    bad_priority = await invoke.http("notifications_api", {"to": {"all": True}, "text": "x", "priority": "asap"})
    assert bad_priority.status_code == 400
    assert "priority: 'asap' is not one of" in json.loads(bad_priority.get_body())["error"]["message"]


async def test_unknown_id_is_404(app):
    response = await get_status("never-sent")

    assert response.status_code == 404


async def crashed_mid_send(app, channel, **extra) -> tuple[str, dict]:
    """A notification to one user, from the queue, whose sender died with the request on the
    wire: its row was claimed over two minutes ago (the lease) and never settled. Then the queue
    delivers it."""
    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    channel.clear()
    document = {
        "id": f"drill-{uuid.uuid4().hex[:8]}",
        "text": "Fire drill at 15:00",
        "to": {"conversationId": message["conversation"]["id"], "channelId": "msteams"},
        **extra,
    }
    await enqueue_notification(app, document)
    recipient = await app.references.get("msteams", message["conversation"]["id"])
    await app.notifications.claim(document["id"], recipient, clock.now() - SEND_LEASE - timedelta(seconds=1))
    await run_notifications_queue(app)
    return document["id"], message


async def resend(notification_id: str, state: str = "unconfirmed"):
    return await invoke.http(
        "notifications_api",
        method="POST",
        route_params={"id": notification_id, "action": "resend"},
        params={"state": state},
    )


async def test_an_unconfirmed_recipient_is_reported_and_resent_once_when_the_operator_asks(app, channel, work):
    notification_id, message = await crashed_mid_send(app, channel)
    reported = json.loads((await get_status(notification_id, detail=True)).get_body())
    assert channel.texts() == []  # never sent twice on its own: it may have arrived the first time
    assert reported["state"] == "done" and reported["counts"]["unconfirmed"] == 1
    [row] = reported["recipients"]
    assert row["state"] == "unconfirmed" and row["claimedAt"] is not None  # when it was on the wire

    answer = await resend(notification_id)
    await work.drain()

    assert answer.status_code == 202
    assert json.loads(answer.get_body()) == {
        "id": notification_id,
        "resending": 1,
        "status": f"http://localhost:7071/api/notifications/{notification_id}",
    }
    assert channel.texts(message["conversation"]["id"]) == ["Fire drill at 15:00"]
    after = json.loads((await get_status(notification_id, detail=True)).get_body())
    assert after["state"] == "done"
    assert (after["counts"]["sent"], after["counts"]["unconfirmed"], after["counts"]["resent"]) == (1, 0, 1)
    assert after["recipients"][0]["resends"] == 1
    again = await resend(notification_id)  # nothing unconfirmed is left: nothing more is sent
    await work.drain()
    assert json.loads(again.get_body())["resending"] == 0
    assert len(channel.texts(message["conversation"]["id"])) == 1


async def test_on_crash_resend_sends_again_by_itself(app, channel):
    notification_id, message = await crashed_mid_send(app, channel, onCrash="resend")

    status = json.loads((await get_status(notification_id, detail=True)).get_body())
    assert channel.texts(message["conversation"]["id"]) == ["Fire drill at 15:00"]  # at least once, as asked
    assert (status["counts"]["sent"], status["counts"]["unconfirmed"], status["counts"]["resent"]) == (1, 0, 1)


async def test_resend_takes_only_unconfirmed_and_known_notifications():
    assert (await resend("no-such-notification")).status_code == 404
    wrong = await resend("no-such-notification", state="sent")
    assert wrong.status_code == 400 and "unconfirmed" in json.loads(wrong.get_body())["error"]["message"]


async def test_delete_recalls_and_patch_edits_what_was_sent(app, channel, work):
    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    channel.clear()
    conversation = message["conversation"]["id"]
    document = {"id": "api-lifecycle", "to": {"aadObjectId": message["from"]["aadObjectId"]}, "text": "v0"}
    await invoke.http("notifications_api", document)
    await run_notifications_queue(app)
    [sent] = channel.delivered(conversation)

    edited = await invoke.http(
        "notifications_api", {"text": "v1"}, method="PATCH", route_params={"id": "api-lifecycle"}
    )
    await work.drain()
    after_edit = json.loads((await get_status("api-lifecycle", detail=True)).get_body())
    recalled = await invoke.http("notifications_api", method="DELETE", route_params={"id": "api-lifecycle"})
    await work.drain()
    after_recall = json.loads((await get_status("api-lifecycle", detail=True)).get_body())

    assert edited.status_code == 202 and json.loads(edited.get_body())["version"] == 1
    assert edited.headers["Location"].endswith("/api/notifications/api-lifecycle")
    assert after_edit["counts"]["updated"] == 1 and after_edit["recipients"][0]["activityId"] == sent.response_id
    assert recalled.status_code == 202
    assert after_recall["state"] == "cancelled" and after_recall["counts"]["recalled"] == 1
    assert after_recall["recipients"][0]["recalledAt"] is not None
    assert channel.shown(conversation) == []


async def test_lifecycle_refusals_404_409_and_400(app, channel):
    await invoke.http(
        "notifications_api", {"id": "api-cancelled", "to": {"all": True, "channelId": "nowhere"}, "text": "x"}
    )
    await invoke.http("notifications_api", method="DELETE", route_params={"id": "api-cancelled"})

    unknown = await invoke.http("notifications_api", method="DELETE", route_params={"id": "never-sent"})
    conflict = await invoke.http(
        "notifications_api", {"text": "y"}, method="PATCH", route_params={"id": "api-cancelled"}
    )
    bad = await invoke.http(
        "notifications_api", {"to": {"all": True}}, method="PATCH", route_params={"id": "api-cancelled"}
    )
    no_offset = await invoke.http(
        "notifications_api", {"to": {"all": True}, "text": "x", "notBefore": "2026-12-24T09:00:00"}
    )

    assert [r.status_code for r in (unknown, conflict, bad, no_offset)] == [404, 409, 400, 400]
    assert "offset" in json.loads(no_offset.get_body())["error"]["message"]
    status = json.loads((await get_status("api-cancelled")).get_body())
    assert status["state"] == "cancelled"


async def test_a_scheduled_notification_waits_for_the_timer(app, channel, work, monkeypatch):
    from datetime import datetime, timedelta

    from proactive_bot import clock

    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    channel.clear()
    now = datetime(2026, 12, 24, 7, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: now)
    document = {
        "id": "api-scheduled",
        "to": {"aadObjectId": message["from"]["aadObjectId"]},
        "text": "Merry",
        "notBefore": "2026-12-24T09:00:00+01:00",
    }
    await invoke.http("notifications_api", document)
    await run_notifications_queue(app)
    await invoke.timer("timer_notify")
    await work.drain()
    scheduled = json.loads((await get_status("api-scheduled")).get_body())

    monkeypatch.setattr(clock, "now", lambda: now + timedelta(hours=1, seconds=20))
    await invoke.timer("timer_notify")
    await work.drain()
    done = json.loads((await get_status("api-scheduled")).get_body())

    assert scheduled["state"] == "scheduled" and scheduled["notBefore"] == "2026-12-24T09:00:00+01:00"
    assert done["state"] == "done" and done["counts"]["sent"] == 1
    assert channel.texts(message["conversation"]["id"]) == ["Merry"]


async def test_resend_also_takes_a_send_whose_lease_ran_out_before_anyone_wrote_it_down(app, channel, work):
    # The sender died mid-send and no delivery has come by since: the row still says "sending",
    # past its lease. The status counts it unconfirmed, and so does a resend.
    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    channel.clear()
    document: dict[str, Any] = {
        "id": f"lapsed-{uuid.uuid4().hex[:8]}",
        "text": "Roll call",
        "to": {"conversationId": message["conversation"]["id"], "channelId": "msteams"},
    }
    # Recorded (as the front door does first), then its sender died: nothing started it yet.
    await app.notifications.create(contract.validate(document), clock.now(), source="http")
    recipient = await app.references.get("msteams", message["conversation"]["id"])
    await app.notifications.claim(document["id"], recipient, clock.now() - SEND_LEASE - timedelta(seconds=1))

    answer = json.loads((await resend(document["id"])).get_body())
    await work.drain()
    await enqueue_notification(app, document)
    await run_notifications_queue(app)  # the original queue message, late: nothing more is sent

    assert answer["resending"] == 1
    assert channel.texts(message["conversation"]["id"]) == ["Roll call"]
