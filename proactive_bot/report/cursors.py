"""A table query's continuation as a token a URL can carry, and back."""

from __future__ import annotations

import base64
import binascii
import json


class BadCursor(ValueError):
    """A cursor that is not one this app handed out."""


def encode(continuation: dict[str, str] | None) -> str | None:
    if not continuation:
        return None
    raw = json.dumps(continuation, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str | None) -> dict[str, str] | None:
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise BadCursor(f"cursor {token[:40]!r} is not one this API handed out") from error
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BadCursor(f"cursor {token[:40]!r} is not one this API handed out")
    return value
