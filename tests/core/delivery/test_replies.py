"""Turn replies: they take a slot in their tenant's interactive lane, and never hold up the turn
for long when there is none to be had."""

from __future__ import annotations

import logging

import pytest

from proactive_bot.channel.activity import inbound_of, parse_activity
from proactive_bot.delivery.limits import LimitsConfig
from proactive_bot.delivery.rate_limits import RateLimiter
from proactive_bot.delivery.replies import TurnReplies
from tests import activities


async def test_a_reply_with_no_slot_in_sight_goes_anyway_after_its_patience(caplog: pytest.LogCaptureFixture):
    limiter = RateLimiter(LimitsConfig())
    inbound = inbound_of(parse_activity(activities.teams_message("help", "https://smba.example/")))
    limiter.hold(inbound.channel_id, inbound.conversation_id, 3600)  # e.g. a Retry-After of an hour

    with caplog.at_level(logging.WARNING, logger="proactive_bot.delivery.replies"):
        await TurnReplies(limiter, patience=0.05).before_reply(inbound)

    assert "went without a rate slot" in caplog.text
