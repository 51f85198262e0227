"""Notifications: what other systems ask us to deliver, and the contract they use.

The contract is `schemas/notification.v1.schema.json`. Producers may enqueue the JSON as plain
UTF-8 text or as base64 of it (the Python queue SDK's TextBase64EncodePolicy, the Functions
default); host.json sets messageEncoding "none" so both reach us unchanged and we decode here.
What became of each notification is kept by `records`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from .. import clock, json_input
from ..activities import message

MAX_MESSAGE_BYTES = 64 * 1024  # the queue's own limit; anything bigger did not come from a queue
MAX_SCHEDULE_AHEAD = timedelta(days=366)  # "up to a year ahead", a leap year's day included
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class InvalidNotification(ValueError):
    """The message can never be delivered as it is; it belongs in the poison queue."""


class OnCrash(enum.Enum):
    """For a recipient whose request was on the wire when its sender died."""

    REPORT = "report"  # unconfirmed, never sent again (at most once); the operator may resend
    RESEND = "resend"  # sent again once the lease runs out (at least once)


class Priority(enum.Enum):
    """What the producer asks for; lanes.lane_of turns it (with the audience) into a lane."""

    NORMAL = "normal"  # the audience decides: one recipient urgent, a walked audience bulk
    HIGH = "high"  # urgent whatever the audience


@dataclass(frozen=True)
class Notification:
    id: str
    to: dict[str, Any]
    text: str | dict[str, str] | None = None  # one text, or one per language tag (personalize picks)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    not_before: datetime | None = None  # scheduled: nothing is sent before
    expires_at: datetime | None = None  # recipients not reached by then are never sent
    on_crash: OnCrash = OnCrash.REPORT
    priority: Priority = Priority.NORMAL

    @property
    def is_broadcast(self) -> bool:
        """Its audience is walked in pages through the work queue (everyone, a team's roster, a
        list of users), rather than delivered by the invocation that took it."""
        return bool(self.to.get("all")) or "teamId" in self.to or "aadObjectIds" in self.to

    def scheduled(self, now: datetime) -> bool:
        """Whether it must still wait (a past notBefore means now)."""
        return self.not_before is not None and self.not_before > now

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def edited(self, text: str | dict[str, str] | None, attachments: list[dict[str, Any]] | None) -> Notification:
        """This notification with new content (what PATCH gives; None keeps that part)."""
        return replace(
            self,
            text=self.text if text is None else text,
            attachments=self.attachments if attachments is None else attachments,
        )

    def activity(self) -> dict[str, Any]:
        """The message as it goes to everyone alike: with per-language texts, the English one (else
        the first); `personalize.activity_for` makes each recipient's own."""
        extra: dict[str, Any] = {"attachments": self.attachments} if self.attachments else {}
        return message(self.default_text() or "", **extra)

    def default_text(self) -> str | None:
        if not isinstance(self.text, dict):
            return self.text
        english = [text for tag, text in self.text.items() if tag.lower().replace("_", "-").split("-")[0] == "en"]
        return (english or list(self.text.values()))[0]

    def document(self) -> dict[str, Any]:
        """The contract's JSON for this notification (what a producer would send)."""
        document: dict[str, Any] = {"id": self.id, "to": self.to}
        if self.text is not None:
            document["text"] = self.text
        if self.attachments:
            document["attachments"] = self.attachments
        if self.not_before is not None:
            document["notBefore"] = self.not_before.isoformat()
        if self.expires_at is not None:
            document["expiresAt"] = self.expires_at.isoformat()
        if self.on_crash is not OnCrash.REPORT:
            document["onCrash"] = self.on_crash.value
        if self.priority is not Priority.NORMAL:
            document["priority"] = self.priority.value
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Notification:
        """A notification from its (already validated) contract JSON, e.g. as stored."""
        return cls(
            id=document["id"],
            to=document["to"],
            text=document.get("text"),
            attachments=document.get("attachments", []),
            not_before=moment(document.get("notBefore")),
            expires_at=moment(document.get("expiresAt")),
            on_crash=OnCrash(document.get("onCrash", OnCrash.REPORT.value)),
            priority=Priority(document.get("priority", Priority.NORMAL.value)),
        )


