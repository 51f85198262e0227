"""The one place that builds clients: storage, HTTP, the channel adapter, and the stores on them.

Built once per process (per event loop, since aio clients belong to the loop that made them) and
reused by every invocation, which keeps cold start to a single set-up and warm calls free of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from . import redaction
from .bot import ProactiveBot
from .channel.adapter import ChannelAdapter
from .delivery.budget import BudgetTable, SharedBudget
from .delivery.rate_limits import LimitsConfig, RateLimiter
from .delivery.retries import NOTIFICATIONS, RetryPolicy
from .delivery.sender import Delivery
from .notifications.fanout import Fanout, WorkQueue
from .notifications.lifecycle import Lifecycle
from .notifications.receipts import ReadReceipts
from .notifications.records import NotificationStore
from .notifications.schedule import Schedule
from .references import ReferenceStore
from .reminders import report
from .reminders.dialogs import ReminderDialogs
from .reminders.store import ReminderStore
from .reminders.timer import ReminderTimer
from .settings import Settings, StorageIdentity
from .tasks import LongTasks
from .teams.chats import ChatOpener
from .teams.installs import TeamsInstalls
from .teams.reach import TeamsReach
from .teams.roster import RosterWalk
from .teams.store import TeamsStore


@dataclass
class Clients:
    settings: Settings
    tables: TableServiceClient
    queues: QueueServiceClient
    notifications_queue: QueueClient
    http: aiohttp.ClientSession
    adapter: ChannelAdapter
    references: ReferenceStore
    reminders: ReminderStore
    notifications: NotificationStore
    delivery: Delivery
    fanout: Fanout
    lifecycle: Lifecycle
    reminder_timer: ReminderTimer
    tasks: LongTasks
    teams: TeamsReach
    bot: ProactiveBot
    credential: AsyncTokenCredential | None = None  # identity-based storage
    budget: SharedBudget | None = None

    async def close(self) -> None:
        if self.budget is not None:
            await self.budget.close()  # hands this instance's share back to its siblings
        await self.http.close()
        await _close_storage(self.tables, self.queues, self.credential)


async def _close_storage(
    tables: TableServiceClient, queues: QueueServiceClient, credential: AsyncTokenCredential | None
) -> None:
    await tables.close()
    await queues.close()
    if credential is not None:
        await credential.close()


_Built = tuple[Settings, "asyncio.Task[Clients]"]
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Built] = weakref.WeakKeyDictionary()
_closing: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


async def get() -> Clients:
    """This process's clients, built on first use.

    In Azure the settings never change under a running worker; in tests and local tools one
    process hosts the app under several configurations, so new settings mean new clients.
    """
    loop = asyncio.get_running_loop()
    settings = Settings.from_env()
    built = _by_loop.get(loop)
    if built is None or built[0] != settings or (built[1].done() and built[1].exception() is not None):
        if built is not None:
            closing = loop.create_task(_close(built[1]))
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)
        # A task, not a plain value: concurrent first invocations share one build.
        built = _by_loop[loop] = (settings, loop.create_task(build(settings)))
    return await asyncio.shield(built[1])


async def close() -> None:
    """Close this loop's clients (tests and the local host call it at shutdown)."""
    built = _by_loop.pop(asyncio.get_running_loop(), None)
    if built is not None:
        await _close(built[1])


async def _close(task: asyncio.Task[Clients]) -> None:
    if not task.done():
        await asyncio.wait([task])
    if task.exception() is None:
        await task.result().close()


def storage_uses_environment() -> bool:
    """Whether storage requests should read proxy settings (and ~/.netrc) from the environment.

    Only when a proxy is configured: aiohttp's trust_env looks both up on every request, which
    was a fifth of the host's CPU in a broadcast.
    """
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")  # what aiohttp reads


async def _queue(service: QueueServiceClient, name: str) -> QueueClient:
    client = service.get_queue_client(name)
    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()
    return client


def teams_reach(
    adapter: ChannelAdapter, references: ReferenceStore, store: TeamsStore, limiter: RateLimiter, work: WorkQueue,
    delivery: Delivery, retries: RetryPolicy = NOTIFICATIONS,
) -> TeamsReach:
    """Teams installs, rosters and chat creation, paced by the same limiter as sends and bounded
    by the same requests in flight."""
    chats = ChatOpener(adapter, references, limiter, delivery.slots, retries)
    return TeamsReach(store, chats, RosterWalk(store, adapter, limiter, work), references)


