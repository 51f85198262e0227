"""Read receipts: which notifications a user has read.

Teams posts, in personal chats, an event activity named `application/vnd.microsoft.readReceipt`
with `value.lastReadMessageId` when the user has read the bot's messages up to that one (the app
needs the RSC permission ChatMessageReadReceipt.Read.Chat, and the user's read receipts setting
on). Message ids in a Teams conversation grow with time, so one receipt covers every delivery
to that conversation with an id up to it.

"Which of this conversation's deliveries are not read yet" is a RowKey range of its own in the
notifications table, so a receipt reads only that conversation's unread deliveries, never the
notification rows:

    PartitionKey     RowKey                                                holds
    unread|<shard>   <n>:<conversation key>|<activity id, 20 digits>|<id>  the notification's id

The shard is the conversation's shard of the notification rows (records.shard_of), so the rows
one delivery batch indexes share a partition and go out in its transactions (one index row per
send would otherwise be one more request per send); the length-prefixed conversation key keeps
one conversation's range from taking in another's. A delivery adds its row when it is sent; a
receipt reads its conversation's rows up to its id, marks each notification's recipient row
`readAt` and deletes the index row. A repeated receipt finds nothing: one read, no writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from ..references import StoredReference
from ..storage.batching import CoalescedWrites, Write
from ..storage.keys import table_key
from .records import (
    NotificationStore,
    RecipientState,
    Settled,
    conversation_key,
    conversation_shard,
    row_address,
)

log = logging.getLogger(__name__)

READ_RECEIPT = "application/vnd.microsoft.readReceipt"  # the event activity's name
_UNREAD = "unread|"
_ID_DIGITS = 20
_AFTER_ID = "}"  # sorts right after "|", which ends the id part of a RowKey
WRITE_WINDOW = 0.25  # seconds an index row waits to share a transaction


def expects_receipts(recipient: StoredReference) -> bool:
    """Whether this conversation's channel sends read receipts: Teams personal chats, and the
    local Web Chat channel (Direct Line), whose page sends them the way Teams does. Production
    Direct Line sends none: its index rows are never read, one write each."""
    if recipient.channel_id == "msteams":
        return recipient.conversation_type in ("", "personal") and not recipient.is_group
    return recipient.channel_id == "directline"


def ordered_id(activity_id: str) -> str | None:
    """An activity id as a key that sorts as the ids do: Teams' are epoch milliseconds, Direct
    Line's `<conversation>|<sequence>`. None for ids that carry no order, which no receipt can
    then cover."""
    sequence = activity_id.rpartition("|")[2]
    if not sequence.isascii() or not sequence.isdigit() or len(sequence) > _ID_DIGITS:
        return None
    return sequence.rjust(_ID_DIGITS, "0")


def _partition(channel_id: str, conversation_id: str) -> str:
    return f"{_UNREAD}{conversation_shard(channel_id, conversation_id):02d}"


def _conversation_prefix(channel_id: str, conversation_id: str) -> str:
    key = conversation_key(channel_id, conversation_id)
    return f"{len(key)}:{key}|"


class ReadReceipts:
    def __init__(self, table: TableClient, *, records: NotificationStore) -> None:
        self._table = table
        self._records = records  # whose rows a receipt marks read
        self._writes = CoalescedWrites(
            table, Write.UPSERT, window=WRITE_WINDOW, gate=records.gate
        )  # waits out storage blips

    async def expect(self, notification_id: str, outcomes: Iterable[Settled], *, at_once: bool = False) -> None:
        """Index the sent deliveries whose conversations send receipts."""
        rows = []
        for done in outcomes:
            key = ordered_id(done.activity_id or "")
            recipient = done.recipient
            sent = done.state is RecipientState.SENT and key is not None
            if sent and isinstance(recipient, StoredReference) and expects_receipts(recipient):
                channel_id, conversation_id = done.recipient.channel_id, done.recipient.conversation_id
                # Where the delivery's row is: keyed by the recipient (a Teams user's row by their
                # user id), which the conversation alone does not tell.
                row_partition, row_key = row_address(notification_id, done.recipient)
                rows.append(
                    {
                        "PartitionKey": _partition(channel_id, conversation_id),
                        "RowKey": f"{_conversation_prefix(channel_id, conversation_id)}{key}|{table_key(notification_id)}",
                        "notification": notification_id,
                        "rowPartition": row_partition,
                        "rowKey": row_key,
                    }
                )
        if rows:
            await self._writes.write(rows, at_once=at_once)

    async def record(self, channel_id: str, conversation_id: str, last_read_id: Any, now: datetime) -> int:
        """A receipt: every delivery up to `last_read_id` is read. Returns how many were new."""
        key = ordered_id(last_read_id) if isinstance(last_read_id, str) else None
        if key is None:
            log.info(
                "read receipt in %s names %r, not an ordered message id; ignored",
                conversation_id[:100],
                str(last_read_id)[:100],
            )
            return 0
        prefix = _conversation_prefix(channel_id, conversation_id)
        query = "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi"
        params = {"pk": _partition(channel_id, conversation_id), "lo": prefix, "hi": prefix + key + _AFTER_ID}
        unread = [e async for e in self._table.query_entities(query, parameters=params)]
        await asyncio.gather(*(self._read(channel_id, conversation_id, entity, now) for entity in unread))
        return len(unread)

    async def _read(self, channel_id: str, conversation_id: str, entity: Any, now: datetime) -> None:
        await self._records.mark_read(entity["rowPartition"], entity["rowKey"], now)  # False: records gone
        try:
            await self._table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        except ResourceNotFoundError:
            pass  # another receipt got there first
