"""One timer run: claim every due reminder, send it, and move it on (done, next occurrence, retry).

Exactly once among overlapping runs (or instances): each reminder is sent only by the run whose
ETag claim won. Across a crash between a send and the bookkeeping after it, the lease runs out
and the reminder is sent again: at least once, never silently lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..delivery.lanes import Lane
from ..delivery.outcome import Outcome
from ..delivery.retries import REMINDERS
from ..delivery.sender import Delivery
from ..references import ReferenceStore
from .cards import reminder_activity
from .rows import Reminder
from .store import ReminderStore

log = logging.getLogger(__name__)

SEND_CONCURRENCY = 32
PAGE_SIZE = 1000
# A run starts no new page after this, well inside the Functions timeout (host.json: 10 min),
# and leaves the rest to the next run.
RUN_BUDGET = timedelta(minutes=4)


@dataclass
class RunSummary:
    read: int = 0  # reminder entities the run read (a deferred run: one page it left unsent too)
    due: int = 0
    sent: int = 0
    skipped: int = 0  # claimed by another run
    retrying: int = 0
    failed: int = 0  # attempts spent
    dropped: int = 0  # recipient unknown or gone, or cancelled meanwhile
    deferred: bool = False  # out of time: more may be due, for the next run


class ReminderTimer:
    """One timer run at a time: what is due goes out (`run`)."""

    def __init__(self, store: ReminderStore, references: ReferenceStore, delivery: Delivery) -> None:
        self._store = store
        self._references = references
        self._delivery = delivery

    async def run(self, now: datetime) -> RunSummary:
        summary = RunSummary()
        limit = asyncio.Semaphore(SEND_CONCURRENCY)
        deadline = time.monotonic() + RUN_BUDGET.total_seconds()

        async def one(reminder: Reminder) -> None:
            async with limit:
                await self._send_one(reminder, now, summary)

        pages = 0
        async for batch in self._store.due_pages(now, PAGE_SIZE):
            summary.read += batch.read
            if pages and time.monotonic() >= deadline:
                # Far more due than a run should take on (a mass 09:00): the next run goes on.
                summary.deferred = True
                break
            pages += 1
            summary.due += len(batch.reminders)
            await asyncio.gather(*(one(r) for r in batch.reminders))
        return summary

    async def _send_one(self, reminder: Reminder, now: datetime, summary: RunSummary) -> None:
        store = self._store
        claimed = await store.claim(reminder, now)
        if claimed is None:
            summary.skipped += 1
            return
        next_due = claimed.next_due(now)
        if not await store.mark_sending(claimed, now, next_due):
            log.info("reminder %s was cancelled; not sent", claimed.id)
            await store.drop(claimed)
            summary.dropped += 1
            return
        recipient = await self._references.get(claimed.channel_id, claimed.conversation_id)
        if recipient is None or not recipient.active:
            log.warning("reminder %s: conversation %s is unknown or gone; dropped", claimed.id, claimed.conversation_id)
            await store.give_up(claimed, "the conversation is gone")
            summary.dropped += 1
            return
        result = await self._delivery.send(
            recipient, [reminder_activity(claimed, now, recipient.language)], lane=Lane.URGENT
        )
        attempt = claimed.attempts + 1
        if result.outcome is Outcome.SENT:
            await store.finish(claimed, next_due)
            summary.sent += 1
        elif result.outcome is Outcome.GONE:
            # Delivery marked the address inactive; a recurring reminder would only fail again.
            await store.give_up(claimed, f"recipient gone ({result.status})")
            summary.dropped += 1
        elif result.retryable and not REMINDERS.exhausted(attempt):
            log.warning("reminder %s: attempt %d failed (%s); will retry", claimed.id, attempt, result.detail)
            delay = timedelta(seconds=REMINDERS.delay(attempt, result.retry_after))
            await store.retry_later(claimed, now + delay)
            summary.retrying += 1
        else:
            log.error("reminder %s: attempt %d failed (%s); giving up", claimed.id, attempt, result.detail)
            if next_due is not None:
                await store.finish(claimed, next_due)  # this occurrence is lost, the series goes on
            else:
                await store.give_up(claimed, result.detail or result.outcome.value)
            summary.failed += 1
