"""`report`: a summary of the user's reminders, built as a long task (see tasks.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .. import clock
from ..activities import message
from ..tasks import Task
from .schedules import UTC, describe_moment, zone_named
from .store import HISTORY, EntryState, Owner, ReminderStore

KIND = "report"


async def build(store: ReminderStore, task: Task) -> list[dict[str, Any]]:
    now = clock.now()
    agenda = await store.agenda(Owner(task.channel_id, task.user_id))
    zone = zone_named(agenda.zone) or zone_named(task.zone) or UTC
    pending = agenda.pending
    recent = [e for e in agenda.entries if e.sent_at is not None and e.sent_at >= now - HISTORY]
    lines = [f"📋 **Your reminders** (times in {zone.key})", ""]
    if pending:
        recurring = sum(e.recurrence is not None for e in pending)
        lines.append(
            f"- Upcoming: {len(pending)}"
            + (f", {recurring} of them recurring" if recurring else "")
            + f". Next: {describe_moment(pending[0].due_at, zone, now)}: {pending[0].text}"
        )
    else:
        lines.append("- Nothing upcoming.")
    days = HISTORY // timedelta(days=1)
    if recent:
        done = sum(
            e.state is EntryState.DONE or (e.recurrence is not None and e.answered == e.occurrence) for e in recent
        )
        waiting = sum(e.awaiting_answer for e in recent)
        failed = sum(e.state is EntryState.FAILED for e in recent)
        lines.append(
            f"- Delivered in the last {days} days: {len(recent)}; {done} done, "
            f"{waiting} waiting for your answer" + (f", {failed} could not be delivered" if failed else "") + "."
        )
        last = max(recent, key=lambda e: e.sent_at)  # type: ignore[arg-type,return-value]
        lines.append(f"- Last delivered {describe_moment(last.sent_at, zone, now)}: {last.text}")  # type: ignore[arg-type]
    else:
        lines.append(f"- Nothing delivered in the last {days} days.")
    return [message("\n".join(lines))]
