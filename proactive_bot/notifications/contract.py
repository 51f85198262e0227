"""Notifications: what other systems ask us to deliver, and the contract they use.

The contract is `schemas/notification.v1.schema.json`. Producers may enqueue the JSON as plain
UTF-8 text or as base64 of it (the Python queue SDK's TextBase64EncodePolicy, the Functions
default); host.json sets messageEncoding "none" so both reach us unchanged and we decode here.
What became of each notification is kept by `records`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from .. import json_input
from ..activities import message

MAX_MESSAGE_BYTES = 64 * 1024  # the queue's own limit; anything bigger did not come from a queue
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class InvalidNotification(ValueError):
    """The message can never be delivered as it is; it belongs in the poison queue."""


@dataclass(frozen=True)
class Notification:
    id: str
    to: dict[str, Any]
    text: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_broadcast(self) -> bool:
        """Its audience is walked in pages through the work queue (everyone, a team's roster, a
        list of users), rather than delivered by the invocation that took it."""
        return bool(self.to.get("all")) or "teamId" in self.to or "aadObjectIds" in self.to

    def activity(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"attachments": self.attachments} if self.attachments else {}
        return message(self.text or "", **extra)

    def document(self) -> dict[str, Any]:
        """The contract's JSON for this notification (what a producer would send)."""
        document: dict[str, Any] = {"id": self.id, "to": self.to}
        if self.text is not None:
            document["text"] = self.text
        if self.attachments:
            document["attachments"] = self.attachments
        return document


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


def validate(document: Any, fallback_id: str = "") -> Notification:
    errors = sorted(schema_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidNotification("; ".join(_describe(e) for e in errors[:5]))
    return Notification(
        id=document.get("id") or fallback_id or uuid.uuid4().hex,
        to=document["to"],
        text=document.get("text"),
        attachments=document.get("attachments", []),
    )


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
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
