"""The fields a recipient row is written with, beside its state: who it is, and what a sent
message needs later (its edits, recall and read receipts)."""

from __future__ import annotations

import json
from typing import Any

from .keys import Recipient
from .states import RecipientState, Settled


def recipient_fields(recipient: Recipient) -> dict[str, Any]:
    return {
        "channelId": recipient.channel_id,
        "conversationId": recipient.conversation_id,
        "userId": recipient.user_id,
    }


def sent_fields(done: Settled) -> dict[str, Any]:
    """What an edit, a recall and a read receipt need of a sent row: the activity's id, the
    content version it shows, and the address to change it at."""
    if done.state is not RecipientState.SENT:
        return {}
    # A channel post's row names the channel, not an address to change the post at: its edits
    # and recalls end as unsupported.
    reference = getattr(done.recipient, "reference", None)
    return {
        "activityId": done.activity_id or "",
        "version": done.version,
        **({"reference": json.dumps(reference, ensure_ascii=False)} if reference is not None else {}),
    }
