"""The bot's turn logic: what it says and does when a user writes or joins.

A small dispatcher: help, reminder commands (reminders/dialogs.py), long tasks (tasks.py), and a
hint for anything else. Every command answers within the turn; long work leaves it.

Free of the Bot Framework SDK: it implements `channel.TurnLogic` and sees each turn through
`channel.Turn` (plain data in, `send` out), so a port of the channel edge leaves it as it is.
"""

from __future__ import annotations

import logging
import re

from . import activities, clock, i18n
from .channel.turn import Inbound, Member, TeamsEvent, Turn
from .notifications.receipts import READ_RECEIPT, ReadReceipts
from .references import ReferenceStore, StoredReference
from .reminders import report
from .reminders.dialogs import Asker, ReminderDialogs
from .tasks import LongTasks, Task
from .teams.installs import TeamsInstalls

log = logging.getLogger(__name__)

# The commands in each language; replies are in the user's language, whichever words they used.
_HELP = frozenset({"help", "?", "hi", "hello", "hilfe", "hallo", "帮助", "你好", "？"})
_STOP = frozenset({"stop", "unsubscribe", "stopp", "abbestellen", "停止", "退订"})
_START = frozenset({"start", "subscribe", "abonnieren", "开始", "订阅"})
_REPORT = frozenset({report.KIND, "bericht", "报告"})
_LANGUAGE = re.compile(r"(?:language|sprache|语言)(?:\s*(\S+))?", re.IGNORECASE)
# The English texts, as tests and other modules quote them.
HELP = i18n.text(i18n.DEFAULT, "help")
HINT = i18n.text(i18n.DEFAULT, "hint")
WORKING = i18n.text(i18n.DEFAULT, "working")
STOPPED = i18n.text(i18n.DEFAULT, "stopped")
STARTED = i18n.text(i18n.DEFAULT, "started")


def welcome(name: str | None, language: str = i18n.DEFAULT) -> str:
    greeting = i18n.text(language, "welcome.named", name=name) if name else i18n.text(language, "welcome.anonymous")
    return i18n.text(language, "welcome", greeting=greeting, help=i18n.text(language, "help"))


class ProactiveBot:
    def __init__(
        self,
        references: ReferenceStore,
        reminders: ReminderDialogs,
        tasks: LongTasks,
        receipts: ReadReceipts | None = None,
        teams: TeamsInstalls | None = None,
    ) -> None:
        self._references = references
        self._reminders = reminders
        self._tasks = tasks
        self._receipts = receipts
        self._teams = teams

    async def on_turn(self, turn: Turn) -> None:
        # Every inbound activity refreshes the user's address; it is what proactive sends use.
        await self._references.save(turn.inbound.reference, clock.now())

    async def on_teams_event(self, turn: Turn, event: TeamsEvent) -> None:
        # Installs and roster changes only update what the bot can reach; the roster itself is
        # read in the background (teams/roster.py), so this turn answers at once.
        if self._teams is not None:
            await self._teams.handle(event)

    async def on_members_added(self, turn: Turn, members: list[Member]) -> None:
        if (turn.inbound.reference.get("conversation") or {}).get("conversationType") == "channel":
            # People joining a team where the app is installed: a welcome each would flood the
            # channel. They are on the team's roster now (teams/), reachable in their own chat.
            return
        inbound = turn.inbound
        language = i18n.negotiate(inbound.reference.get("locale"))
        for member in members:
            if member.id != inbound.bot_id and (
                self._teams is None
                or await self._teams.first_welcome(inbound.channel_id, inbound.conversation_id, member.id)
            ):
                await turn.send(welcome(member.name, language))

    async def on_event(self, turn: Turn) -> None:
        inbound = turn.inbound
        if inbound.name == READ_RECEIPT and self._receipts is not None and isinstance(inbound.value, dict):
            await self._receipts.record(
                inbound.channel_id, inbound.conversation_id, inbound.value.get("lastReadMessageId"), clock.now()
            )

    async def on_message(self, turn: Turn) -> None:
        inbound = turn.inbound
        # In Teams channels the text starts with "<at>Bot</at>"; the edge hands over what follows.
        # A card click has no text at all.
        text = " ".join(inbound.text.split())
        stored = await self._references.get(inbound.channel_id, inbound.conversation_id)
        language = stored.language if stored else i18n.negotiate(inbound.reference.get("locale"))
        asker = asker_of(inbound, language)
        command = text.lower()
        if command in _HELP:
            reply = i18n.text(language, "help")
        elif command in _STOP or command in _START:
            opted_out = command in _STOP
            await self._references.set_opted_out(inbound.channel_id, inbound.conversation_id, opted_out)
            reply = i18n.text(language, "stopped" if opted_out else "started")
        elif command in _REPORT:
            reply = await self._start_report(turn, asker)
        elif match := _LANGUAGE.fullmatch(text):
            reply = await self._language(inbound, stored, language, match[1])
        else:
            reply = await self._reminders.handle(asker, text, inbound.value) or i18n.text(language, "hint")
        await turn.send(reply)

    async def _language(self, inbound: Inbound, stored: StoredReference | None, current: str, name: str | None) -> str:
        """`language` alone says which and why; `language de` chooses (remembered with the reference)."""
        if name is None:
            source = "set" if stored is not None and stored.chosen_language else "app"
            return i18n.text(current, "language.current", source=i18n.text(current, "language.source." + source))
        chosen = i18n.language_named(name)
        if chosen is None:
            return i18n.text(current, "language.unknown", name=name[:32])
        await self._references.set_language(inbound.channel_id, inbound.conversation_id, chosen)
        return i18n.text(chosen, "language.set")

    async def _start_report(self, turn: Turn, asker: Asker) -> str:
        await turn.send(activities.typing())
        await self._tasks.start(
            Task(
                kind=report.KIND,
                channel_id=asker.channel_id,
                conversation_id=asker.conversation_id,
                user_id=asker.user_id,
                zone=asker.zone_hint,
                locale=asker.language,
            )
        )
        return i18n.text(asker.language, "working")


def asker_of(inbound: Inbound, language: str = i18n.DEFAULT) -> Asker:
    return Asker(
        channel_id=inbound.channel_id,
        user_id=inbound.user_id,
        conversation_id=inbound.conversation_id,
        zone_hint=inbound.zone_hint,
        language=language,
    )
