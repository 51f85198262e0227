"""Placeholders in a notification, filled per recipient: `{{name|there}}` in `text` and in an
Adaptive Card's strings.

    {{name}}               the recipient's display name, as the channel or roster gives it
    {{name|there}}         ... or "there" when none is known
    {{givenName|...}}      the given name, where the channel or roster gives one
    {{locale|...}}         the language the bot speaks with them (i18n: "de", "zh-Hans", "en")
    {{timeZone|...}}       their time zone, where known

A placeholder without a default and without a value becomes "" (so `Hi{{name| }}`-style spacing
is the producer's choice). Anything else between `{{` and `}}` is refused on intake (`problems`).

Names are data: they are put into the text by substitution, never read as a template or code,
and escaped for the format they land in (Markdown in `text` and a card's TextBlocks: its
punctuation backslash-escaped, `<`, `>`, `&` as HTML entities, line breaks flattened), so a
display name like `**Admin** <script>` shows as written and renders nothing. Defaults come from
the producer and are kept as written.

Pure: no I/O, no SDK; the send paths (fanout, lifecycle edits, channel posts) call `activity`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FIELDS = ("name", "givenName", "locale", "timeZone")
MAX_VALUE = 100  # characters of a name put into a message
# {{ field }} or {{ field | default }}; the default may hold anything but braces and pipes.
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*(?:\|([^{}|]*))?\}\}")
_ANY = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_MARKDOWN = re.compile(r"([\\`*_\[\]()#+!|~])")
_SPACE = re.compile(r"\s+")
# Card properties that are not shown text: left as they are (ids, types, URLs, action data).
_NOT_TEXT = frozenset({"type", "version", "$schema", "id", "url", "iconUrl", "style", "data", "contentType"})


@dataclass(frozen=True)
class Person:
    """What the app knows of one recipient ("" where it knows nothing)."""

    name: str = ""
    given_name: str = ""
    locale: str = ""  # the language the bot speaks with them (i18n: "en", "de", "zh-Hans")
    time_zone: str = ""
    tags: tuple[str, ...] = ()  # their locale tags, most preferred first (chosen, then the channel's)

    def value(self, field: str) -> str:
        return {"name": self.name, "givenName": self.given_name, "locale": self.locale, "timeZone": self.time_zone}[
            field
        ]


def person_of(recipient: Any = None, member: Any = None) -> Person:
    """What a StoredReference (and, for a chat just created, the RosterMember) tell of a person;
    neither: nobody in particular (a channel post), so every placeholder takes its default."""
    language = getattr(recipient, "language", "")
    reference = getattr(recipient, "reference", None) or {}
    tags = (getattr(recipient, "chosen_language", ""), reference.get("locale") or "")
    return Person(
        name=getattr(recipient, "user_name", "") or getattr(member, "name", ""),
        given_name=getattr(recipient, "given_name", "") or getattr(member, "given_name", ""),
        locale=language if isinstance(language, str) else "",
        time_zone=getattr(recipient, "time_zone", ""),
        tags=tuple(tag for tag in tags if isinstance(tag, str) and tag),
    )


def problems(text: str, where: str) -> list[str]:
    """What is wrong with the placeholders of one string (empty when all are known)."""
    found = []
    for match in _ANY.finditer(text):
        placeholder = _PLACEHOLDER.fullmatch(match[0])
        if placeholder is None:
            found.append(
                f"{where}: malformed placeholder {match[0][:60]!r}; write {{{{name}}}} or {{{{name|default}}}}"
            )
        elif placeholder[1] not in FIELDS:
            found.append(f"{where}: unknown placeholder {{{{{placeholder[1]}}}}}; known: {', '.join(FIELDS)}")
    return found


def document_problems(text: str | dict[str, str] | None, attachments: list[dict[str, Any]] | None) -> list[str]:
    """Placeholder problems anywhere a notification (or an edit of one) may hold them."""
    texts = text if isinstance(text, dict) else {"": text} if isinstance(text, str) else {}
    found = [problem for tag, one in texts.items() for problem in problems(one, f"text/{tag}" if tag else "text")]
    for where, value in _card_strings(attachments or []):
        found += problems(value, where)
    return found


def has_placeholders(activity: dict[str, Any]) -> bool:
    """Whether an activity needs filling per recipient (else one activity serves everyone)."""
    texts = [activity.get("text") or ""] + [value for _, value in _card_strings(activity.get("attachments") or [])]
    return any(_PLACEHOLDER.search(text) for text in texts)


def is_personal(notification: Any) -> bool:
    """Whether a Notification differs per recipient (per-language texts or placeholders)."""
    return isinstance(notification.text, dict) or has_placeholders(notification.activity())


def activity_for(notification: Any, person: Person) -> dict[str, Any]:
    """A Notification's message for one person: the text of their language, placeholders filled."""
    base = notification.activity()
    if isinstance(notification.text, dict):
        base = {**base, "text": pick_text(notification.text, person)}
    return activity(base, person)


def pick_text(texts: dict[str, str], person: Person) -> str:
    """The text for the person's locale: their exact tag, else their language (zh-CN finds zh-Hans,
    de-AT finds de), else English, else the first given."""
    from ..i18n.locales import supported

    def language(tag: str) -> str:
        return supported(tag) or tag.lower().replace("_", "-").split("-")[0]

    by_tag = {tag.lower().replace("_", "-"): text for tag, text in texts.items()}
    for tag in person.tags:
        if tag.lower().replace("_", "-") in by_tag:
            return by_tag[tag.lower().replace("_", "-")]
    for want in (*(language(tag) for tag in (*person.tags, person.locale) if tag), "en"):
        for tag, text in texts.items():
            if language(tag) == want:
                return text
    return next(iter(texts.values()))


def activity(activity: dict[str, Any], person: Person) -> dict[str, Any]:
    """The activity for one person: every placeholder filled (a copy; the input is unchanged)."""
    if not has_placeholders(activity):
        return activity
    filled = dict(activity)
    if isinstance(activity.get("text"), str):
        filled["text"] = fill(activity["text"], person)
    if activity.get("attachments"):
        filled["attachments"] = [
            {**a, "content": _fill_card(a["content"], person)} if _is_card(a) else a for a in activity["attachments"]
        ]
    return filled


def fill(template: str, person: Person) -> str:
    """A string with its placeholders replaced by the person's values, escaped for Markdown."""

    def one(match: re.Match[str]) -> str:
        value = person.value(match[1]) if match[1] in FIELDS else ""
        return escape_markdown(value) if value else (match[2] or "").strip()

    return _PLACEHOLDER.sub(one, template)


def escape_markdown(value: str) -> str:
    """A value shown as written in Markdown (and the HTML Teams also reads): nothing in it renders."""
    value = _SPACE.sub(" ", value).strip()[:MAX_VALUE]
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", value)


def _is_card(attachment: Any) -> bool:
    return (
        isinstance(attachment, dict)
        and attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
        and isinstance(attachment.get("content"), dict)
    )


def _card_strings(attachments: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for index, attachment in enumerate(attachments):
        if _is_card(attachment):
            yield from _strings(attachment["content"], f"attachments/{index}/content")


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strings(item, f"{where}/{index}")
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in _NOT_TEXT:
                yield from _strings(value, f"{where}/{key}")


def _fill_card(node: Any, person: Person) -> Any:
    if isinstance(node, str):
        return fill(node, person)
    if isinstance(node, list):
        return [_fill_card(item, person) for item in node]
    if isinstance(node, dict):
        return {key: value if key in _NOT_TEXT else _fill_card(value, person) for key, value in node.items()}
    return node
