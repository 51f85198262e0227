"""What the HTTP front door does with a notification it accepted: record it, then start it.

A broadcast starts on the work queue (its walk may be long). A notification to one recipient is
delivered by the request that took it: no queue hop, and no host poll (up to
`maxPollingInterval`) before its send. Its queue message is put first, hidden: it starts the
notification only if this process dies, or its delivery fails, before the request is done, and is
deleted once it is. Retries past the request's own budget go on the work queue, as any batch's do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from .. import clock
from ..work import PageWork, WorkQueue
from .contract import Notification
from .fanout import Fanout
from .records import Header, NotificationStore

log = logging.getLogger(__name__)

# Seconds of retrying inside the request: a caller waits for its 202 that long at most, and a
# 429's Retry-After of a second or two still fits.
REQUEST_RETRY_BUDGET = 5.0
# Seconds the fallback message stays hidden: past the request's retries and a send's usual
# time, so that it shows only if the request never finished (its claims make it harmless then).
FALLBACK_AFTER = 60


@dataclass(kw_only=True)
class FrontDoor:
    records: NotificationStore
    fanout: Fanout
    work: WorkQueue
    queue: QueueClient  # the notifications queue, which queue_notify serves

    async def accept(self, notification: Notification) -> Header:
        """Record it and start it; a repeated POST (same id) starts it again only while nothing
        has started (processing is idempotent: a POST whose start failed can be repeated)."""
        header = await self.records.create(notification, clock.now(), source="http")
        if header.pages or header.planned:
            return header
        if notification.is_broadcast:
            # Recorded already (with its audience, up to 10,000 aadObjectIds: more than a queue
            # message holds): start walking it, as queue_notify would.
            await self.work.put(PageWork(notification=notification.id))
        else:
            await self._start_here(header)
        return header

    async def _start_here(self, header: Header) -> None:
        # The notifications queue's contract has no traceparent: queue_notify's span joins this
        # trace by the notification's id (telemetry/trace_ids.py).
        document = json.dumps(header.notification.document(), ensure_ascii=False)
        fallback = await self.queue.send_message(document, visibility_timeout=FALLBACK_AFTER)
        try:
            await self.fanout.start_recorded(header, retry_budget=REQUEST_RETRY_BUDGET)
        except Exception:  # whatever it was, queue_notify starts it again, now
            log.exception("notification %s: delivery in the request failed; left to the queue", header.notification.id)
            await self._settle_fallback(fallback, show=True)
            return
        await self._settle_fallback(fallback, show=False)

    async def _settle_fallback(self, fallback: QueueMessage, *, show: bool) -> None:
        """Delete the fallback message (done), or show it at once (not done). One that cannot be
        reached now shows when it was due to: every message here is safe to run late or twice."""
        try:
            if show:
                await self.queue.update_message(fallback, visibility_timeout=0)
            else:
                await self.queue.delete_message(fallback)
        except (AzureError, OSError, TimeoutError) as error:  # as the work queue's withdraw
            log.info(
                "notification message %s left to show in %d s: %s", fallback.id, FALLBACK_AFTER, type(error).__name__
            )
