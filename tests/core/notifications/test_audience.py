"""audience.py: every `to` the contract allows, read once into what it names."""

from __future__ import annotations

import pytest

from proactive_bot.notifications.audience import (
    ToAadUser,
    ToAadUsers,
    ToConversation,
    ToEveryone,
    ToTeam,
    ToTeamChannel,
    ToUser,
    audience_of,
)
from proactive_bot.notifications.contract import validate


@pytest.mark.parametrize(
    ("to", "audience"),
    [
        ({"channelId": "msteams", "userId": "29:u"}, ToUser(channel_id="msteams", user_id="29:u")),
        ({"channelId": "slack", "conversationId": "c"}, ToConversation(channel_id="slack", conversation_id="c")),
        ({"aadObjectId": "a-1"}, ToAadUser(aad_object_id="a-1")),
        ({"all": True}, ToEveryone()),
        (
            {"all": True, "channelId": "msteams", "tenantId": "t", "includeRoster": True},
            ToEveryone(channel_id="msteams", tenant_id="t", include_roster=True),
        ),
        ({"teamId": "19:team"}, ToTeam(team_id="19:team")),
        ({"aadObjectIds": ["a-1", "a-2"], "tenantId": "t"}, ToAadUsers(aad_object_ids=("a-1", "a-2"), tenant_id="t")),
        (
            {"teamChannel": {"teamId": "19:team", "channelId": "19:general", "replyTo": "n-1"}},
            ToTeamChannel(team_id="19:team", teams_channel_id="19:general", reply_to="n-1"),
        ),
    ],
)
def test_each_shape_of_to_is_one_audience(to, audience):
    assert audience_of(validate({"to": to, "text": "hi"}).to) == audience


def test_the_broadcasts_are_the_ones_the_contract_walks():
    for to in ({"all": True}, {"teamId": "19:t"}, {"aadObjectIds": ["a"]}):
        notification = validate({"to": to, "text": "hi"})
        assert notification.is_broadcast and isinstance(audience_of(to), ToEveryone | ToTeam | ToAadUsers)


def test_a_to_the_contract_would_refuse_is_not_guessed_at():
    with pytest.raises(ValueError, match="not an audience"):
        audience_of({"everyone": True})
