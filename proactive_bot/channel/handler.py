"""botbuilder's ActivityHandler, calling the bot's SDK-free logic (`turn.TurnLogic`).

botbuilder keeps what it does well here: dispatch by activity type, and the invoke answers the
bot does not implement (501 for sign-in, its own Adaptive Card action replies).
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.schema import ChannelAccount

from .activity import inbound_of, members, sdk_activity, teams_event_of
from .turn import BeforeReply, Inbound, TurnLogic

_TURN_STATE = "proactive_bot.turn"


class _ContextTurn:
    """A `turn.Turn` over botbuilder's TurnContext."""

    def __init__(self, context: TurnContext, before_reply: BeforeReply | None) -> None:
        self._context = context
        self._before_reply = before_reply
        self.inbound: Inbound = inbound_of(context.activity)

    async def send(self, activity: str | dict[str, Any]) -> None:
        if self._before_reply is not None:
            await self._before_reply(self.inbound)
        await self._context.send_activity(activity if isinstance(activity, str) else sdk_activity(activity))


class LogicHandler(ActivityHandler):  # type: ignore[misc]  # the SDK ships no type hints
    def __init__(self, logic: TurnLogic, before_reply: BeforeReply | None = None) -> None:
        self._logic = logic
        self._before_reply = before_reply

    async def on_turn(self, turn_context: TurnContext) -> None:
        await self._logic.on_turn(self._turn(turn_context))
        event = teams_event_of(turn_context.activity)
        if event is not None:
            await self._logic.on_teams_event(self._turn(turn_context), event)
        await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await self._logic.on_message(self._turn(turn_context))

    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn_context: TurnContext) -> None:
        await self._logic.on_members_added(self._turn(turn_context), members(members_added))

    async def on_event(self, turn_context: TurnContext) -> None:
        # Events other than tokens/response, which botbuilder keeps for sign-in.
        await self._logic.on_event(self._turn(turn_context))

    async def on_teams_signin_token_exchange(self, turn_context: TurnContext) -> None:
        # botbuilder's ActivityHandler calls this for a "signin/tokenExchange" invoke, but only
        # TeamsActivityHandler defines it. The bot has no sign-in: answer as for verifyState (501).
        await self.on_sign_in_invoke(turn_context)

    def _turn(self, context: TurnContext) -> _ContextTurn:
        turn: _ContextTurn | None = context.turn_state.get(_TURN_STATE)
        if turn is None:
            turn = context.turn_state[_TURN_STATE] = _ContextTurn(context, self._before_reply)
        return turn
