"""Turn replies count in their budget: Teams counts a reply within a turn like any other request.

They wait in the interactive lane, ahead of every proactive send (lanes.py), so a user who just
wrote is answered first; the SDK makes the request itself (channel.ChannelAdapter.run_turn), so
only the slot is taken here and a 429 it gets is the SDK's to surface, not the limiter's to read.
"""

from __future__ import annotations

import asyncio
import logging

from ..channel.turn import Inbound
from ..references import tenant_of
from .lanes import Lane
from .rate_limits import RateLimiter

log = logging.getLogger(__name__)

# A turn must answer within the channel's timeout for the whole request, so a
# reply waits for its slot only this long: when the budget has no rate to give (its storage
# away, every share taken), it goes without one and risks a 429 rather than the turn.
PATIENCE = 3.0


class TurnReplies:
    def __init__(self, limiter: RateLimiter, patience: float = PATIENCE) -> None:
        self._limiter = limiter
        self._patience = patience

    async def before_reply(self, inbound: Inbound) -> None:
        try:
            async with asyncio.timeout(self._patience):
                await self._limiter.acquire(
                    inbound.channel_id,
                    inbound.conversation_id,
                    lane=Lane.INTERACTIVE,
                    tenant_id=tenant_of(inbound.reference),
                )
        except TimeoutError:
            log.warning("a reply in %s went without a rate slot after %.0f s", inbound.channel_id, self._patience)
