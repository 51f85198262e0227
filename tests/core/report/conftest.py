"""A notification recorded with rows in several states, in a table of its own."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from azure.data.tables.aio import TableClient

from proactive_bot import clock
from proactive_bot.notifications.contract import validate
from proactive_bot.notifications.records import NotificationStore, RecipientState, Settled
from proactive_bot.references import StoredReference


def recipient(n: int) -> StoredReference:
    return StoredReference.from_reference(
        {
            "channelId": "msteams",
            "serviceUrl": "https://smba.trafficmanager.net/amer/",
            "conversation": {"id": f"a:1report-{n}", "conversationType": "personal"},
            "user": {"id": f"29:1user-{n}"},
            "bot": {"id": "28:bot"},
        },
        clock.now(),
    )


@dataclass
class Recorded:
    table: TableClient
    store: NotificationStore
    id: str


async def record(table: TableClient, notification_id: str, states: list[RecipientState]) -> Recorded:
    """A notification whose recipient n settled in states[n]; a failure says why."""
    store = NotificationStore(table)
    await store.create(validate({"id": notification_id, "to": {"all": True}, "text": "hi"}), clock.now(), "test")
    outcomes = [
        Settled(
            recipient(n),
            state,
            attempts=1,
            status={RecipientState.FAILED: 400, RecipientState.GONE: 403}.get(state, 201),
            detail="=HYPERLINK(bad) 400 BadArgument" if state is RecipientState.FAILED else "",
        )
        for n, state in enumerate(states)
    ]
    await store.settle(notification_id, outcomes, clock.now(), at_once=True)
    return Recorded(table, store, notification_id)


@pytest.fixture
async def recorded(new_table) -> Recorded:
    states = [RecipientState.SENT] * 20 + [RecipientState.FAILED] * 3 + [RecipientState.GONE] * 2
    return await record(await new_table(), "town-hall", states)
