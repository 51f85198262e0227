"""Building the delivery engine on fresh tables and queues, against a Connector-API stub."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from azure.storage.queue.aio import QueueClient

from devtools.connector_stub import ConnectorStub
from proactive_bot.channel import ChannelAdapter
from proactive_bot.channel import activity as channel_module
from proactive_bot.clients import teams_reach
from proactive_bot.delivery import NOTIFICATIONS, Delivery, RetryPolicy
from proactive_bot.delivery.limits import LimitsConfig
from proactive_bot.delivery.rate_limits import RateLimiter
from proactive_bot.notifications.compose import compose
from proactive_bot.notifications.fanout import Fanout
from proactive_bot.notifications.lifecycle import Lifecycle
from proactive_bot.notifications.receipts import ReadReceipts
from proactive_bot.notifications.records import NotificationStore
from proactive_bot.notifications.timetable import Timetable
from proactive_bot.references import ReferenceStore
from proactive_bot.settings import Settings
from proactive_bot.teams.installs import TeamsInstalls
from proactive_bot.teams.reach import TeamsReach
from proactive_bot.teams.store import TeamsStore
from proactive_bot.work import Handlers, WorkQueue, parse
from tests import activities
from tests.support.polling import drain_queue


@dataclass(kw_only=True)
class Engine:
    stub: ConnectorStub
    references: ReferenceStore
    records: NotificationStore
    delivery: Delivery
    fanout: Fanout
    work_queue: QueueClient
    work: WorkQueue  # the same queue behind the work contract
    lifecycle: Lifecycle
    handlers: Handlers  # the work queue's dispatch table, as the app builds it
    timetable: Timetable
    receipts: ReadReceipts
    teams: TeamsReach
    installs: TeamsInstalls
    limiter: RateLimiter  # shared by delivery, chat creates and roster reads, as in the app

    async def users(self, n: int, channel_id: str = "msteams") -> list[dict]:
        """n users who talked to the bot (their references stored); returns the references."""
        stored = []
        for _ in range(n):
            message = activities.teams_message("hi", self.stub.url)
            message["channelId"] = channel_id
            reference = channel_module.conversation_reference(channel_module.parse_activity(message))
            await self.references.save(reference)
            stored.append(reference)
        return stored

    async def drain(self, *, wait_for_delayed: float = 0.0) -> int:
        """Play the Functions host for the work queue: handle messages until none is left."""

        async def run(message) -> None:
            await self.handle(json.loads(message.content))

        return await drain_queue(self.work_queue, run, wait_for_delayed=wait_for_delayed)

    async def handle(self, work: dict) -> None:
        """One work message, dispatched as app.process_work does (the same table)."""
        await self.handlers.run(parse(work))


@pytest.fixture
async def engine_factory(storage_connection, new_table) -> AsyncIterator:
    made: list = []

    async def make(
        *, limits: LimitsConfig | None = None, concurrency: int = 32, retry_budget: float = 5.0, **settings_changes
    ) -> Engine:
        stub = ConnectorStub()
        await stub.start()
        http = aiohttp.ClientSession()
        queue = QueueClient.from_connection_string(storage_connection, f"work-{uuid.uuid4().hex[:12]}")
        await queue.create_queue()
        settings = Settings(
            storage_connection=storage_connection,
            delivery_concurrency=concurrency,
            retry_budget_seconds=retry_budget,
            **settings_changes,
        )
        references = ReferenceStore(await new_table())
        limiter = RateLimiter(limits or LimitsConfig(enabled=False))
        # Short backoff: tests check what is retried, not how long the pauses are.
        retries = RetryPolicy(max_attempts=NOTIFICATIONS.max_attempts, first_delay=0.02, max_delay=30.0, jitter=True)
        adapter = ChannelAdapter(settings, http)
        delivery = Delivery(adapter, references, limiter, settings.delivery_concurrency, retries)
        table = await new_table()
        records = NotificationStore(table)
        timetable, receipts = Timetable(table), ReadReceipts(table, records=records)
        work = WorkQueue(queue)
        teams = teams_reach(adapter, references, TeamsStore(await new_table()), limiter, work, delivery, retries)
        core = compose(
            settings,
            references=references,
            records=records,
            timetable=timetable,
            receipts=receipts,
            work=work,
            delivery=delivery,
            teams=teams,
        )
        made.append((stub, http, queue))
        return Engine(
            stub=stub,
            references=references,
            records=records,
            delivery=delivery,
            fanout=core.fanout,
            work_queue=queue,
            work=work,
            lifecycle=core.lifecycle,
            handlers=core.handlers,
            timetable=timetable,
            receipts=receipts,
            teams=teams,
            installs=TeamsInstalls(teams.store, teams.roster, references),
            limiter=limiter,
        )

    yield make
    for stub, http, queue in made:
        await stub.stop()
        await http.close()
        await queue.delete_queue()
        await queue.close()
