"""The one place that builds clients: storage, HTTP, the channel adapter, and the stores on them.

Built once per process (per event loop, since aio clients belong to the loop that made them) and
reused by every invocation, which keeps cold start to a single set-up and warm calls free of it.
The storage I/O (tables and queues made sure of) happens in `build`; the objects on top are made
on first use, so a function imports and builds only what it touches (queue_notify never loads the
reminders nor the bot; long_tasks builds no fan-out).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import weakref
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from . import redaction, telemetry
from .channel.adapter import ChannelAdapter
from .delivery.limits import LimitsConfig
from .delivery.rate_limits import RateLimiter
from .delivery.retries import NOTIFICATIONS, RetryPolicy
from .settings import Settings
from .storage.services import storage_clients

if TYPE_CHECKING:
    from .bot import ProactiveBot
    from .delivery.budget import SharedBudget
    from .delivery.sender import Delivery
    from .notifications.compose import Notifications
    from .notifications.fanout import Fanout
    from .notifications.front_door import FrontDoor
    from .notifications.lifecycle import Lifecycle
    from .notifications.receipts import ReadReceipts
    from .notifications.records import NotificationStore
    from .notifications.timetable import Timetable
    from .references import ReferenceStore
    from .reminders.store import ReminderStore
    from .reminders.timer import ReminderTimer
    from .tasks import LongTasks
    from .teams.reach import TeamsReach
    from .teams.store import TeamsStore
    from .work import Handlers, WorkQueue


class Clients:
    """The app's parts. Storage clients, tables, queues and the HTTP session are made by `build`;
    every other part on first use (each imports its modules then), sharing one another."""

    def __init__(
        self,
        settings: Settings,
        tables: TableServiceClient,
        queues: QueueServiceClient,
        credential: AsyncTokenCredential | None,
        table_clients: dict[str, TableClient],
        queue_clients: dict[str, QueueClient],
        http: aiohttp.ClientSession,
        adapter: ChannelAdapter,
        limits: LimitsConfig,
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.queues = queues
        self.credential = credential  # identity-based storage
        self.http = http
        self.adapter = adapter
        self._tables = table_clients  # by table name, each made sure of by `build`
        self._queues = queue_clients
        self.notifications_queue = queue_clients[settings.notifications_queue]
        self._limits = limits

    @functools.cached_property
    def references(self) -> ReferenceStore:
        from .references import ReferenceStore

        return ReferenceStore(self._tables[self.settings.references_table])

    @functools.cached_property
    def reminders(self) -> ReminderStore:
        from .reminders.store import ReminderStore

        return ReminderStore(self._tables[self.settings.reminders_table])

    @functools.cached_property
    def notifications(self) -> NotificationStore:
        from .notifications.records import NotificationStore

        return NotificationStore(self._tables[self.settings.notifications_table])

    @functools.cached_property
    def budget(self) -> SharedBudget | None:
        """Each scope's ceiling and the app-wide cap, shared by the instances (delivery/budget.py)."""
        from .delivery.budget import SharedBudget
        from .delivery.budget_table import BudgetTable

        limits = self._limits
        if not (limits.enabled and limits.app):
            return None
        return SharedBudget(
            BudgetTable(self._tables[self.settings.budget_table], self.settings.app_id or "local"),
            limits.app[0][0],
            app_ceiling=limits.app_wide[0][0] if limits.app_wide else None,
        )

    @functools.cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self._limits, budget=self.budget)

    @functools.cached_property
    def delivery(self) -> Delivery:
        from .delivery.sender import Delivery

        return Delivery(self.adapter, self.references, self.limiter, self.settings.delivery_concurrency)

    @functools.cached_property
    def timetable(self) -> Timetable:
        from .notifications.timetable import Timetable

        return Timetable(self._tables[self.settings.notifications_table])

    @functools.cached_property
    def receipts(self) -> ReadReceipts:
        from .notifications.receipts import ReadReceipts

        return ReadReceipts(self._tables[self.settings.notifications_table], records=self.notifications)

    @functools.cached_property
    def work(self) -> WorkQueue:
        from .work import WorkQueue

        return WorkQueue(self._queues[self.settings.work_queue])

    @functools.cached_property
    def teams(self) -> TeamsReach:
        from .teams.store import TeamsStore

        return teams_reach(
            self.adapter,
            self.references,
            TeamsStore(self._tables[self.settings.teams_table]),
            self.limiter,
            self.work,
            self.delivery,
        )

    @functools.cached_property
    def tasks(self) -> LongTasks:
        from .reminders import report
        from .tasks import LongTasks

        kinds = {report.KIND: functools.partial(report.build, self.reminders)}
        return LongTasks(self._queues[self.settings.tasks_queue], self.references, self.delivery, kinds=kinds)

    @functools.cached_property
    def core(self) -> Notifications:
        """The notifications' object graph (notifications/compose.py, as the tests wire it)."""
        from .notifications.compose import compose

        return compose(
            self.settings,
            references=self.references,
            records=self.notifications,
            timetable=self.timetable,
            receipts=self.receipts,
            work=self.work,
            delivery=self.delivery,
            teams=self.teams,
        )

    @property
    def fanout(self) -> Fanout:
        return self.core.fanout

    @functools.cached_property
    def front_door(self) -> FrontDoor:
        from .notifications.front_door import FrontDoor

        return FrontDoor(records=self.notifications, fanout=self.fanout, work=self.work, queue=self.notifications_queue)

    @property
    def lifecycle(self) -> Lifecycle:
        return self.core.lifecycle

    @property
    def work_handlers(self) -> Handlers:
        return self.core.handlers

    @functools.cached_property
    def reminder_timer(self) -> ReminderTimer:
        from .reminders.timer import ReminderTimer

        return ReminderTimer(self.reminders, self.references, self.delivery)

    @functools.cached_property
    def bot(self) -> ProactiveBot:
        from .bot import ProactiveBot
        from .reminders.dialogs import ReminderDialogs
        from .teams.installs import TeamsInstalls

        teams = self.teams
        installs = TeamsInstalls(teams.store, teams.roster, self.references)
        return ProactiveBot(self.references, ReminderDialogs(self.reminders), self.tasks, self.receipts, installs)

    async def close(self) -> None:
        budget = self.__dict__.get("budget")  # only if it was ever made
        if budget is not None:
            await budget.close()  # hands this instance's share back to its siblings
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


