"""The bot's turn logic: what it says and does when a user writes or joins."""

from __future__ import annotations

import logging

from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.schema import ChannelAccount

from . import clock
from .channel import command_text, conversation_reference
from .reminders import (
    Reminder,
    ReminderParseError,
    ReminderStore,
    is_reminder_command,
    parse_reminder,
)
from .references import ReferenceStore

log = logging.getLogger(__name__)

HELP = (
    "Here is what I can do:\n\n"
    "- **remind me in 10 minutes to stretch**: I message you when it is time.\n"
    "- I deliver alerts and announcements that other systems send you.\n"
    "- **stop**: no more notifications or announcements (reminders you set still arrive); "
    "**start** turns them back on.\n"
    "- **help**: this list."
)
HINT = "I did not get that. Say **help** to see what I can do."
STOPPED = (
    "OK, no more notifications or announcements here. Reminders you set yourself still arrive. "
    "Say **start** to turn notifications back on."
)
STARTED = "Notifications are on again. Say **stop** any time to turn them off."


def welcome(name: str | None) -> str:
    greeting = f"Hi {name}!" if name else "Hi!"
    return f"{greeting} I can remind you of things and bring you alerts from other systems.\n\n{HELP}"


class ProactiveBot(ActivityHandler):
    def __init__(self, references: ReferenceStore, reminders: ReminderStore) -> None:
        self._references = references
        self._reminders = reminders

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
        # In Teams channels the text starts with "<at>Bot</at>"; commands are what follows.
        text = command_text(turn_context.activity)
        command = text.lower()
        if command in ("help", "?", "hi", "hello"):
            await turn_context.send_activity(HELP)
        elif command in ("stop", "unsubscribe"):
            await self._opt(turn_context, opted_out=True)
            await turn_context.send_activity(STOPPED)
        elif command in ("start", "subscribe"):
            await self._opt(turn_context, opted_out=False)
            await turn_context.send_activity(STARTED)
        elif is_reminder_command(text):
            await turn_context.send_activity(await self._remind(turn_context, text))
        else:
            await turn_context.send_activity(HINT)

    async def _opt(self, turn_context: TurnContext, *, opted_out: bool) -> None:
        activity = turn_context.activity
        await self._references.set_opted_out(activity.channel_id, activity.conversation.id, opted_out)

    async def _remind(self, turn_context: TurnContext, text: str) -> str:
        now = clock.now()
        try:
            request = parse_reminder(text, now)
        except ReminderParseError as error:
            return str(error)
        activity = turn_context.activity
        await self._reminders.add(
            Reminder(
                channel_id=activity.channel_id,
                conversation_id=activity.conversation.id,
                user_id=activity.from_property.id if activity.from_property else "",
                text=request.text,
                due_at=request.due_at,
                created_at=now,
            )
        )
        minutes = round((request.due_at - now).total_seconds() / 60)
        return f"OK, I will remind you at {request.due_at:%H:%M} UTC (in {minutes} min) to {request.text}."
