"""Activities as plain dicts, the way the Connector API takes them: the one builder of outgoing
messages, free of any SDK, so a notification contract or a reminder card can be built (and
validated) without loading the Bot Framework.
"""

from __future__ import annotations

from typing import Any

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def message(text: str, **extra: Any) -> dict[str, Any]:
    """A message activity as the Connector API takes it."""
    return {"type": "message", "text": text, **extra}


def typing() -> dict[str, Any]:
    """The typing indicator a turn shows while its work continues elsewhere."""
    return {"type": "typing"}


def adaptive_card(card: dict[str, Any]) -> dict[str, Any]:
    """An attachment holding an Adaptive Card."""
    return {"contentType": ADAPTIVE_CARD, "content": card}
