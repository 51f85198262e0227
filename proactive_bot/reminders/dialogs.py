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
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from .. import clock, i18n
from .cards import Answer, read_answer
from .phrases import HORIZON, LazyPattern
from .rows import Agenda, Entry, Owner, Reminder
from .schedules import ScheduleError, is_reminder_request, parse_request
from .store import MAX_PENDING, ReminderStore
from .times import UTC, describe_moment, zone_named

# Each command in English, German and Chinese, whatever the language the bot answers in; compiled
# on first use (a turn that is `help` needs none of them).
_LIST = LazyPattern(
    r"(?:list |show |my )?reminders|list"
    r"|(?:zeige?\s+|meine\s+|alle\s+)*erinnerungen|liste"
    r"|提醒列表|我的提醒|查看提醒|列出提醒|所有提醒|查看我的提醒",
    re.IGNORECASE,
)
_CANCEL = LazyPattern(
    r"(?:cancel|delete|remove)(?: reminder)?\s+(?:#|no\.?\s*)?(?P<en>\d{1,4}|all(?: reminders)?)"
    r"|(?:lösche?|entferne?|storniere?|streiche?)(?:\s+erinnerung)?\s+(?:#|nr\.?\s*)?(?P<de>\d{1,4}|alle)"
    r"(?:\s+erinnerungen)?"
    r"|(?:取消|删除)\s*第?\s*(?P<zh>\d{1,4}|全部|所有)\s*(?:个)?(?:提醒)?|(?P<zh_all>全部取消|全部删除)",
    re.IGNORECASE,
)
_TIMEZONE = LazyPattern(
    r"(?:time\s?zone|zeitzone)(?:\s+(?:is\s+|to\s+|ist\s+)?(\S+))?|时区(?:\s*(?:是|设为|设置为)?\s*(\S+))?",
    re.IGNORECASE,
)
_LISTED_TEXT = 120  # characters of each reminder's text in a list
ALREADY_ANSWERED = i18n.text(i18n.DEFAULT, "answer.already")


class CommandKind(Enum):
    REMIND = "remind"
    LIST = "list"
    CANCEL = "cancel"
    TIMEZONE = "timezone"
    ANSWER = "answer"  # done / snooze, typed or clicked


@dataclass(frozen=True)
class Command:
    """A reminder command as read, in whichever language it was said."""

    kind: CommandKind
    argument: str | None = None  # cancel: a number or "all"; timezone: the name given, if any
    answer: Answer | None = None


def read_command(text: str, value: Any = None) -> Command | None:
    """The reminder command in a message (English, German or Chinese), or None if it is not one."""
    answer = read_answer(text, value)
    if answer is not None:
        return Command(CommandKind.ANSWER, answer=answer)
    if is_reminder_request(text):
        return Command(CommandKind.REMIND)
    if _LIST.fullmatch(text):
        return Command(CommandKind.LIST)
    if match := _CANCEL.fullmatch(text):
        which = match["en"] or match["de"] or match["zh"] or "all"
        return Command(CommandKind.CANCEL, which if which[0].isdigit() else "all")
    if match := _TIMEZONE.fullmatch(text):
        return Command(CommandKind.TIMEZONE, match[1] or match[2])
    return None


@dataclass(frozen=True)
class Asker:
    """Who is talking, where, and the time zone their channel reported (if any)."""

    channel_id: str
    user_id: str
    conversation_id: str
    zone_hint: str | None = None
    language: str = i18n.DEFAULT  # the language to answer in (i18n.locales)

    @property
    def owner(self) -> Owner:
        return Owner(self.channel_id, self.user_id)


