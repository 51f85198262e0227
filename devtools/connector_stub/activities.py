"""What each conversation shows: the activities the stub accepted, as later edits and deletions
left them. A PUT or DELETE of an activity the stub never delivered (or already deleted) is
answered 404, as a channel does for an id it does not know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Shown:
    activity_id: str
    activity: dict[str, Any]
    edits: int = 0
    deleted: bool = False


@dataclass(slots=True)
class Conversations:
    _by_id: dict[tuple[str, str], Shown] = field(default_factory=dict)
    _order: dict[str, list[Shown]] = field(default_factory=dict)

    def posted(self, conversation_id: str, activity_id: str, activity: dict[str, Any]) -> None:
        shown = Shown(activity_id, activity)
        self._by_id[conversation_id, activity_id] = shown
        self._order.setdefault(conversation_id, []).append(shown)

    def updated(self, conversation_id: str, activity_id: str, activity: dict[str, Any]) -> bool:
        """False: no such activity (never sent, or deleted)."""
        shown = self._by_id.get((conversation_id, activity_id))
        if shown is None or shown.deleted:
            return False
        shown.activity, shown.edits = activity, shown.edits + 1
        return True

    def deleted(self, conversation_id: str, activity_id: str) -> bool:
        """False: no such activity (never sent, or deleted already)."""
        shown = self._by_id.get((conversation_id, activity_id))
        if shown is None or shown.deleted:
            return False
        shown.deleted = True
        return True

    def shown(self, conversation_id: str) -> list[Shown]:
        """What the conversation shows now, oldest first (deleted ones left out)."""
        return [s for s in self._order.get(conversation_id, ()) if not s.deleted]

    def find(self, conversation_id: str, activity_id: str) -> Shown | None:
        return self._by_id.get((conversation_id, activity_id))
