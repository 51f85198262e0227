"""Row writes that arrive close together, sent as entity-group transactions.

Generic over what the rows are; the notification records use it for claims and outcomes.
"""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from .outage import StorageGate, unavailable


class Write(enum.Enum):
    CREATE = "create"  # fails (ResourceExistsError) if the row exists
    UPSERT = "upsert"  # replaces the row


class CoalescedWrites:
    """Row writes that arrive close together go out as one entity-group transaction.

    At full speed a process claims and settles hundreds of recipients a second; one request per
    row is what storage cannot keep up with (Azurite here: ~660 single inserts/s vs ~2,000 rows/s
    in transactions of 100; a 10,000-recipient broadcast went from 349 to 463 sends/s when claims
    waited 50 ms for company instead of 10, and outcomes 250 instead of 100). Each caller still
    waits for its own row, so claim-then-send holds.
    """

    MAX_ROWS = 100  # an entity-group transaction's limit

    def __init__(self, table: TableClient, write: Write, window: float, gate: StorageGate | None = None) -> None:
        self._table = table
        self._gate = gate  # while storage is away, writes wait for it (outage.py)
        self._write_kind = write
        self._window = window  # seconds to wait for company
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._writing: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def write(self, entities: list[dict[str, Any]], *, at_once: bool = False) -> None:
        """Write the rows (`at_once`: now, together with whatever is waiting, rather than after the
        window). Every row is attempted; then the first error is raised (a create's
        ResourceExistsError if its row is already there)."""
        alone = not self._waiting and not self._writing
        pending = [self._enqueue(entity) for entity in entities]
        if at_once or alone:
            # Alone (nothing waiting, nothing on its way): no company is coming soon enough to
            # be worth waiting for, e.g. a single-recipient notification. Under load there is
            # always a write on its way, and rows wait the window to share a transaction.
            self._flush_now()
        elif self._waiting and self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_soon())
        results = await asyncio.gather(*pending, return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            raise errors[0]

    def _enqueue(self, entity: dict[str, Any]) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((entity, done))
        if len(self._waiting) >= self.MAX_ROWS:
            self._flush_now()
        return done

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._window)
        self._flusher = None
        self._flush_now()

    def _flush_now(self) -> None:
        waiting, self._waiting = self._waiting, []
        by_partition: dict[str, list[tuple[dict[str, Any], asyncio.Future[None]]]] = {}
        for item in waiting:
            by_partition.setdefault(item[0]["PartitionKey"], []).append(item)
        for group in by_partition.values():
            task = asyncio.create_task(self._write(group))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)

    async def _write(self, group: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        if len(group) > 1:
            try:
                operations = [self._operation(entity) for entity, _ in group]
                await self._persist(lambda: self._table.submit_transaction(operations))
            except HttpResponseError as error:
                # A row exists, one is bad, or one appears twice: all or nothing, so one by one
                # (unless storage is still away after the gate's patience).
                if unavailable(error):
                    for _, done in group:
                        _resolve(done, error)
                    return
            except Exception as error:
                for _, done in group:
                    _resolve(done, error)
                return
            else:
                for _, done in group:
                    _resolve(done)
                return
        for entity, done in group:
            try:
                await self._persist(functools.partial(self._write_one, entity))
            except Exception as error:
                _resolve(done, error)
            else:
                _resolve(done)

    async def _write_one(self, entity: dict[str, Any]) -> None:
        if self._write_kind is Write.CREATE:
            await self._table.create_entity(entity)
        else:
            await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def _persist(self, write: Callable[[], Awaitable[Any]]) -> Any:
        # A create tried again may find the row its first try wrote: the caller's ResourceExistsError
        # path (a claim then knows its own row by its token, records/store.py).
        return await (self._gate.persist(write) if self._gate is not None else write())

    def _operation(self, entity: dict[str, Any]) -> tuple[Any, ...]:
        if self._write_kind is Write.CREATE:
            return ("create", entity)
        return ("upsert", entity, {"mode": UpdateMode.REPLACE})


def _resolve(done: asyncio.Future[None], error: Exception | None = None) -> None:
    # A caller that was cancelled has stopped waiting; its row is written all the same.
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
