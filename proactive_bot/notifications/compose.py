"""Where the notifications' object graph is wired: the app's `Clients` and the tests both call
`compose`, so there is one wiring, and one dispatch table for the work queue."""

from __future__ import annotations

from ..work import Handlers, InvalidWork, RosterWork
from .fanout import Fanout
from .lifecycle import Lifecycle


def work_handlers(fanout: Fanout, lifecycle: Lifecycle) -> Handlers:
    """The dispatch table: which part runs each kind of work message."""
    teams = fanout.teams

    async def roster(work: RosterWork) -> None:
        if teams is None:
            raise InvalidWork("a roster walk, but Teams reach is not configured")
        await teams.roster.next_pages(work.team, work.failures)

    return Handlers(
        page=lambda work: fanout.next_page(work.notification),
        batch=fanout.deliver_batch,
        release=lambda work: fanout.release(work.notification),
        post=fanout.post_again,
        roster=roster,
        change=lifecycle.change,
    )
