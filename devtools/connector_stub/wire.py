"""What a Bot Connector channel puts on the wire besides activities, shared by the local channels
(the Connector stub and the Web Chat channel); no server here.

Failure bodies follow the codes Microsoft documents for Teams ("Status codes from bot
conversational APIs") and that users report seeing, e.g.
`403 {"error": {"code": "ConversationBlockedByUser", "message": "User blocked the conversation
with the bot."}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

_DEFAULT_CODE: Final[Mapping[int, str]] = {
    400: "BadArgument",
    401: "Unauthorized",
    403: "ConversationBlockedByUser",
    404: "ConversationNotFound",
    412: "PreconditionFailed",
    413: "MessageSizeTooBig",
    429: "Throttled",
}
_MESSAGES: Final[Mapping[str, str]] = {
    "BadArgument": "Invalid request payload.",
    "Unauthorized": "Authorization has been denied for this request.",
    "ConversationBlockedByUser": "User blocked the conversation with the bot.",
    "BotNotInConversationRoster": "The bot is not part of the conversation roster.",
    "BotDisabledByAdmin": "The tenant admin disabled this bot.",
    "ConversationNotFound": "Conversation not found.",
    "PreconditionFailed": "Precondition failed, please try again.",
    "MessageSizeTooBig": "Message size too large.",
    "Throttled": "Too many requests.",
    "ServiceError": "Internal server error",
    "NotFound": "The requested resource was not found.",
}


def error_code_for(status: int) -> str:
    """The Connector error code a channel answers with for `status` by default."""
    if status in _DEFAULT_CODE:
        return _DEFAULT_CODE[status]
    if status >= 500:
        return "ServiceError"
    return HTTPStatus(status).phrase.replace(" ", "")


def error_body(code: str, message: str | None = None) -> dict[str, Any]:
    """The Connector's ErrorResponse shape."""
    return {"error": {"code": code, "message": message or _MESSAGES.get(code, code)}}


def describe_activity(activity: Mapping[str, Any]) -> str:
    """Text plus a summary of attachments and suggested actions, on one line."""
    kind = activity.get("type", "?")
    text = str(activity.get("text") or "").replace("\r", "").replace("\n", " \u23ce ")
    parts = [text] if kind == "message" else [f"<{kind}>" + (f" {text}" if text else "")]
    attachments = activity.get("attachments") or []
    if attachments:
        kinds = ", ".join(_attachment_kind(a) for a in attachments if isinstance(a, Mapping))
        parts.append(f"[{len(attachments)} attachment{'s' if len(attachments) != 1 else ''}: {kinds}]")
    actions = (activity.get("suggestedActions") or {}).get("actions") or []
    if actions:
        titles = " | ".join(str(a.get("title") or a.get("value")) for a in actions if isinstance(a, Mapping))
        parts.append(f"[actions: {titles}]")
    return " ".join(part for part in parts if part)


def _attachment_kind(attachment: Mapping[str, Any]) -> str:
    content_type = str(attachment.get("contentType", "?"))
    prefix = "application/vnd.microsoft.card."
    return f"{content_type[len(prefix) :]} card" if content_type.startswith(prefix) else content_type
