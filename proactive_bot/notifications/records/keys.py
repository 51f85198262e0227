"""Where a notification's rows live in the `NotificationsTable`: the key scheme.

    PartitionKey      RowKey            holds
    <id>              notification      the document, when it came, how many recipients, the cursor
    <id>              audience|NNNN     a list of aadObjectIds, AUDIENCE_ROW_IDS per row
    <id>              tally             its counts as last counted, for views (tallies.py)
    <id>%S<shard>     r|<recipient>     one delivery (states.RecipientState says which states)

A Teams user in a personal chat, or known from a roster before any chat exists, is keyed by
their Teams user id (`r|u|<29:...>`), so they are one recipient however the bot reaches them;
every other recipient by its conversation. A recipient's shard follows from the recipient alone,
so every delivery of it finds the same row.
Spreading recipients over SHARDS partitions keeps a broadcast clear of one partition's throughput
limit and keeps partitions small; batches are cut per shard (`shard_of`) so that the rows one
batch writes still share entity-group transactions.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from ...storage.keys import table_key

HEADER = "notification"
AUDIENCE = "audience|"
TALLY = "tally"
AUDIENCE_ROW_IDS = 700  # aadObjectIds per row: ~28K characters, under a property's 32K
RECIPIENT = "r|"
SHARD = "%S"
AFTER_SHARDS = "%T"  # sorts after every "<id>%S.." partition and before any other id's
SHARDS = 8  # part of where rows live: change it only with no notification in flight


class Recipient(Protocol):
    """Whom a row is about: a stored conversation, a Teams user known from a roster whose chat
    may not exist yet (teams.store.RosterMember), or a Teams channel (posts.TeamsChannelPost)."""

    @property
    def channel_id(self) -> str: ...

    @property
    def conversation_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    @property
    def teams_user(self) -> str: ...


def recipient_key(recipient: Recipient) -> str:
    # A Teams user is one recipient whether the bot reaches them through the chat they started,
    # a chat the bot created, or the roster before any chat exists.
    if recipient.teams_user:
        return RECIPIENT + "u|" + table_key(recipient.teams_user)
    return conversation_key(recipient.channel_id, recipient.conversation_id)


def conversation_key(channel_id: str, conversation_id: str) -> str:
    # Length-prefixed so that no two (channel, conversation) pairs give the same key.
    return RECIPIENT + table_key(f"{len(channel_id)}:{channel_id}{conversation_id}")


def shard_of(recipient: Recipient) -> int:
    """Which of a notification's recipient partitions holds this recipient's row."""
    return _shard_of_key(recipient_key(recipient))


def conversation_shard(channel_id: str, conversation_id: str) -> int:
    """The shard of a conversation's rows (shard_of, from the ids alone)."""
    return _shard_of_key(conversation_key(channel_id, conversation_id))


def _shard_of_key(key: str) -> int:
    return zlib.crc32(key.encode("utf-8")) % SHARDS


def header_partition(notification_id: str) -> str:
    return table_key(notification_id)


def shard_partition(notification_id: str, shard: int) -> str:
    # table_key never writes "%S" (it escapes "%" itself), so no notification id's own
    # partition can look like another's shard.
    return f"{table_key(notification_id)}{SHARD}{shard:02d}"


def shards_range(notification_id: str) -> dict[str, str]:
    """Query parameters `lo`/`hi` spanning every shard partition of a notification."""
    key = table_key(notification_id)
    return {"lo": key + SHARD, "hi": key + AFTER_SHARDS}


def row_address(notification_id: str, recipient: Recipient) -> tuple[str, str]:
    """(PartitionKey, RowKey) of a notification's row for one recipient."""
    return shard_partition(notification_id, shard_of(recipient)), recipient_key(recipient)