# --- the contract ------------------------------------------------------------------------------


@cache
def schema_validator() -> Draft202012Validator:
    text = resources.files(__package__).joinpath("schemas/notification.v1.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def parse_queue_message(body: bytes, fallback_id: str = "") -> Notification:
    """Parse a queue message body (plain JSON or base64 JSON) into a validated Notification.

    `fallback_id` names a notification whose producer gave no `id` (the queue message id, which
    stays the same when the queue delivers the message again).
    """
    if len(body) > MAX_MESSAGE_BYTES:
        raise InvalidNotification(f"message is {len(body)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    text = _text(body).strip()
    if not text.startswith("{"):
        if not _BASE64.fullmatch(text):
            raise InvalidNotification("neither JSON nor base64-encoded JSON (a JSON object)")
        text = _text(_unbase64(text)).strip()
    try:
        document = json_input.loads(text)
    except json_input.JsonInputError as error:
        raise InvalidNotification(str(error)) from None
    return validate(document, fallback_id)


def validate(document: Any, fallback_id: str = "", now: datetime | None = None) -> Notification:
    errors = sorted(schema_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidNotification("; ".join(_describe(e) for e in errors[:5]))
    _check_placeholders(document.get("text"), document.get("attachments"))
    try:
        notification = Notification.from_document(
            {**document, "id": document.get("id") or fallback_id or uuid.uuid4().hex}
        )
    except ValueError as error:
        raise InvalidNotification(str(error)) from None
    now = now or clock.now()
    if notification.not_before is not None and notification.not_before > now + MAX_SCHEDULE_AHEAD:
        raise InvalidNotification("notBefore: at most a year ahead")
    if (
        notification.expires_at is not None
        and notification.not_before is not None
        and notification.expires_at <= notification.not_before
    ):
        raise InvalidNotification("expiresAt: must come after notBefore")
    return notification


def validate_edit(document: Any) -> tuple[str | dict[str, str] | None, list[dict[str, Any]] | None]:
    """A PATCH body: new `text` and/or `attachments`, checked by the contract's own rules."""
    if not isinstance(document, dict) or not document or set(document) - {"text", "attachments"}:
        raise InvalidNotification("an edit is an object with text and/or attachments, and nothing else")
    properties = schema_validator().schema["properties"]
    for name in document:
        errors = list(Draft202012Validator(properties[name]).iter_errors(document[name]))
        if errors:
            raise InvalidNotification(f"{name}: {errors[0].message}")
    _check_placeholders(document.get("text"), document.get("attachments"))
    return document.get("text"), document.get("attachments")


def _check_placeholders(text: Any, attachments: Any) -> None:
    """Every `{{...}}` must be one personalize fills (a typo would reach users as written)."""
    if "{{" not in json.dumps([text, attachments or []]):
        return  # the common case: nothing to fill, and personalize is not even loaded
    from . import personalize

    found = personalize.document_problems(text, attachments if isinstance(attachments, list) else None)
    if found:
        raise InvalidNotification("; ".join(found[:5]))


def moment(value: str | None) -> datetime | None:
    """An RFC 3339 time with an offset (the schema checked its form), as an aware datetime."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no offset")
    return parsed


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    if where in ("notBefore", "expiresAt") and error.validator == "pattern":
        return (
            f'{where}: an RFC 3339 time with an offset is needed, e.g. "2026-12-24T09:00:00+01:00" '
            f'or "2026-12-24T08:00:00Z" (got {error.instance!r})'
        )
    if error.validator == "oneOf" and list(error.absolute_path) == ["to"]:
        return (
            "to: must be exactly one of {userId, channelId}, {conversationId, channelId}, "
            "{aadObjectId}, {all: true}, {teamId}, {aadObjectIds: [...]} or {teamChannel: {teamId, channelId}}"
        )
    return f"{where}: {error.message}"


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # tolerate a BOM, as editors and some SDKs add one
    except UnicodeDecodeError as error:
        raise InvalidNotification(f"not UTF-8 text: {error}") from None


def _unbase64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidNotification("neither JSON nor base64-encoded JSON") from None
