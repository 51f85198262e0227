"""The Connector REST client: activities go out as exactly the JSON botbuilder would send."""

from __future__ import annotations

import pytest
from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity, CardAction, HeroCard, SuggestedActions

from proactive_bot.channel import parse_activity
from proactive_bot.channel.connector import activity_json, retry_after_seconds
from tests import activities

CARD = {
    "contentType": "application/vnd.microsoft.card.adaptive",
    "content": {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": "Build failed"}],
        "actions": [{"type": "Action.Submit", "title": "Retry", "data": {"verb": "retry", "n": 2}}],
    },
}


def addressed(activity: Activity) -> Activity:
    """What send_activity puts on the wire: the activity addressed to a real Teams conversation."""
    inbound = parse_activity(activities.teams_message("hi", "https://smba.trafficmanager.net/emea/"))
    return TurnContext.apply_conversation_reference(activity, TurnContext.get_conversation_reference(inbound))


@pytest.mark.parametrize(
    "activity",
    [
        MessageFactory.text("Build 42 passed"),
        MessageFactory.suggested_actions(
            [
                CardAction(type="imBack", title="Done", value="done"),
                CardAction(type="messageBack", title="Snooze", value={"id": 7}, text="snooze"),
            ],
            "⏰ Reminder: stretch",
        ),
        MessageFactory.attachment(
            CardFactory.hero_card(HeroCard(title="Hi", buttons=[CardAction(type="openUrl", value="https://x.example")]))
        ),
        Activity().deserialize(
            {"type": "message", "attachments": [CARD], "channelData": {"notification": {"alert": True}}}
        ),
        Activity().deserialize({"type": "typing"}),
        Activity().deserialize(
            {
                "type": "message",
                "text": "at",
                "timestamp": "2026-11-26T10:00:00.123Z",
                "entities": [{"type": "mention"}],
            }
        ),
        Activity(
            type="message",
            text="x",
            suggested_actions=SuggestedActions(actions=[], to=["29:1a"]),
            input_hint="acceptingInput",
        ),
    ],
    ids=["text", "suggested-actions", "hero-card", "adaptive-card", "typing", "timestamp", "empty-actions"],
)
def test_same_json_as_msrest(activity):
    activity = addressed(activity)

    assert activity_json(activity) == activity.serialize()


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),  # RFC 9110's preferred HTTP-date
        ("Friday, 15-Jan-27 08:01:00 GMT", 60.0),  # obsolete RFC 850 form, still to be accepted
        ("Fri Jan 15 08:00:05 2027", 5.0),  # asctime form (no zone: GMT)
        ("Fri, 15 Jan 2027 07:59:00 GMT", 0.0),  # already past: try now
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header, seconds):
    assert retry_after_seconds(header, now=NOW) == seconds
