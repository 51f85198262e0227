"""Where the notifications' object graph is wired: the app's `Clients` and the tests both call
`compose`, so there is one wiring, and one dispatch table for the work queue."""

from __future__ import annotations

from dataclasses import dataclass

from .. import clock
from ..delivery.sender import Delivery
from ..references import ReferenceStore
from ..settings import Settings
from ..teams.reach import TeamsReach
from ..work import Handlers, RecountWork, RosterWork, WorkQueue
from .batch import Deliveries
from .fanout import Fanout
from .intake import BulkIntake
from .lifecycle import Lifecycle
from .posts import TeamsChannelPosts
from .receipts import ReadReceipts
from .records import NotificationStore
from .timetable import Timetable
from .walk import AudienceWalk


@dataclass(frozen=True, kw_only=True)
class Notifications:
    """The notifications' parts, wired: what the app's functions call."""

    fanout: Fanout
    lifecycle: Lifecycle
    handlers: Handlers  # the work queue's dispatch table


def compose(
    settings: Settings,
    *,
    references: ReferenceStore,
    records: NotificationStore,
    timetable: Timetable,
    receipts: ReadReceipts,
    work: WorkQueue,
    delivery: Delivery,
    teams: TeamsReach,
) -> Notifications:
    """The object graph on top of the stores and the delivery engine; every default from `settings`."""
    budget = settings.retry_budget_seconds
    deliveries = Deliveries(
        records=records,
        delivery=delivery,
        work=work,
        receipts=receipts,
        teams=teams,
        retry_budget=budget,
        intake=BulkIntake(settings.max_sends_per_second if settings.rate_limits_enabled else None),
    )
    fanout = Fanout(
        references=references,
        records=records,
        work=work,
        timetable=timetable,
        teams=teams,
        walk=AudienceWalk(references=references, records=records, work=work, teams=teams),
        deliveries=deliveries,
        posts=TeamsChannelPosts(records=records, delivery=delivery, work=work, teams=teams, retry_budget=budget),
    )
    lifecycle = Lifecycle(records=records, delivery=delivery, work=work, timetable=timetable, retry_budget=budget)
    return Notifications(fanout=fanout, lifecycle=lifecycle, handlers=work_handlers(fanout, lifecycle, records))


def work_handlers(fanout: Fanout, lifecycle: Lifecycle, records: NotificationStore) -> Handlers:
    """The dispatch table: which part runs each kind of work message."""

    async def roster(work: RosterWork) -> None:
        await fanout.teams.roster.next_pages(work.team, work.failures)

    async def recount(work: RecountWork) -> None:
        await records.recount(work.notification, clock.now())

    return Handlers(
        page=lambda work: fanout.walk.next_page(work.notification),
        batch=fanout.deliveries.deliver_batch,
        start=lambda work: fanout.start_scheduled(work.notification),
        post=fanout.post_again,
        roster=roster,
        change=lifecycle.change,
        recount=recount,
    )
