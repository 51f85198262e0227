"""The notification contract: what producers may enqueue, and the reasons bad input gets."""

from __future__ import annotations

import base64
import json

import pytest

from proactive_bot.notifications import InvalidNotification, decode

CARD = {
    "contentType": "application/vnd.microsoft.card.adaptive",
    "content": {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Build failed"}]},
}


@pytest.mark.parametrize(
    "document",
    [
        {"to": {"userId": "29:1abc", "channelId": "msteams"}, "text": "Your build passed"},
        {"to": {"conversationId": "19:x@thread.tacv2", "channelId": "msteams"}, "text": "Deploy done", "id": "deploy-42"},
        {"to": {"aadObjectId": "c7e1f7d0-0000-4000-8000-000000000001"}, "attachments": [CARD]},
        {"to": {"all": True}, "text": "Maintenance tonight at 22:00"},
        {"to": {"all": True, "channelId": "msteams", "tenantId": "72f988bf"}, "text": "Hi", "version": 1},
    ],
)
def test_valid_notifications_in_plain_and_base64(document):
    raw = json.dumps(document).encode()
    for body in (raw, base64.b64encode(raw), b"\xef\xbb\xbf" + raw, b"  " + raw + b"\n"):
        notification = decode(body)
        assert notification.to == document["to"]
        assert notification.text == document.get("text")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"hello", "neither JSON nor base64"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe{", "not UTF-8"),
        (base64.b64encode(b"\xff\xfe"), "not UTF-8"),
        (json.dumps({"text": "no recipient"}).encode(), "'to' is a required property"),
        (json.dumps({"to": {"userId": "u"}, "text": "x"}).encode(), "to: must be exactly one of"),
        (json.dumps({"to": {"all": True}}).encode(), "(root)"),
        (json.dumps({"to": {"all": True}, "text": "x", "serviceUrl": "https://evil"}).encode(), "Additional properties"),
        (json.dumps({"to": {"all": False}, "text": "x"}).encode(), "to: must be exactly one of"),
        (b"{}" + b" " * 70000, "limit"),
    ],
)
def test_malformed_notifications_say_why(body, reason):
    with pytest.raises(InvalidNotification, match=None) as caught:
        decode(body)
    assert reason in str(caught.value)
