"""The one place that builds clients: storage, HTTP, the channel adapter, and the stores on them.

Built once per process (per event loop, since aio clients belong to the loop that made them) and
reused by every invocation, which keeps cold start to a single set-up and warm calls free of it.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass

import aiohttp
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from . import report
from .bot import ProactiveBot
from .channel import ChannelAdapter
from .delivery import Delivery
from .references import ReferenceStore
from .reminder_dialogs import ReminderDialogs
from .reminders import ReminderStore
from .settings import Settings
from .tasks import LongTasks


@dataclass
class Clients:
    settings: Settings
    tables: TableServiceClient
    queues: QueueServiceClient
    http: aiohttp.ClientSession
    adapter: ChannelAdapter
    references: ReferenceStore
    reminders: ReminderStore
    delivery: Delivery
    tasks: LongTasks
    bot: ProactiveBot

    async def close(self) -> None:
        await self.http.close()
        await self.tables.close()
        await self.queues.close()


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[Clients]] = weakref.WeakKeyDictionary()


async def get() -> Clients:
    """This process's clients, built on first use."""
    loop = asyncio.get_running_loop()
    task = _by_loop.get(loop)
    if task is None or (task.done() and task.exception() is not None):
        # A task, not a plain value: concurrent first invocations share one build.
        task = _by_loop[loop] = loop.create_task(build(Settings.from_env()))
    return await asyncio.shield(task)


async def close() -> None:
    """Close this loop's clients (tests and the local host call it at shutdown)."""
    task = _by_loop.pop(asyncio.get_running_loop(), None)
    if task is not None and task.done() and task.exception() is None:
        await task.result().close()


async def build(settings: Settings) -> Clients:
    """Everything the app needs, from settings; `get()` calls this once per process."""
    tables = TableServiceClient.from_connection_string(settings.storage_connection)
    queues = QueueServiceClient.from_connection_string(settings.storage_connection)
    references_table = await tables.create_table_if_not_exists(settings.references_table)
    reminders_table = await tables.create_table_if_not_exists(settings.reminders_table)
    http = aiohttp.ClientSession()
    adapter = ChannelAdapter(settings, http)
    references = ReferenceStore(references_table)
    reminders = ReminderStore(reminders_table)
    delivery = Delivery(adapter, references)
    tasks = LongTasks(
        queues.get_queue_client(settings.tasks_queue), references, delivery,
        kinds={report.KIND: functools.partial(report.build, reminders)},
    )
    return Clients(
        settings=settings,
        tables=tables,
        queues=queues,
        http=http,
        adapter=adapter,
        references=references,
        reminders=reminders,
        delivery=delivery,
        tasks=tasks,
        bot=ProactiveBot(references, ReminderDialogs(reminders), tasks),
    )
