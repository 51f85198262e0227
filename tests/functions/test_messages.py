"""messages/: the bot's endpoint, driven through its function.json like the Functions host does."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proactive_bot import bot, clock
from proactive_bot.delivery.lanes import Lane
from proactive_bot.reminders.rows import Owner
from tests import activities
from tests.conftest import ACCESS_TOKEN, APP_ID
from tests.functions import invoke
from tests.support.lanes import Asked

NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)  # 11:00:30 in Berlin


async def test_teams_install_gets_a_welcome_and_the_address_is_stored(app, channel):
    user = activities.teams_user()
    update = activities.teams_members_added(channel.url, user=user)

    response = await invoke.http("messages", update)

    assert response.status_code == 200
    conversation_id = update["conversation"]["id"]
    [welcome] = channel.activities(conversation_id)
    assert "Hi!" in welcome["text"] and "stop" in welcome["text"]
    assert welcome["recipient"]["id"] == user["id"]
    stored = await app.references.find_user("msteams", user["id"])
    assert stored.conversation_id == conversation_id
    assert stored.tenant_id == activities.TENANT  # Teams needs it for proactive sends


async def test_webchat_welcome_skips_the_bot_itself(app, channel):
    update = activities.webchat_members_added(channel.url)

    await invoke.http("messages", update)

    assert len(channel.activities(update["conversation"]["id"])) == 1


async def test_help_in_a_teams_channel_with_an_at_mention(app, channel):
    conversation = activities.teams_channel_conversation()
    message = activities.teams_message("help", channel.url, conversation=conversation)

    await invoke.http("messages", message)

    [reply] = channel.activities(conversation["id"])
    assert reply["text"] == bot.HELP
    assert reply["replyToId"] == message["id"]
    assert (await app.references.get("msteams", conversation["id"])).is_group


async def test_unknown_text_gets_a_hint(app, channel):
    message = activities.webchat_message("what's the weather", channel.url)

    await invoke.http("messages", message)

    assert channel.texts(message["conversation"]["id"]) == [bot.HINT]


async def test_remind_me_stores_a_reminder_and_confirms_in_the_users_zone(app, channel, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    message = activities.teams_message("remind me in 10 minutes to stretch", channel.url)  # Teams: Europe/Berlin

    await invoke.http("messages", message)

    [confirmation] = channel.texts(message["conversation"]["id"])
    assert confirmation == "OK, I'll remind you today at 11:10 (Europe/Berlin) to stretch."
    [entry] = (await app.reminders.agenda(Owner("msteams", message["from"]["id"]))).pending
    assert entry.due_at == NOW + timedelta(minutes=10)


async def test_a_reminders_buttons_reach_it_after_an_unrelated_message(app, channel, monkeypatch):
    """The dialog-dependent path: the proactive message opens an exchange; the answer comes back to it."""
    monkeypatch.setattr(clock, "now", lambda: NOW)
    user, conversation_id = activities.teams_user(), "a:1" + uuid.uuid4().hex
    conversation = {"conversationType": "personal", "tenantId": activities.TENANT, "id": conversation_id}

    async def say(text: str, value: dict | None = None) -> str:
        message = activities.teams_message(text, channel.url, user=user, conversation=conversation)
        if value is not None:  # a card click: Teams sends the Action.Submit data as `value`, no text
            message.pop("text")
            message["value"] = value
        before = len(channel.texts(conversation_id))
        await invoke.http("messages", message)
        return channel.texts(conversation_id)[before]

    await say("remind me in 5 minutes to stretch")
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=6))
    await invoke.timer("timer_notify")
    reminder = channel.activities(conversation_id)[-1]
    snooze_hour = reminder["attachments"][0]["content"]["actions"][2]["data"]

    assert await say("what's the weather") == bot.HINT  # the user is busy with something else
    assert await say("", value=snooze_hour) == "😴 Snoozed: I'll remind you again today at 12:06 to stretch."

    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=67))
    await invoke.timer("timer_notify")
    assert channel.texts(conversation_id)[-1] == "⏰ Reminder: stretch"
    assert await say("help") == bot.HELP
    assert await say("done") == "✅ Done: stretch."


async def test_a_card_click_in_a_teams_channel_reaches_its_reminder(app, channel, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    user, conversation = activities.teams_user(), activities.teams_channel_conversation()
    await invoke.http(
        "messages",
        activities.teams_message("remind me in 1 minute to ship it", channel.url, user=user, conversation=conversation),
    )
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=2))
    await invoke.http("messages", activities.teams_message("help", channel.url, conversation=conversation))
    await invoke.timer("timer_notify")
    done = channel.activities(conversation["id"])[-1]["attachments"][0]["content"]["actions"][0]["data"]
    click = activities.teams_message("", channel.url, user=user, conversation=conversation)
    click.pop("text")
    click["value"] = done

    await invoke.http("messages", click)

    assert channel.texts(conversation["id"])[-1] == "✅ Done: ship it."


async def test_unparseable_reminder_gets_an_explanation(app, channel):
    message = activities.teams_message("remind me sometime to nap", channel.url)

    await invoke.http("messages", message)

    assert "did not understand when" in channel.texts(message["conversation"]["id"])[0]


async def test_bad_requests_are_4xx_and_run_no_turn(app, channel):
    not_json = await invoke.http("messages", b"{nope")
    not_an_object = await invoke.http("messages", [1, 2])
    no_conversation = await invoke.http(
        "messages", {"type": "message", "channelId": "webchat", "serviceUrl": channel.url}
    )
    too_big = await invoke.http("messages", b"{" + b" " * 600_000 + b"}")

    assert [r.status_code for r in (not_json, not_an_object, no_conversation, too_big)] == [400, 400, 400, 413]
    assert "conversation.id" in json.loads(no_conversation.get_body())["error"]["message"]
    assert channel.received == []


async def test_a_reply_the_channel_refuses_is_logged_and_the_turn_still_counts(app, channel, caplog):
    message = activities.webchat_message("help", channel.url)
    channel.fail(message["conversation"]["id"], statuses=[500])

    response = await invoke.http("messages", message)

    assert response.status_code == 200
    assert "the reply did not reach the channel" in caplog.text
    assert await app.references.get("webchat", message["conversation"]["id"]) is not None


async def test_with_credentials_only_a_channel_token_runs_a_turn(authenticated_app, openid, channel):
    message = activities.teams_message("help", channel.url)
    token = openid.channel_token(APP_ID, channel.url)
    channel.expect_bearer(ACCESS_TOKEN)
    try:
        refused = await invoke.http("messages", message)
        accepted = await invoke.http("messages", message, headers={"Authorization": f"Bearer {token}"})
    finally:
        channel.expect_bearer(None)  # the stub is shared with local-mode tests

    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert json.loads(refused.get_body()) == {"error": {"message": "unauthorized"}}
    assert channel.texts(message["conversation"]["id"]) == [bot.HELP]


# --- Hostile activities: whatever arrives, the answer is a 4xx or a handled turn ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
INVOKE_NAMES = st.sampled_from(
    ["adaptiveCard/action", "signin/verifyState", "signin/tokenExchange", "healthCheck"]
) | st.text(max_size=10)
FIELDS = [
    "type",
    "id",
    "serviceUrl",
    "channelId",
    "from",
    "recipient",
    "conversation",
    "text",
    "channelData",
    "entities",
    "membersAdded",
    "timestamp",
    "attachments",
    "value",
    "replyToId",
]


@st.composite
def hostile_activities(draw, service_url: str) -> dict:
    """A real activity with some fields dropped, replaced by random JSON, or nested ids broken."""
    kind = draw(st.sampled_from(["teams", "teams_group", "webchat", "members_added", "invoke"]))
    if kind == "teams":
        activity = activities.teams_message(draw(st.text(max_size=40)), service_url)
    elif kind == "teams_group":
        activity = activities.teams_message("help", service_url, conversation=activities.teams_channel_conversation())
    elif kind == "webchat":
        activity = activities.webchat_message(
            draw(st.sampled_from(["help", "remind me in 5 minutes to x", "hi"])), service_url
        )
    elif kind == "members_added":
        activity = activities.teams_members_added(service_url)
    else:
        activity = {**activities.webchat_message("x", service_url), "type": "invoke", "name": draw(INVOKE_NAMES)}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            activity.pop(field, None)
        else:
            activity[field] = draw(json_values)
    for holder in draw(st.lists(st.sampled_from(["from", "recipient", "conversation"]), max_size=2, unique=True)):
        if isinstance(activity.get(holder), dict):
            activity[holder] = {
                **activity[holder],
                "id": draw(json_values | st.text(alphabet=st.characters(codec="utf-8"), max_size=300)),
            }
    return activity


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
async def test_hostile_activities_get_a_4xx_or_a_handled_turn(app, channel, data):
    activity = data.draw(hostile_activities(channel.url))

    response = await invoke.http("messages", activity)

    assert response.status_code in (200, 400, 413) or activity.get("type") == "invoke"
    body = json.loads(response.get_body() or b"null")
    assert "Traceback" not in json.dumps(body)
    if response.status_code == 200:
        stored = await app.references.get(activity["channelId"], activity["conversation"]["id"])
        reference = stored.reference
        assert reference["serviceUrl"] == channel.url
        assert all(isinstance(reference[k]["id"], str) and reference[k]["id"] for k in ("user", "bot", "conversation"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
async def test_random_bodies_are_4xx(app, channel, body):
    response = await invoke.http("messages", body)

    assert 400 <= response.status_code < 500
    assert channel.received == []


async def test_a_teams_activity_whose_channel_data_is_not_an_object_is_400(app, channel):
    # Found by bench/fuzz.py: botbuilder calls .get() on both, mid-turn.
    channel_data: object
    for channel_data in ([1], "x", {"tenant": "x"}, {"tenant": []}):
        message = {**activities.teams_message("hi", channel.url), "channelData": channel_data}

        response = await invoke.http("messages", message)

        assert response.status_code == 400
    assert channel.received == []


async def test_a_teams_channel_message_without_text_or_with_null_entities_gets_the_hint(app, channel):
    # Found by the hypothesis test above and bench/fuzz.py: botbuilder's mention removal fails
    # on a missing text, and entities may hold nulls.
    without_text = activities.teams_message("help", channel.url, conversation=activities.teams_channel_conversation())
    del without_text["text"]
    null_entity = activities.teams_message("x", channel.url, conversation=activities.teams_channel_conversation())
    null_entity["entities"].append(None)

    for message in (without_text, null_entity):
        response = await invoke.http("messages", message)

        assert response.status_code == 200
        assert channel.texts(message["conversation"]["id"]) == [bot.HINT]


async def test_null_members_and_invoke_errors_are_handled_turns(app, channel):
    # Found by probing what botbuilder's handlers read: nulls in lists, and an invoke error body
    # holding a Python exception.
    install = {**activities.teams_members_added(channel.url), "membersAdded": [None]}
    card_action = {**activities.webchat_message("x", channel.url), "type": "invoke", "name": "adaptiveCard/action"}
    token_exchange = {**card_action, "name": "signin/tokenExchange"}

    installed = await invoke.http("messages", install)
    acted = await invoke.http("messages", card_action)
    exchanged = await invoke.http("messages", token_exchange)

    assert installed.status_code == 200
    assert exchanged.status_code == 501  # no sign-in here: the protocol's "not implemented"
    assert acted.status_code == 400
    assert json.loads(acted.get_body()) == {
        "statusCode": 400,
        "type": "application/vnd.microsoft.error",
        "value": {"code": "BadRequest", "message": "Missing value property"},
    }


async def test_a_teams_read_receipt_marks_the_notifications_read(app, channel, work):
    import json

    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    channel.clear()
    document = {"id": "read-me", "to": {"aadObjectId": message["from"]["aadObjectId"]}, "text": "News"}
    await invoke.http("notifications_api", document)
    from tests.support.notifications_api import get_status, run_notifications_queue

    await run_notifications_queue(app)
    [sent] = channel.delivered()
    receipt: dict[str, Any] = {
        **{
            k: message[k]
            for k in ("serviceUrl", "channelId", "from", "conversation", "recipient", "channelData")
            if k in message
        },
        "type": "event",
        "id": "receipt-1",
        "name": "application/vnd.microsoft.readReceipt",
        "value": {"lastReadMessageId": sent.response_id},
    }

    answered = await invoke.http("messages", receipt)

    assert answered.status_code == 200
    assert channel.received == [sent]  # a receipt gets no reply
    status = json.loads((await get_status("read-me", detail=True)).get_body())
    assert status["counts"]["read"] == 1 and status["recipients"][0]["readAt"] is not None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "1700000000001",
        {},
        {"lastReadMessageId": None},
        {"lastReadMessageId": 17},
        {"lastReadMessageId": "x" * 5000},
        {"lastReadMessageId": "not-a-number"},
    ],
    ids=["no value", "value a string", "no id", "id null", "id a number", "id huge", "id unordered"],
)
async def test_a_malformed_read_receipt_is_answered_and_marks_nothing(app, channel, value):
    from tests.support.notifications_api import get_status, run_notifications_queue

    message = activities.teams_message("hi", channel.url)
    await invoke.http("messages", message)
    document: dict[str, Any] = {
        "id": f"unread-{uuid.uuid4().hex[:8]}",
        "to": {"aadObjectId": message["from"]["aadObjectId"]},
        "text": "News",
    }
    await invoke.http("notifications_api", document)
    await run_notifications_queue(app)
    channel.clear()
    receipt = {
        **{k: message[k] for k in ("serviceUrl", "channelId", "from", "conversation", "recipient", "channelData")},
        "type": "event",
        "id": "receipt-bad",
        "name": "application/vnd.microsoft.readReceipt",
        "value": value,
    }

    answered = await invoke.http("messages", receipt)

    assert answered.status_code == 200
    assert channel.received == []
    status = json.loads((await get_status(document["id"])).get_body())
    assert status["counts"]["read"] == 0 and status["counts"]["sent"] == 1


async def test_a_reply_within_a_turn_takes_its_tenants_slot_in_the_interactive_lane(app, channel, monkeypatch):
    asked = Asked(app.limiter, monkeypatch)

    await invoke.http("messages", activities.teams_message("help", channel.url))

    assert asked.lanes() == Counter({(Lane.INTERACTIVE, activities.TENANT): 1})
