"""The bot's turn logic: what it says and does when a user writes or joins.

A small dispatcher: help, reminder commands (reminder_dialogs.py), long tasks (tasks.py), and a
hint for anything else. Every command answers within the turn; long work leaves it.
"""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount

from . import clock, report
from .channel import command_text, conversation_reference
from .references import ReferenceStore
from .reminder_dialogs import Asker, ReminderDialogs
from .tasks import LongTasks, Task

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


class ProactiveBot(ActivityHandler):
    def __init__(self, references: ReferenceStore, reminders: ReminderDialogs, tasks: LongTasks) -> None:
        self._references = references
        self._reminders = reminders
        self._tasks = tasks

    async def on_turn(self, turn_context: TurnContext) -> None:
        # Every inbound activity refreshes the user's address; it is what proactive sends use.
        await self._references.save(conversation_reference(turn_context.activity), clock.now())
        await super().on_turn(turn_context)

    async def on_teams_signin_token_exchange(self, turn_context: TurnContext) -> None:
        # botbuilder's ActivityHandler calls this for a "signin/tokenExchange" invoke, but only
        # TeamsActivityHandler defines it. The bot has no sign-in: answer as for verifyState (501).
        await self.on_sign_in_invoke(turn_context)

    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn_context: TurnContext) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        for member in members_added:
            if member.id != bot_id:
                await turn_context.send_activity(welcome(member.name))

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        # In Teams channels the text starts with "<at>Bot</at>"; commands are what follows. A card
        # click has no text at all.
        text = " ".join(command_text(activity).split())
        asker = asker_of(activity)
        command = text.lower()
        if command in ("help", "?", "hi", "hello"):
            reply = HELP
        elif command in ("stop", "unsubscribe", "start", "subscribe"):
            opted_out = command in ("stop", "unsubscribe")
            await self._references.set_opted_out(activity.channel_id, activity.conversation.id, opted_out)
            reply = STOPPED if opted_out else STARTED
        elif command == report.KIND:
            reply = await self._start_report(turn_context, asker)
        else:
            reply = await self._reminders.handle(asker, text, activity.value) or HINT
        await turn_context.send_activity(reply)

    async def _start_report(self, turn_context: TurnContext, asker: Asker) -> str:
        await turn_context.send_activity(Activity(type=ActivityTypes.typing))
        await self._tasks.start(Task(
            kind=report.KIND, channel_id=asker.channel_id, conversation_id=asker.conversation_id,
            user_id=asker.user_id, zone=asker.zone_hint,
        ))
        return WORKING


def asker_of(activity: Activity) -> Asker:
    return Asker(
        channel_id=activity.channel_id,
        user_id=activity.from_property.id if activity.from_property else "",
        conversation_id=activity.conversation.id,
        zone_hint=_reported_zone(activity),
    )


def _reported_zone(activity: Activity) -> str | None:
    """The IANA zone the client reported: localTimezone, or Teams' clientInfo entity."""
    if activity.local_timezone:
        return activity.local_timezone
    for entity in activity.entities or []:
        properties: Any = getattr(entity, "additional_properties", None)
        if entity.type == "clientInfo" and isinstance(properties, dict):
            zone = properties.get("timezone")
            if isinstance(zone, str) and zone:
                return zone
    return None
