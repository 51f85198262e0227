"""Placeholders filled per recipient: the values are data, escaped; defaults; what is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proactive_bot.notifications.personalize import (
    Person,
    activity,
    document_problems,
    escape_markdown,
    fill,
    has_placeholders,
    person_of,
    pick_text,
    problems,
)
from proactive_bot.references import StoredReference

ANNA = Person(name="Anna Schmidt", given_name="Anna", locale="de", time_zone="Europe/Berlin")


def test_each_field_and_its_default():
    assert fill("Hi {{name}}", ANNA) == "Hi Anna Schmidt"
    assert fill("Hallo {{givenName|du}} ({{ locale }}, {{timeZone}})", ANNA) == "Hallo Anna (de, Europe/Berlin)"
    assert fill("Hi {{name|there}}!", Person()) == "Hi there!"
    assert fill("Hi{{name}}!", Person()) == "Hi!"  # no default, no value: nothing


def test_a_name_is_shown_as_written_never_rendered_or_run():
    hostile = Person(name="**x** [link](http://evil) <img src=x onerror=alert(1)> {{name}} ${foo}\n# big")
    filled = fill("Dear {{name}}", hostile)

    assert filled == (
        r"Dear \*\*x\*\* \[link\]\(http://evil\) &lt;img src=x onerror=alert\(1\)&gt; {{name}} ${foo} \# big"
    )  # the {{name}} inside the name stays as written: values are never read as templates
    assert escape_markdown("x" * 500) == "x" * 100


def test_a_card_is_filled_in_its_shown_strings_only():
    card = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
            "type": "AdaptiveCard",
            "body": [{"type": "TextBlock", "text": "For {{name}}"}, {"type": "Image", "url": "https://x/{{name}}"}],
            "actions": [{"type": "Action.Submit", "title": "Thanks {{givenName|}}", "data": {"who": "{{name}}"}}],
        },
    }
    original: dict[str, Any] = {"type": "message", "text": "", "attachments": [card]}

    filled = activity(original, ANNA)

    content = filled["attachments"][0]["content"]
    assert content["body"][0]["text"] == "For Anna Schmidt"
    assert content["body"][1]["url"] == "https://x/{{name}}"
    assert content["actions"][0] == {"type": "Action.Submit", "title": "Thanks Anna", "data": {"who": "{{name}}"}}
    assert original["attachments"][0]["content"]["body"][0]["text"] == "For {{name}}"  # a copy
    assert has_placeholders(original) and not has_placeholders({"type": "message", "text": "plain"})


def test_unknown_and_malformed_placeholders_are_named():
    assert problems("Hi {{name|there}} {{givenName}}", "text") == []
    assert problems("Hi {{nmae}}", "text") == [
        "text: unknown placeholder {{nmae}}; known: name, givenName, locale, timeZone"
    ]
    assert problems("{{name|a|b}}", "text")[0].startswith("text: malformed placeholder")
    assert problems("a { b } {single} }}{{", "text") == []  # not placeholders: left as written
    card = {"contentType": "application/vnd.microsoft.card.adaptive", "content": {"body": [{"text": "{{email}}"}]}}
    assert document_problems(None, [card]) == [
        "attachments/0/content/body/0/text: unknown placeholder {{email}}; known: name, givenName, locale, timeZone"
    ]


def test_a_stored_reference_gives_its_name_and_language():
    reference = {
        "channelId": "msteams",
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "conversation": {"id": "a:1"},
        "user": {"id": "29:1", "name": "王小明"},
        "locale": "zh-CN",
    }
    person = person_of(StoredReference.from_reference(reference, datetime(2026, 11, 26, tzinfo=UTC)))

    assert (person.name, person.locale, person.given_name) == ("王小明", "zh-Hans", "")
    assert person_of() == Person()


def test_the_text_for_each_locale():
    texts = {"en": "Hello", "de": "Hallo", "zh-Hans": "你好", "fr-CA": "Bonjour"}

    def pick(*tags: str, locale: str = "en") -> str:
        return pick_text(texts, Person(locale=locale, tags=tags))

    assert pick("de-AT", locale="de") == "Hallo"  # its language
    assert pick("zh-CN", locale="zh-Hans") == "你好"
    assert pick("fr-CA") == "Bonjour"  # a tag the bot has no catalog for still finds its text
    assert pick("fr-FR") == "Bonjour"
    assert pick("ja-JP") == "Hello"  # else English
    assert pick_text({"de": "Hallo", "zh-Hans": "你好"}, Person()) == "Hallo"  # else the first
