"""The notification contract: what producers may enqueue, and the reasons bad input gets."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proactive_bot.notifications.contract import (
    InvalidNotification,
    Notification,
    Priority,
    parse_queue_message,
    validate,
    validate_edit,
)

CARD = {
    "contentType": "application/vnd.microsoft.card.adaptive",
    "content": {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Build failed"}]},
}


@pytest.mark.parametrize(
    "document",
    [
        {"to": {"userId": "29:1abc", "channelId": "msteams"}, "text": "Your build passed"},
        {
            "to": {"conversationId": "19:x@thread.tacv2", "channelId": "msteams"},
            "text": "Deploy done",
            "id": "deploy-42",
        },
        {"to": {"aadObjectId": "c7e1f7d0-0000-4000-8000-000000000001"}, "attachments": [CARD]},
        {"to": {"all": True}, "text": "Maintenance tonight at 22:00"},
        {"to": {"all": True, "channelId": "msteams", "tenantId": "72f988bf"}, "text": "Hi", "version": 1},
        {"to": {"all": True, "includeRoster": True}, "text": "Everyone, chats created where needed"},
        {"to": {"teamId": "19:abc@thread.tacv2"}, "text": "Team meeting at 10"},
        {"to": {"aadObjectIds": ["c7e1f7d0-0000-4000-8000-000000000001"], "tenantId": "72f988bf"}, "text": "Hi"},
        {"to": {"teamChannel": {"teamId": "19:abc@thread.tacv2", "channelId": "19:def@thread.tacv2"}}, "text": "Post"},
        {
            "to": {
                "teamChannel": {"teamId": "19:a@thread.tacv2", "channelId": "19:d@thread.tacv2", "replyTo": "post-1"}
            },
            "text": "Reply",
        },
    ],
)
def test_valid_notifications_in_plain_and_base64(document):
    raw = json.dumps(document).encode()
    for body in (raw, base64.b64encode(raw), b"\xef\xbb\xbf" + raw, b"  " + raw + b"\n"):
        notification = parse_queue_message(body)
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
        (
            json.dumps({"to": {"all": True}, "text": "x", "serviceUrl": "https://evil"}).encode(),
            "Additional properties",
        ),
        (json.dumps({"to": {"all": False}, "text": "x"}).encode(), "to: must be exactly one of"),
        (b"{}" + b" " * 70000, "limit"),
        (
            json.dumps({"to": {"teamId": "19:a", "channelId": "msteams"}, "text": "x"}).encode(),
            "to: must be exactly one of",
        ),
        (json.dumps({"to": {"aadObjectIds": []}, "text": "x"}).encode(), "to: must be exactly one of"),
        (json.dumps({"to": {"teamChannel": {"teamId": "19:a"}}, "text": "x"}).encode(), "to: must be exactly one of"),
    ],
)
def test_malformed_notifications_say_why(body, reason):
    with pytest.raises(InvalidNotification, match=None) as caught:
        parse_queue_message(body)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"to": {"all": true}, "text": "x", "attachments": [{"contentType": "a", "content": NaN}]}',
            "NaN is not a JSON number",
        ),
        (b'{"to": {"all": true}, "text": "x", "text": "y"}', "'text' appears twice"),
        (b'{"to": {"all": true}, "text": "\\ud800"}', "lone surrogate"),
        (b'{"to": {"all": true}, "text": "x", "id": ' + b"1" * 5000 + b"}", "not JSON"),
        (
            b'{"to": {"all": true}, "attachments": [{"contentType": "a", "content": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}]}",
            "nested deeper",
        ),
        (
            b'{"to": {"all": true}, "attachments": [{"contentType": "a", "content": ' + b"[" * 70 + b"]" * 70 + b"}]}",
            "nested deeper",
        ),
        (b"[1, 2]", "neither JSON nor base64"),
        (b"\x00\x01", "neither JSON nor base64"),
        (base64.b64encode(b"[1, 2]"), "is not of type 'object'"),
        (b"AAAA", "not JSON"),  # base64 of three NUL bytes
    ],
)
def test_json_that_other_parsers_read_differently_is_refused(body, reason):
    with pytest.raises(InvalidNotification) as caught:
        parse_queue_message(body)
    assert reason in str(caught.value)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_give_a_notification_or_a_reason(body):
    for candidate in (body, base64.b64encode(body)):
        try:
            parse_queue_message(candidate)
        except InvalidNotification as error:
            assert str(error)


recipients = st.one_of(
    st.fixed_dictionaries({"userId": st.text(min_size=1, max_size=40), "channelId": st.text(min_size=1, max_size=20)}),
    st.fixed_dictionaries({"aadObjectId": st.uuids().map(str)}),
    st.fixed_dictionaries({"all": st.just(True)}, optional={"channelId": st.sampled_from(["msteams", "webchat"])}),
)


@given(
    to=recipients,
    text=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=200),
    as_base64=st.booleans(),
)
def test_every_valid_notification_is_read_back_exactly(to, text, as_base64):
    document = {"to": to, "text": text}
    raw = json.dumps(document, ensure_ascii=as_base64).encode()

    notification = parse_queue_message(base64.b64encode(raw) if as_base64 else raw)

    assert (notification.to, notification.text) == (to, text)


# ---- notBefore, expiresAt, edits ---------------------------------------------------------------

_NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment, utc",
    [
        ("2026-12-24T09:00:00+01:00", datetime(2026, 12, 24, 8, 0, tzinfo=UTC)),
        ("2026-12-24T08:00:00Z", datetime(2026, 12, 24, 8, 0, tzinfo=UTC)),
        ("2026-12-24T03:00:00.5-05:00", datetime(2026, 12, 24, 8, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_not_before_is_a_moment_with_an_offset_and_reads_back(moment, utc):
    notification = validate({"to": {"all": True}, "text": "x", "notBefore": moment}, now=_NOW)

    assert notification.not_before == utc
    assert validate(notification.document(), now=_NOW) == notification
    assert notification.scheduled(_NOW) and not notification.scheduled(utc)


@pytest.mark.parametrize(
    "extra, reason",
    [
        ({"notBefore": "2026-12-24T09:00:00"}, "notBefore: an RFC 3339 time with an offset is needed"),
        ({"notBefore": "24.12.2026 09:00"}, "notBefore: an RFC 3339 time with an offset is needed"),
        ({"expiresAt": "2026-12-24"}, "expiresAt: an RFC 3339 time with an offset is needed"),
        ({"notBefore": "2026-02-30T09:00:00Z"}, "not a valid RFC 3339 time"),
        ({"notBefore": "2028-01-01T00:00:00Z"}, "at most a year ahead"),
        ({"notBefore": "2026-12-24T09:00:00Z", "expiresAt": "2026-12-24T08:00:00Z"}, "must come after notBefore"),
    ],
)
def test_bad_times_are_refused_with_a_reason(extra, reason):
    with pytest.raises(InvalidNotification, match=reason):
        validate({"to": {"all": True}, "text": "x", **extra}, now=_NOW)


def test_a_past_not_before_means_now_and_expiry_is_a_moment():
    notification = validate(
        {"to": {"all": True}, "text": "x", "notBefore": "2020-01-01T00:00:00Z", "expiresAt": "2026-12-01T12:05:00Z"},
        now=_NOW,
    )

    assert not notification.scheduled(_NOW)
    assert not notification.expired(_NOW) and notification.expired(_NOW + timedelta(minutes=5))


def test_an_edit_is_text_and_or_attachments_by_the_contracts_rules():
    card = {"contentType": "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard"}}

    assert validate_edit({"text": "new"}) == ("new", None)
    assert validate_edit({"attachments": [card]}) == (None, [card])
    bad: object
    for bad in ({}, {"text": ""}, {"to": {"all": True}}, {"text": "x", "id": "y"}, [], {"attachments": []}):
        with pytest.raises(InvalidNotification):
            validate_edit(bad)


def test_aad_object_ids_take_up_to_ten_thousand():
    from proactive_bot.notifications.contract import validate

    ids = [f"c7e1f7d0-0000-4000-8000-{n:012d}" for n in range(10_001)]
    assert len(validate({"to": {"aadObjectIds": ids[:10_000]}, "text": "x"}).to["aadObjectIds"]) == 10_000
    with pytest.raises(InvalidNotification):
        validate({"to": {"aadObjectIds": ids}, "text": "x"})


def test_placeholders_and_per_language_texts_are_part_of_version_1():
    one = validate({"to": {"all": True}, "text": "Hi {{name|there}}"})
    variants = validate(
        {"to": {"all": True}, "text": {"en": "Hi {{name}}", "zh-Hans": "{{name}}，你好", "de-DE": "Hallo"}}
    )

    assert one.text == "Hi {{name|there}}"
    assert variants.activity()["text"] == "Hi {{name}}"  # everyone alike: the English one
    assert validate(variants.document()) == variants
    assert validate_edit({"text": {"de": "Neu"}}) == ({"de": "Neu"}, None)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"text": "Hi {{nmae}}"}, "text: unknown placeholder {{nmae}}"),
        ({"text": {"en": "ok", "de": "Hallo {{vorname}}"}}, "text/de: unknown placeholder {{vorname}}"),
        ({"text": {"not a tag": "x"}}, "text: "),
        ({"text": {}}, "text: "),
        (
            {
                "attachments": [
                    {
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "content": {
                            "type": "AdaptiveCard",
                            "body": [{"type": "TextBlock", "text": "{{ name | a | b }}"}],
                        },
                    }
                ]
            },
            "attachments/0/content/body/0/text: malformed placeholder",
        ),
    ],
)
def test_placeholders_and_variants_are_checked_on_intake(document, reason):
    with pytest.raises(InvalidNotification, match=reason.replace("{", r"\{").replace("}", r"\}").replace("|", r"\|")):
        validate({"to": {"all": True}, **document})


def test_priority_is_normal_unless_high_is_asked_and_reads_back():
    old = validate({"id": "n", "to": {"all": True}, "text": "x"})  # written before priority existed
    high = validate({"id": "h", "to": {"all": True}, "text": "x", "priority": "high"})

    assert old.priority is Priority.NORMAL and "priority" not in old.document()
    assert high.priority is Priority.HIGH and high.document()["priority"] == "high"
    assert Notification.from_document(high.document()) == high
    assert parse_queue_message(json.dumps(high.document()).encode()) == high


@pytest.mark.parametrize("priority", ["urgent", "HIGH", 1, None, ""])
def test_an_unknown_priority_is_refused_with_a_reason(priority):
    with pytest.raises(InvalidNotification, match=r"priority: .* is not one of \['normal', 'high'\]"):
        validate({"to": {"all": True}, "text": "x", "priority": priority})