async def _all_or_none(*steps: Awaitable[Any]) -> list[Any]:
    """Every step's result; at the first failure the others are cancelled (and have ended) before
    it is raised. The storage SDKs retry a refused connection for up to a minute and more (the
    queue client's backoff), so one failed step is the answer, and a step cut off by the clients
    closing under it would only add noise to the log."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _queue(service: QueueServiceClient, name: str) -> QueueClient:
    client = service.get_queue_client(name)
    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()
    return client


def teams_reach(
    adapter: ChannelAdapter,
    references: ReferenceStore,
    store: TeamsStore,
    limiter: RateLimiter,
    work: WorkQueue,
    delivery: Delivery,
    retries: RetryPolicy = NOTIFICATIONS,
) -> TeamsReach:
    """Teams installs, rosters and chat creates: the sends' limiter, and their slots in flight."""
    from .teams.chats import ChatOpener
    from .teams.reach import TeamsReach
    from .teams.roster import RosterWalk

    chats = ChatOpener(adapter, references, limiter, delivery.slots, retries)
    return TeamsReach(store, chats, RosterWalk(store, adapter, limiter, work, slots=delivery.slots), references)


def _spare_collections() -> None:
    """Move everything the cold start made (modules, the SDKs' classes, these clients) out of the
    collector's sight, once per process: it lives as long as the process, and every full
    collection walked all of it, and each such stop made the sends then due leave late (README,
    Benchmarks). Without a collection first: the few cycles already garbage stay, once, rather
    than adding that collection to every cold start."""
    if gc.get_freeze_count() == 0:
        gc.freeze()


async def build(settings: Settings, **storage_options: Any) -> Clients:
    """The app's clients, from settings: the storage I/O here, the parts on first use (Clients);
    `get()` calls this once per process."""
    settings.check()
    # Parsed here, not at the first send: a malformed RateLimits fails every cold start at once.
    limits = LimitsConfig.parse(
        settings.max_sends_per_second,
        settings.rate_limits,
        settings.rate_limits_enabled,
        settings.max_app_sends_per_second,
    )
    redaction.install(
        [settings.app_password, settings.identity_header, *redaction.storage_secrets(settings.storage_connection)]
    )
    telemetry.start(settings.telemetry)  # once per process; nothing is imported while it is off
    tables, queues, credential = storage_clients(settings, **storage_options)
    # Enough pooled connections for every send in flight, plus storage calls of our own.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=settings.delivery_concurrency + 16))
    table_names = (
        settings.references_table,
        settings.reminders_table,
        settings.notifications_table,
        settings.teams_table,
        settings.budget_table,
    )
    queue_names = (settings.notifications_queue, settings.work_queue, settings.tasks_queue)
    try:
        adapter = ChannelAdapter(settings, http)  # refuses a malformed AllowedServiceUrlHosts
        made = await _all_or_none(
            *(tables.create_table_if_not_exists(name) for name in table_names),
            *(_queue(queues, name) for name in queue_names),
        )
    except BaseException:
        # Storage unreachable (or refusing us): the invocation fails with that error and the next
        # one builds again (`get`), so these must not stay open, one set per failed invocation.
        await http.close()
        await _close_storage(tables, queues, credential)
        raise
    table_clients, queue_clients = made[: len(table_names)], made[len(table_names) :]
    app = Clients(
        settings,
        tables,
        queues,
        credential,
        dict(zip(table_names, table_clients, strict=False)),
        dict(zip(queue_names, queue_clients, strict=False)),
        http,
        adapter,
        limits,
    )
    _spare_collections()
    return app