def storage_credential(identity: StorageIdentity) -> AsyncTokenCredential:
    """The managed identity storage requests are made as (tokens via the platform's endpoint)."""
    from azure.identity.aio import ManagedIdentityCredential  # only identity-based deployments need it

    return ManagedIdentityCredential(client_id=identity.client_id or None)


def storage_clients(
    settings: Settings, **options: Any
) -> tuple[TableServiceClient, QueueServiceClient, AsyncTokenCredential | None]:
    """Table and queue service clients: from the connection string, or from the identity settings
    (AzureWebJobsStorage__*) with Entra tokens. `options` go to both (tests pass
    `connection_verify` for a self-signed emulator)."""
    options.setdefault("use_env_settings", storage_uses_environment())
    if settings.storage_identity is None:
        return (
            TableServiceClient.from_connection_string(settings.storage_connection, **options),
            QueueServiceClient.from_connection_string(settings.storage_connection, **options),
            None,
        )
    identity = settings.storage_identity
    credential = storage_credential(identity)
    return (
        TableServiceClient(identity.table_endpoint, credential=credential, **options),
        QueueServiceClient(identity.queue_endpoint, credential=credential, **options),
        credential,
    )


async def build(settings: Settings, **storage_options: Any) -> Clients:
    """Everything the app needs, from settings; `get()` calls this once per process."""
    settings.check()
    redaction.install([
        settings.app_password, settings.identity_header, *redaction.storage_secrets(settings.storage_connection)
    ])
    tables, queues, credential = storage_clients(settings, **storage_options)
    try:
        references_table, reminders_table, notifications_table, teams_table, budget_table = await asyncio.gather(
            tables.create_table_if_not_exists(settings.references_table),
            tables.create_table_if_not_exists(settings.reminders_table),
            tables.create_table_if_not_exists(settings.notifications_table),
            tables.create_table_if_not_exists(settings.teams_table),
            tables.create_table_if_not_exists(settings.budget_table),
        )
        notifications_queue, work_queue, tasks_queue = await asyncio.gather(
            _queue(queues, settings.notifications_queue),
            _queue(queues, settings.work_queue),
            _queue(queues, settings.tasks_queue),
        )
    except BaseException:
        # Storage unreachable (or refusing us): the invocation fails with that error and the next
        # one builds again (`get`), so these must not stay open, one set per failed invocation.
        await _close_storage(tables, queues, credential)
        raise
    # Enough pooled connections for every send in flight, plus storage calls of our own.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=settings.delivery_concurrency + 16))
    adapter = ChannelAdapter(settings, http)
    references = ReferenceStore(references_table)
    reminders = ReminderStore(reminders_table)
    notifications = NotificationStore(notifications_table)
    limits = LimitsConfig.parse(settings.max_sends_per_second, settings.rate_limits, settings.rate_limits_enabled)
    # The app's ceiling is one budget for all its instances (delivery/budget.py).
    budget = (
        SharedBudget(BudgetTable(budget_table, settings.app_id or "local"), limits.app[0][0])
        if limits.enabled and limits.app else None
    )
    limiter = RateLimiter(limits, budget=budget)
    delivery = Delivery(adapter, references, limiter, settings.delivery_concurrency)
    schedule = Schedule(notifications_table)
    receipts = ReadReceipts(notifications_table)
    work = WorkQueue(work_queue)
    teams = teams_reach(adapter, references, TeamsStore(teams_table), limiter, work, delivery)
    tasks = LongTasks(
        tasks_queue, references, delivery, kinds={report.KIND: functools.partial(report.build, reminders)}
    )
    return Clients(
        settings=settings,
        tables=tables,
        queues=queues,
        notifications_queue=notifications_queue,
        http=http,
        adapter=adapter,
        references=references,
        reminders=reminders,
        notifications=notifications,
        delivery=delivery,
        fanout=Fanout(references, notifications, delivery, work, settings.retry_budget_seconds, schedule, receipts, teams),
        lifecycle=Lifecycle(notifications, delivery, work, schedule, settings.retry_budget_seconds),
        reminder_timer=ReminderTimer(reminders, references, delivery),
        tasks=tasks,
        teams=teams,
        bot=ProactiveBot(
            references, ReminderDialogs(reminders), tasks, receipts, TeamsInstalls(teams.store, teams.roster, references)
        ),
        credential=credential,
        budget=budget,
    )
