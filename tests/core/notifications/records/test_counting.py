"""The counts kept beside a notification's record for views: a view reads them, not the rows; it
asks for a recount when they are old, once for all its viewers."""

from __future__ import annotations

import asyncio

from proactive_bot import clock
from proactive_bot.notifications.contract import Notification
from proactive_bot.notifications.records import NotificationState, NotificationStore, RecipientState, Settled
from proactive_bot.notifications.records.counting import LOST, REFRESH
from tests.core.notifications.records.test_store import recipient


async def delivered(store: NotificationStore, notification_id: str, *states: RecipientState) -> None:
    """A notification whose walk found len(states) recipients, each delivered to that state."""
    header = await store.create(Notification(id=notification_id, to={"all": True}, text="Hi"), clock.now(), "api")
    await store.advance(header, found=len(states), cursor=None, planned=True)
    people = [recipient(n) for n in range(len(states))]
    for person in people:
        await store.claim(notification_id, person, clock.now())
    outcomes = [Settled(person, state, 1, status=200) for person, state in zip(people, states, strict=True)]
    await store.settle(notification_id, outcomes, clock.now(), at_once=True)


async def test_a_notification_never_counted_shows_nothing_yet_and_asks(new_table):
    store = NotificationStore(await new_table())
    await delivered(store, "c-1", RecipientState.SENT, RecipientState.GONE)

    counted = await store.counted("c-1", clock.now())

    assert counted is not None and counted.counted_at is None and counted.due
    assert sum(counted.status.counts.values()) == 0
    assert counted.status.recipients == 2  # the walk's count: the record's own
    assert await store.ask_recount("c-1", counted, clock.now())


async def test_a_recount_is_what_views_then_read_until_the_next(new_table):
    store = NotificationStore(await new_table())
    await delivered(store, "c-2", RecipientState.SENT, RecipientState.SENT, RecipientState.FAILED)

    counted_at = clock.now()
    await store.recount("c-2", counted_at)
    # A row settled after the count is not seen by a view until the next count: it reads no row.
    await store.settle("c-2", [Settled(recipient(2), RecipientState.SENT, 2, status=200)], clock.now(), at_once=True)
    view = await store.counted("c-2", clock.now())

    assert view is not None and view.counted_at == counted_at and not view.due
    assert view.status.counts[RecipientState.SENT] == 2 and view.status.counts[RecipientState.FAILED] == 1
    assert view.status.state is NotificationState.DONE
    live = await store.status("c-2")
    assert live is not None and live.counts[RecipientState.SENT] == 3  # the rows, counted now

    await store.recount("c-2", clock.now())
    again = await store.counted("c-2", clock.now())
    assert again is not None and again.status.counts == live.counts


async def test_the_counts_a_view_reads_are_the_status_counts(new_table):
    store = NotificationStore(await new_table())
    await delivered(store, "c-3", RecipientState.SENT, RecipientState.OPTED_OUT, RecipientState.RETRY)

    counted_at = clock.now()
    status = await store.recount("c-3", counted_at)
    view = await store.counted("c-3", counted_at)

    assert status is not None and view is not None
    for field in ("counts", "throttled", "read", "updated", "resent", "changing", "recipients", "pending", "state"):
        assert getattr(view.status, field) == getattr(status, field), field


async def test_many_viewers_at_once_ask_for_one_recount(new_table):
    store = NotificationStore(await new_table())
    await delivered(store, "c-4", RecipientState.SENT)
    await store.recount("c-4", clock.now())
    later = clock.now() + REFRESH
    views = [await store.counted("c-4", later) for _ in range(5)]

    asked = await asyncio.gather(*(store.ask_recount("c-4", view, later) for view in views if view is not None))

    assert all(view is not None and view.due for view in views)
    assert sorted(asked) == [False] * 4 + [True]


async def test_a_recount_asked_is_not_asked_again_until_it_is_done_or_lost(new_table):
    store = NotificationStore(await new_table())
    await delivered(store, "c-5", RecipientState.SENT)
    asked_at = clock.now()
    first = await store.counted("c-5", asked_at)
    assert first is not None and await store.ask_recount("c-5", first, asked_at)

    waiting = await store.counted("c-5", asked_at + REFRESH * 2)
    lost = await store.counted("c-5", asked_at + LOST)

    assert waiting is not None and not waiting.due  # its recount is on its way
    assert lost is not None and lost.due  # its work message never came: ask again
    assert await store.ask_recount("c-5", lost, asked_at + LOST)


async def test_no_counts_for_an_unknown_notification(new_table):
    store = NotificationStore(await new_table())

    assert await store.counted("nobody", clock.now()) is None
    assert await store.recount("nobody", clock.now()) is None
