"""A timer run's sends: a due reminder goes out in the urgent lane, in its user's tenant."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from proactive_bot import clock
from proactive_bot.delivery.lanes import Lane
from proactive_bot.reminders.rows import Reminder
from proactive_bot.reminders.store import ReminderStore
from proactive_bot.reminders.timer import ReminderTimer
from tests import activities
from tests.support.lanes import Asked


async def test_a_due_reminder_is_sent_urgent_in_its_tenant(engine_factory, new_table, monkeypatch):
    engine = await engine_factory()
    [user] = await engine.users(1)
    store = ReminderStore(await new_table())
    now = clock.now()
    await store.add(
        Reminder(
            channel_id="msteams",
            conversation_id=user["conversation"]["id"],
            user_id=user["user"]["id"],
            text="stretch",
            due_at=now - timedelta(seconds=1),
            zone="Europe/Berlin",
            created_at=now - timedelta(hours=1),
        )
    )
    asked = Asked(engine.limiter, monkeypatch)

    summary = await ReminderTimer(store, engine.references, engine.delivery).run(now)

    assert summary.sent == 1
    assert asked.lanes() == Counter({(Lane.URGENT, activities.TENANT): 1})
