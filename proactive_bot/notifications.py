"""Notifications: messages other systems ask us to deliver, and the contract they use.

The contract is `schemas/notification.v1.schema.json`. Producers may enqueue the JSON as plain
UTF-8 text or as base64 of it (the Python queue SDK's TextBase64EncodePolicy, the Functions
default); host.json sets messageEncoding "none" so both reach us unchanged and we decode here.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from . import json_input
from .delivery import Delivery, Outcome, message
from .references import ReferenceStore, StoredReference

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024  # the queue's own limit; anything bigger did not come from a queue
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class InvalidNotification(ValueError):
    """The message can never be delivered as it is; it belongs in the poison queue."""


class DeliveryIncomplete(RuntimeError):
    """Some recipients could not be reached now; raising lets the queue deliver the message again."""


@dataclass(frozen=True)
class Notification:
    to: dict[str, Any]
    text: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    id: str | None = None

    def activity(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"attachments": self.attachments} if self.attachments else {}
        return message(self.text or "", **extra)


@cache
def schema_validator() -> Draft202012Validator:
    text = resources.files(__package__).joinpath("schemas/notification.v1.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def decode(body: bytes) -> Notification:
    """Parse a queue message body (plain JSON or base64 JSON) into a validated Notification."""
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
    return validate(document)


def validate(document: Any) -> Notification:
    errors = sorted(schema_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidNotification("; ".join(_describe(e) for e in errors[:5]))
    return Notification(
        to=document["to"],
        text=document.get("text"),
        attachments=document.get("attachments", []),
        id=document.get("id"),
    )


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    if error.validator == "oneOf" and list(error.absolute_path) == ["to"]:
        return (
            "to: must be exactly one of {userId, channelId}, {conversationId, channelId}, "
            "{aadObjectId} or {all: true}"
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


async def recipients(notification: Notification, references: ReferenceStore) -> AsyncIterator[StoredReference]:
    to = notification.to
    if to.get("all"):
        async for stored in references.all_active(channel_id=to.get("channelId"), tenant_id=to.get("tenantId")):
            yield stored
        return
    if "userId" in to:
        found = await references.find_user(to["channelId"], to["userId"])
    elif "conversationId" in to:
        found = await references.get(to["channelId"], to["conversationId"])
    else:
        found = await references.find_aad_user(to["aadObjectId"])
    if found is None:
        log.warning("notification %s: recipient %s is not known; nothing sent", notification.id, to)
    elif not found.active:
        log.info("notification %s: recipient %s is gone (%s); nothing sent", notification.id, to, found.inactive_reason)
    else:
        yield found


@dataclass
class Summary:
    recipients: int = 0
    sent: int = 0
    gone: int = 0
    failed: int = 0


async def deliver(notification: Notification, references: ReferenceStore, delivery: Delivery) -> Summary:
    summary = Summary()
    activity = notification.activity()
    async for recipient in recipients(notification, references):
        summary.recipients += 1
        result = await delivery.send(recipient, [activity])
        if result.outcome is Outcome.SENT:
            summary.sent += 1
        elif result.outcome is Outcome.GONE:
            summary.gone += 1
        else:
            summary.failed += 1
            log.warning("notification %s to %s: %s", notification.id, recipient.key, result.detail)
    return summary
