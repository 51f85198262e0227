"""Turn replies count in their budget: Teams counts a reply within a turn like any other request.

They wait in the interactive lane, ahead of every proactive send (lanes.py), so a user who just
wrote is answered first; the SDK makes the request itself (channel.ChannelAdapter.run_turn), so
only the slot is taken here and a 429 it gets is the SDK's to surface, not the limiter's to read.
"""

from __future__ import annotations

from ..channel.turn import Inbound
from .lanes import Lane
from .rate_limits import RateLimiter


class TurnReplies:
    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def before_reply(self, inbound: Inbound) -> None:
        conversation = inbound.reference.get("conversation") or {}
        # botbuilder serializes ConversationAccount.tenant_id as "tenantID" (as references.py reads it).
        tenant_id = conversation.get("tenantID") or conversation.get("tenantId") or ""
        await self._limiter.acquire(
            inbound.channel_id, inbound.conversation_id, lane=Lane.INTERACTIVE, tenant_id=tenant_id
        )
