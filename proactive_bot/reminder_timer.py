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

from .delivery import Delivery, Outcome
from .references import ReferenceStore
from .reminder_messages import reminder_activity
from .reminders import Reminder, ReminderStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
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


def backoff(attempt: int, retry_after: float | None = None) -> timedelta:
    """2, 4, 8, 16 minutes; longer if the channel asked for it (Retry-After)."""
    delay = timedelta(minutes=2**attempt)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


async def send_due(
    store: ReminderStore, references: ReferenceStore, delivery: Delivery, now: datetime
) -> RunSummary:
    summary = RunSummary()
    limit = asyncio.Semaphore(SEND_CONCURRENCY)
    deadline = time.monotonic() + RUN_BUDGET.total_seconds()

    async def one(reminder: Reminder) -> None:
        async with limit:
            await _send_one(store, references, delivery, reminder, now, summary)

    pages = 0
    async for batch in store.due_pages(now, PAGE_SIZE):
        summary.read += batch.read
        if pages and time.monotonic() >= deadline:
            # Far more due than a run should take on (a mass 09:00): the next run goes on.
            summary.deferred = True
            break
        pages += 1
        summary.due += len(batch.reminders)
        await asyncio.gather(*(one(r) for r in batch.reminders))
    return summary


async def _send_one(
    store: ReminderStore,
    references: ReferenceStore,
    delivery: Delivery,
    reminder: Reminder,
    now: datetime,
    summary: RunSummary,
) -> None:
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
    recipient = await references.get(claimed.channel_id, claimed.conversation_id)
    if recipient is None or not recipient.active:
        log.warning("reminder %s: conversation %s is unknown or gone; dropped", claimed.id, claimed.conversation_id)
        await store.give_up(claimed, "the conversation is gone")
        summary.dropped += 1
        return
    result = await delivery.send(recipient, [reminder_activity(claimed, now)])
    if result.outcome is Outcome.SENT:
        await store.finish(claimed, next_due)
        summary.sent += 1
    elif result.outcome is Outcome.GONE:
        # Delivery marked the address inactive; a recurring reminder would only fail again.
        await store.give_up(claimed, f"recipient gone ({result.status})")
        summary.dropped += 1
    elif result.retryable and claimed.attempts + 1 < MAX_ATTEMPTS:
        log.warning("reminder %s: attempt %d failed (%s); will retry", claimed.id, claimed.attempts + 1, result.detail)
        await store.retry_later(claimed, now + backoff(claimed.attempts + 1, result.retry_after))
        summary.retrying += 1
    else:
        log.error("reminder %s: attempt %d failed (%s); giving up", claimed.id, claimed.attempts + 1, result.detail)
        if next_due is not None:
            await store.finish(claimed, next_due)  # this occurrence is lost, the series goes on
        else:
            await store.give_up(claimed, result.detail or result.outcome.value)
        summary.failed += 1
