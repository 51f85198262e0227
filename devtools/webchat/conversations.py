"""The channel's memory: Direct Line conversations, their tokens and transcripts.

One conversation per browser tab. A transcript is what the Direct Line service keeps: the user's
activities (echoed back, which is how Web Chat learns a message was sent) and the bot's, in
order; a watermark is a position in it. conversationUpdate never enters a transcript: Direct
Line sends it to the bot only.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CHANNEL_ID = "directline"
BOT: dict[str, str] = {"id": "proactive-bot", "name": "Proactive Bot", "role": "bot"}
TOKEN_LIFETIME_SECONDS = 3600


def timestamp() -> str:
    """Now, as channels write `timestamp` (UTC, milliseconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Conversation:
    id: str
    token: str
    user: dict[str, str]  # {"id", "name"}; the only user who may post here
    locale: str = ""
    timezone: str = ""  # IANA name the page reported; put on the conversationUpdate
    started: bool = False
    activities: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def watermark(self) -> int:
        return len(self.activities)

    def append(self, activity: dict[str, Any]) -> dict[str, Any]:
        """Add to the transcript with the next Direct Line id (`<conversation>|0000007`)."""
        stored = {**activity, "id": f"{self.id}|{len(self.activities):07d}"}
        stored.setdefault("timestamp", timestamp())
        stored["conversation"] = {"id": self.id}
        self.activities.append(stored)
        self._changed.set()
        self._changed = asyncio.Event()
        return stored

    def find(self, activity_id: str) -> dict[str, Any] | None:
        return next((a for a in self.activities if a.get("id") == activity_id), None)

    def current(self, activity_id: str) -> dict[str, Any] | None:
        """The latest version of an activity; None if unknown or deleted."""
        latest = next((a for a in reversed(self.activities) if a.get("id") == activity_id), None)
        return None if latest is None or latest.get("type") == "messageDelete" else latest

    def replace(self, activity_id: str, activity: dict[str, Any]) -> dict[str, Any]:
        """A new version of an activity (an edit, or a `messageDelete`): into the transcript after
        the rest, so streams and polls deliver it, under the same id and the first timestamp, so
        Web Chat puts it where the activity was."""
        first = self.find(activity_id)
        assert first is not None
        stored = {**activity, "id": activity_id, "timestamp": first["timestamp"], "conversation": {"id": self.id}}
        self.activities.append(stored)
        self._changed.set()
        self._changed = asyncio.Event()
        return stored

    def since(self, watermark: int, *, typing: bool = True) -> list[dict[str, Any]]:
        """Activities after `watermark`. Polling clients get no typing (Direct Line sends it
        over the WebSocket only)."""
        found = self.activities[max(0, watermark) :]
        return found if typing else [a for a in found if a.get("type") != "typing"]

    async def changed(self) -> None:
        """Wait until the transcript grows."""
        await self._changed.wait()


class Conversations:
    """Tokens and conversations, in memory: a restarted channel forgets them (the page then
    starts a new conversation, and the bot's old references to it answer 404)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Conversation] = {}
        self._by_token: dict[str, Conversation] = {}

    def __iter__(self):
        return iter(self._by_id.values())

    def create(self, user: dict[str, str] | None, locale: str = "", tz: str = "") -> Conversation:
        conversation = Conversation(
            id=secrets.token_urlsafe(16).replace("-", "x").replace("_", "y") + "-local",
            token=secrets.token_urlsafe(32),
            # Direct Line names users it was not told about dl_<random>.
            user=user or {"id": f"dl_{secrets.token_hex(8)}", "name": ""},
            locale=locale,
            timezone=tz,
        )
        self._by_id[conversation.id] = conversation
        self._by_token[conversation.token] = conversation
        return conversation

    def get(self, conversation_id: str) -> Conversation | None:
        return self._by_id.get(conversation_id)

    def by_token(self, token: str) -> Conversation | None:
        return self._by_token.get(token)
