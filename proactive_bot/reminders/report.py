"""`report`: a summary of the user's reminders, built as a long task (see tasks.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .. import clock, i18n
from ..activities import message
from ..tasks import Task
from .rows import EntryState, Owner
from .store import HISTORY, ReminderStore
from .times import UTC, describe_moment, zone_named

KIND = "report"


async def build(store: ReminderStore, task: Task) -> list[dict[str, Any]]:
    now = clock.now()
    language = i18n.negotiate(task.locale)
    agenda = await store.agenda(Owner(task.channel_id, task.user_id))
    zone = zone_named(agenda.zone) or zone_named(task.zone) or UTC
    pending = agenda.pending
    recent = [e for e in agenda.entries if e.sent_at is not None and e.sent_at >= now - HISTORY]

    def say(key: str, **fields: Any) -> str:
        return i18n.text(language, key, **fields)

    def moment(when: datetime) -> str:
        return describe_moment(when, zone, now, language)

    lines = [say("report.title", zone=zone.key), ""]
    if pending:
        recurring = sum(e.recurrence is not None for e in pending)
        lines.append(
            say("report.upcoming", count=len(pending))
            + (say("report.recurring", count=recurring) if recurring else "")
            + say("report.next", when=moment(pending[0].due_at), text=pending[0].text)
        )
    else:
        lines.append(say("report.nothing"))
    days = HISTORY // timedelta(days=1)
    if recent:
        done = sum(
            e.state is EntryState.DONE or (e.recurrence is not None and e.answered == e.occurrence) for e in recent
        )
        waiting = sum(e.awaiting_answer for e in recent)
        failed = sum(e.state is EntryState.FAILED for e in recent)
        lines.append(
            say("report.delivered", days=days, count=len(recent), done=done, waiting=waiting)
            + (say("report.failed", count=failed) if failed else "")
            + say("report.end")
        )
        last = max(recent, key=lambda e: e.sent_at)  # type: ignore[arg-type,return-value]
        lines.append(say("report.last", when=moment(last.sent_at), text=last.text))  # type: ignore[arg-type]
    else:
        lines.append(say("report.none_delivered", days=days))
    return [message("\n".join(lines))]