class ReminderDialogs:
    def __init__(self, store: ReminderStore) -> None:
        self._store = store

    async def handle(self, asker: Asker, text: str, value: Any = None) -> str | None:
        """The reply to a reminder command, or None if the message is not one."""
        command = read_command(text, value)
        if command is None:
            return None
        if command.kind is CommandKind.ANSWER:
            return await self.answer(asker, command.answer)  # type: ignore[arg-type]
        if command.kind is CommandKind.REMIND:
            return await self.remind(asker, text)
        if command.kind is CommandKind.LIST:
            return await self.list(asker)
        if command.kind is CommandKind.CANCEL:
            return await self.cancel(asker, command.argument or "all")
        return await self.timezone(asker, command.argument)

    async def remind(self, asker: Asker, text: str) -> str:
        now = clock.now()
        language = asker.language
        agenda = await self._store.agenda(asker.owner)
        zone, assumed = user_zone(agenda, asker)
        try:
            request = parse_request(text, now, zone, language)
        except ScheduleError as error:
            return str(error)
        if len(agenda.pending) >= MAX_PENDING:
            return i18n.text(language, "remind.full", max=MAX_PENDING)
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
        first = describe_moment(request.due_at, zone, now, language)
        if request.recurrence is None:
            reply = i18n.text(language, "remind.once", first=first, zone=zone.key, text=request.text)
        else:
            reply = i18n.text(
                language,
                "remind.recurring",
                recurrence=request.recurrence.describe(language),
                zone=zone.key,
                text=request.text,
                first=first,
            )
        return reply + (_assumed_note(zone, language) if assumed else "")

    async def list(self, asker: Asker) -> str:
        now = clock.now()
        language = asker.language
        agenda = await self._store.agenda(asker.owner)
        zone, assumed = user_zone(agenda, asker)
        pending = agenda.pending
        if not pending:
            return i18n.text(language, "list.empty", examples=i18n.text(language, "examples"))
        await self._store.remember_listing(asker.owner, [e.id for e in pending])
        lines = [
            i18n.text(
                language, "list.item", number=number, when=_when(entry, zone, now, language), text=_short(entry.text)
            )
            for number, entry in enumerate(pending, 1)
        ]
        return (
            i18n.text(language, "list.header", zone=zone.key)
            + "\n\n"
            + "\n".join(lines)
            + "\n\n"
            + _how_to_cancel(len(pending), language)
            + (_assumed_note(zone, language) if assumed else "")
        )

    async def cancel(self, asker: Asker, which: str) -> str:
        language = asker.language
        agenda = await self._store.agenda(asker.owner)
        if which.lower().startswith("all"):
            results = await asyncio.gather(*(self._cancel(agenda.owner, e) for e in agenda.pending))
            count = sum(r is not None for r in results)
            return i18n.text(language, "cancel.all", count=count) if count else i18n.text(language, "cancel.nothing")
        number = int(which)
        ids = agenda.listed or [e.id for e in agenda.pending]
        if not 1 <= number <= len(ids):
            return i18n.text(language, "cancel.no_such", number=number)
        entry = agenda.get(ids[number - 1])
        cancelled = await self._cancel(agenda.owner, entry) if entry is not None and entry.pending else None
        if cancelled is None:
            return i18n.text(language, "cancel.gone", number=number)
        zone, _ = user_zone(agenda, asker)
        when = _when(cancelled, zone, clock.now(), language)
        return i18n.text(language, "cancel.done", number=number, text=_short(cancelled.text), when=when)

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
        language = asker.language
        if name is None:
            agenda = await self._store.agenda(asker.owner)
            zone, assumed = user_zone(agenda, asker)
            source = "zone.source." + ("assumed" if assumed else ("set" if agenda.zone else "app"))
            return i18n.text(language, "zone.current", zone=zone.key, source=i18n.text(language, source))
        named = zone_named(name)
        if named is None:
            return i18n.text(language, "zone.unknown", name=_short(name, 64))
        await self._store.set_zone(asker.owner, named.key)
        local = clock.now().astimezone(named)
        return i18n.text(language, "zone.set", zone=named.key, time=f"{local:%H:%M}")

    async def answer(self, asker: Asker, answer: Answer) -> str:
        now = clock.now()
        language = asker.language
        agenda = await self._store.agenda(asker.owner)
        entry = _answered_entry(agenda, asker, answer)
        if isinstance(entry, str):
            return i18n.text(language, entry)
        zone, _ = user_zone(agenda, asker)
        if answer.snooze is None:
            if not await self._store.answer(asker.owner, entry, done=True):
                return i18n.text(language, "answer.already")
            return i18n.text(language, "answer.done", text=_short(entry.text))
        if answer.snooze > HORIZON:
            return i18n.text(language, "schedule.too_far")
        until = now + answer.snooze
        if entry.recurrence is None:
            if not await self._store.snooze(asker.owner, entry, until):
                return i18n.text(language, "answer.already")
        else:
            # The series goes on as it is; this occurrence comes back once, as its own reminder.
            if not await self._store.answer(asker.owner, entry, done=False):
                return i18n.text(language, "answer.already")
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
        when = describe_moment(until, zone, now, language)
        return i18n.text(language, "answer.snoozed", when=when, text=_short(entry.text))


def _answered_entry(agenda: Agenda, asker: Asker, answer: Answer) -> Entry | str:
    """The entry an answer is for, or the catalog key of the reply explaining why there is none."""
    if answer.reminder_id is not None:
        entry = agenda.get(answer.reminder_id)
        if entry is None:
            return "answer.not_found"
        if not entry.awaiting_answer or (answer.occurrence is not None and answer.occurrence != entry.occurrence):
            return "answer.already"
        return entry
    waiting = [e for e in agenda.entries if e.awaiting_answer]
    if not waiting:
        return "answer.none_waiting"
    # The one delivered last, preferring this conversation's.
    return max(waiting, key=lambda e: (e.conversation_id == asker.conversation_id, e.sent_at))


def user_zone(agenda: Agenda, asker: Asker) -> tuple[ZoneInfo, bool]:
    """The zone to read and show times in, and whether it was only assumed (UTC)."""
    zone = zone_named(agenda.zone) or zone_named(asker.zone_hint)
    return (zone, False) if zone is not None else (UTC, True)


def _assumed_note(zone: ZoneInfo, language: str) -> str:
    return i18n.text(language, "zone.assumed", zone=zone.key)


def _how_to_cancel(count: int, language: str) -> str:
    # The example number must be one the list shows.
    return i18n.text(language, "cancel.how.one" if count == 1 else "cancel.how.many")


def _when(entry: Entry, zone: ZoneInfo, now: datetime, language: str) -> str:
    when = describe_moment(entry.due_at, zone, now, language)
    if entry.recurrence is None:
        return when
    own = "" if entry.zone == zone.key else f" {entry.zone}"
    return i18n.text(language, "list.then", when=when, recurrence=entry.recurrence.describe(language), own=own)


def _short(text: str, limit: int = _LISTED_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
