"""The bot's turn logic: what it says and does when a user writes or joins.

A small dispatcher: help, reminder commands (reminders/dialogs.py), long tasks (tasks.py), and a
hint for anything else. Every command answers within the turn; long work leaves it.

Free of the Bot Framework SDK: it implements `channel.TurnLogic` and sees each turn through
`channel.Turn` (plain data in, `send` out), so a port of the channel edge leaves it as it is.
"""

from __future__ import annotations

import logging

from . import activities, clock
from .channel.turn import Inbound, Member, TeamsEvent, Turn
from .notifications.receipts import READ_RECEIPT, ReadReceipts
from .references import ReferenceStore
from .reminders import report
from .reminders.dialogs import Asker, ReminderDialogs
from .tasks import LongTasks, Task
from .teams.installs import TeamsInstalls

log = logging.getLogger(__name__)

HELP = (
    "Here is what I can do:\n\n"
    "- **remind me in 10 minutes to stretch**, **remind me tomorrow at 9:00 to send the report**, "
    "**remind me every weekday at 9am to stand up**: I message you when it is time. "
    "Answer a reminder with its buttons, or say **done** or **snooze 1h**.\n"
    "- **reminders**: your reminders, numbered; **cancel 2** or **cancel all**.\n"
    "- **timezone Europe/Berlin**: the time zone I read and show times in.\n"
    "- **report**: a summary of your reminders (it takes a moment; I post it when ready).\n"
    "- I deliver alerts and announcements that other systems send you.\n"
    "- **stop**: no more notifications or announcements (reminders you set still arrive); "
    "**start** turns them back on.\n"
    "- **help**: this list."
)
HINT = "I did not get that. Say **help** to see what I can do."
WORKING = "Working on your report; I'll post it here when it's ready."
STOPPED = (
    "OK, no more notifications or announcements here. Reminders you set yourself still arrive. "
    "Say **start** to turn notifications back on."
)
STARTED = "Notifications are on again. Say **stop** any time to turn them off."


def welcome(name: str | None) -> str:
    greeting = f"Hi {name}!" if name else "Hi!"
    return f"{greeting} I can remind you of things and bring you alerts from other systems.\n\n{HELP}"


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
        for member in members:
            if member.id != inbound.bot_id and (
                self._teams is None
                or await self._teams.first_welcome(inbound.channel_id, inbound.conversation_id, member.id)
            ):
                await turn.send(welcome(member.name))

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
        asker = asker_of(inbound)
        command = text.lower()
        if command in ("help", "?", "hi", "hello"):
            reply = HELP
        elif command in ("stop", "unsubscribe", "start", "subscribe"):
            opted_out = command in ("stop", "unsubscribe")
            await self._references.set_opted_out(inbound.channel_id, inbound.conversation_id, opted_out)
            reply = STOPPED if opted_out else STARTED
        elif command == report.KIND:
            reply = await self._start_report(turn, asker)
        else:
            reply = await self._reminders.handle(asker, text, inbound.value) or HINT
        await turn.send(reply)

    async def _start_report(self, turn: Turn, asker: Asker) -> str:
        await turn.send(activities.typing())
        await self._tasks.start(
            Task(
                kind=report.KIND,
                channel_id=asker.channel_id,
                conversation_id=asker.conversation_id,
                user_id=asker.user_id,
                zone=asker.zone_hint,
            )
        )
        return WORKING


def asker_of(inbound: Inbound) -> Asker:
    return Asker(
        channel_id=inbound.channel_id,
        user_id=inbound.user_id,
        conversation_id=inbound.conversation_id,
        zone_hint=inbound.zone_hint,
    )
