"""report.recent: the notifications of the last days, newest first, paged (real Azurite)."""

from __future__ import annotations

from datetime import timedelta

from proactive_bot import clock
from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.records import NotificationStore
from proactive_bot.report import recent


async def test_newest_first_a_page_at_a_time_and_old_ones_left_out(new_table):
    table = await new_table()
    store = NotificationStore(table)
    now = clock.now()
    for n, age in enumerate([timedelta(hours=1), timedelta(minutes=1), timedelta(days=30), timedelta(hours=5)]):
        await store.create(validate({"id": f"n-{n}", "to": {"all": True}, "text": "x"}), now - age, "test")

    first = await recent.recent(table, now, size=2)
    rest = await recent.recent(table, now, offset=first.next_offset or 0, size=2)

    assert [h.notification.id for h in first.headers] == ["n-1", "n-0"]
    assert [h.notification.id for h in rest.headers] == ["n-3"]  # n-2 is a month old
    assert rest.next_offset is None
