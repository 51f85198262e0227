"""The reminder commands of a turn: remind me, reminders, cancel, timezone, and answers to a
delivered reminder (done / snooze, clicked or typed). Each returns the reply text.

Answers carry the reminder's id (card clicks) or go to the reminder delivered last (typed), so
they need no dialog state: they work whatever the user said in between.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .. import clock
from .cards import Answer, read_answer
from .schedules import (
    EXAMPLES,
    HORIZON,
    UTC,
    ScheduleError,
    describe_moment,
    is_reminder_request,
    parse_request,
    zone_named,
)
from .store import MAX_PENDING, Agenda, Entry, Owner, Reminder, ReminderStore

_LIST = re.compile(r"(?:list |show |my )?reminders|list", re.IGNORECASE)
_CANCEL = re.compile(
    r"(?:cancel|delete|remove)(?: reminder)?\s+(?:#|no\.?\s*)?(\d{1,4}|all(?: reminders)?)", re.IGNORECASE
)
_TIMEZONE = re.compile(r"time\s?zone(?:\s+(?:is\s+|to\s+)?(\S+))?", re.IGNORECASE)
_LISTED_TEXT = 120  # characters of each reminder's text in a list
ALREADY_ANSWERED = "That reminder was already taken care of."


@dataclass(frozen=True)
class Asker:
    """Who is talking, where, and the time zone their channel reported (if any)."""

    channel_id: str
    user_id: str
    conversation_id: str
    zone_hint: str | None = None

    @property
    def owner(self) -> Owner:
        return Owner(self.channel_id, self.user_id)


class ReminderDialogs:
    def __init__(self, store: ReminderStore) -> None:
        self._store = store

    async def handle(self, asker: Asker, text: str, value: Any = None) -> str | None:
        """The reply to a reminder command, or None if the message is not one."""
        answer = read_answer(text, value)
        if answer is not None:
            return await self.answer(asker, answer)
        if is_reminder_request(text):
            return await self.remind(asker, text)
        if _LIST.fullmatch(text):
            return await self.list(asker)
        if match := _CANCEL.fullmatch(text):
            return await self.cancel(asker, match[1])
        if match := _TIMEZONE.fullmatch(text):
            return await self.timezone(asker, match[1])
        return None

    async def remind(self, asker: Asker, text: str) -> str:
        now = clock.now()
        agenda = await self._store.agenda(asker.owner)
        zone, assumed = user_zone(agenda, asker)
        try:
            request = parse_request(text, now, zone)
        except ScheduleError as error:
            return str(error)
        if len(agenda.pending) >= MAX_PENDING:
            return (
                f"You have {MAX_PENDING} pending reminders, the most I keep. "
                "Say `reminders` to see them and `cancel 3` to make room."
            )
        await self._store.add(
            Reminder(
                channel_id=asker.channel_id,
                conversation_id=asker.conversation_id,
                user_id=asker.user_id,
                text=request.text,
                due_at=request.due_at,
                zone=zone.key,
                recurrence=request.recurrence,
                created_at=now,
            )
        )
        await self._store.prune(agenda, now)
        first = describe_moment(request.due_at, zone, now)
        if request.recurrence is None:
            reply = f"OK, I'll remind you {first} ({zone.key}) to {request.text}."
        else:
            reply = (
                f"OK, I'll remind you {request.recurrence.describe()} ({zone.key}) to "
                f"{request.text}. The first one is {first}."
            )
        return reply + (_assumed_note(zone) if assumed else "")

    async def list(self, asker: Asker) -> str:
        now = clock.now()
        agenda = await self._store.agenda(asker.owner)
        zone, assumed = user_zone(agenda, asker)
        pending = agenda.pending
        if not pending:
            return f"You have no reminders. Try: {EXAMPLES}."
        await self._store.remember_listing(asker.owner, [e.id for e in pending])
        lines = [
            f"{number}. {_when(entry, zone, now)}: {_short(entry.text)}" for number, entry in enumerate(pending, 1)
        ]
        return (
            f"Your reminders (times in {zone.key}):\n\n"
            + "\n".join(lines)
            + "\n\n"
            + _how_to_cancel(len(pending))
            + (_assumed_note(zone) if assumed else "")
        )

    async def cancel(self, asker: Asker, which: str) -> str:
        agenda = await self._store.agenda(asker.owner)
        if which.lower().startswith("all"):
            results = await asyncio.gather(*(self._cancel(agenda.owner, e) for e in agenda.pending))
            cancelled = sum(r is not None for r in results)
            return (
                f"Cancelled {cancelled} reminder{'s' if cancelled != 1 else ''}."
                if cancelled
                else "You have no reminders to cancel."
            )
        number = int(which)
        ids = agenda.listed or [e.id for e in agenda.pending]
        if not 1 <= number <= len(ids):
            return f"There is no reminder {number}. Say `reminders` to see the list."
        entry = agenda.get(ids[number - 1])
        cancelled = await self._cancel(agenda.owner, entry) if entry is not None and entry.pending else None
        if cancelled is None:
            return f"Reminder {number} has already gone off or been cancelled. Say `reminders` to see what is left."
        zone, _ = user_zone(agenda, asker)
        return f"Cancelled reminder {number}: {_short(cancelled.text)} ({_when(cancelled, zone, clock.now())})."

    async def _cancel(self, owner: Owner, entry: Entry) -> Entry | None:
        # A timer run may move the entry on (next occurrence) between our read and delete.
        for _ in range(3):
            if await self._store.cancel(owner, entry):
                return entry
            fresh = (await self._store.agenda(owner)).get(entry.id)
            if fresh is None or not fresh.pending:
                return None
            entry = fresh
        return None

    async def timezone(self, asker: Asker, name: str | None) -> str:
        if name is None:
            agenda = await self._store.agenda(asker.owner)
            zone, assumed = user_zone(agenda, asker)
            source = "which I assumed" if assumed else ("as you set it" if agenda.zone else "as your app reports it")
            return f"Your time zone is {zone.key}, {source}. Change it with `timezone Europe/Berlin`."
        zone = zone_named(name)
        if zone is None:
            return f"I don't know the time zone `{_short(name, 64)}`. Use a name like Europe/Berlin, America/New_York or UTC."
        await self._store.set_zone(asker.owner, zone.key)
        local = clock.now().astimezone(zone)
        return (
            f"OK, your time zone is {zone.key} (it is {local:%H:%M} there). New reminders use it; "
            "recurring ones you already have keep the zone they were set in."
        )

    async def answer(self, asker: Asker, answer: Answer) -> str:
        now = clock.now()
        agenda = await self._store.agenda(asker.owner)
        entry = _answered_entry(agenda, asker, answer)
        if isinstance(entry, str):
            return entry
        zone, _ = user_zone(agenda, asker)
        if answer.snooze is None:
            if not await self._store.answer(asker.owner, entry, done=True):
                return ALREADY_ANSWERED
            return f"✅ Done: {_short(entry.text)}."
        if answer.snooze > HORIZON:
            return "That is too far ahead: I keep reminders for up to a year."
        until = now + answer.snooze
        if entry.recurrence is None:
            if not await self._store.snooze(asker.owner, entry, until):
                return ALREADY_ANSWERED
        else:
            # The series goes on as it is; this occurrence comes back once, as its own reminder.
            if not await self._store.answer(asker.owner, entry, done=False):
                return ALREADY_ANSWERED
            await self._store.add(
                Reminder(
                    channel_id=asker.channel_id,
                    conversation_id=entry.conversation_id,
                    user_id=asker.user_id,
                    text=entry.text,
                    due_at=until,
                    zone=entry.zone,
                    created_at=now,
                )
            )
        return f"😴 Snoozed: I'll remind you again {describe_moment(until, zone, now)} to {_short(entry.text)}."


def _answered_entry(agenda: Agenda, asker: Asker, answer: Answer) -> Entry | str:
    """The entry an answer is for, or the reply explaining why there is none."""
    if answer.reminder_id is not None:
        entry = agenda.get(answer.reminder_id)
        if entry is None:
            return "I can't find that reminder among yours; it may have been cancelled."
        if not entry.awaiting_answer or (answer.occurrence is not None and answer.occurrence != entry.occurrence):
            return ALREADY_ANSWERED
        return entry
    waiting = [e for e in agenda.entries if e.awaiting_answer]
    if not waiting:
        return "There is no reminder waiting for an answer."
    # The one delivered last, preferring this conversation's.
    return max(waiting, key=lambda e: (e.conversation_id == asker.conversation_id, e.sent_at))


def user_zone(agenda: Agenda, asker: Asker) -> tuple[ZoneInfo, bool]:
    """The zone to read and show times in, and whether it was only assumed (UTC)."""
    zone = zone_named(agenda.zone) or zone_named(asker.zone_hint)
    return (zone, False) if zone is not None else (UTC, True)


def _assumed_note(zone: ZoneInfo) -> str:
    return f"\n\nI assumed your time zone is {zone.key}; tell me yours with `timezone Europe/Berlin`."


def _how_to_cancel(count: int) -> str:
    # The example number must be one the list shows.
    return "Say `cancel 1` to cancel it." if count == 1 else "Say `cancel 2` to cancel one, or `cancel all`."


def _when(entry: Entry, zone: ZoneInfo, now: datetime) -> str:
    when = describe_moment(entry.due_at, zone, now)
    if entry.recurrence is None:
        return when
    own = "" if entry.zone == zone.key else f" {entry.zone}"
    return f"{when}, then {entry.recurrence.describe()}{own}"


def _short(text: str, limit: int = _LISTED_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
