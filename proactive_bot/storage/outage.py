"""Storage that briefly does not answer: what waits for it, and how it is seen to be back.

A write the process knows it must make (a claim, an outcome, a release, a read-index row) is not
given up because storage was away for seconds: it waits behind one probe and is tried again when
storage answers. Everyone waits behind the same probe, so while storage is away no new claims
are made (and so no new sends start), and nothing hammers it. Past `patience` (a send's lease)
the error is the caller's: by then its rows belong to a dead worker's story (records/states.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError, ServiceResponseError
from azure.data.tables.aio import TableClient

log = logging.getLogger(__name__)

T = TypeVar("T")

# A connection refused or reset, a timeout, a response cut short: storage did not answer.
_UNANSWERED = (ServiceRequestError, ServiceResponseError, aiohttp.ClientError, TimeoutError, OSError)
# Storage answered that it cannot answer now (throttling, its own outage).
_UNAVAILABLE = {408, 429, 500, 502, 503, 504}
PROBE_EVERY = (0.25, 2.0)  # seconds between probes while storage is away: first, at most


class StorageUnavailable(Exception):
    """Storage did not answer for as long as the caller could wait (what it held is kept)."""


def unavailable(error: BaseException) -> bool:
    """Whether `error` says storage is away (try again later), not that the request was wrong."""
    if isinstance(error, HttpResponseError) and not isinstance(error, ServiceResponseError):
        return error.status_code in _UNAVAILABLE
    return isinstance(error, _UNANSWERED)


class StorageGate:
    """Whether storage answers, as this process last heard, and a way to wait until it does.

    `probe` is a cheap request that storage answers whenever it is up (raising one of the errors
    `unavailable` names when it is not).
    """

    def __init__(self, probe: Callable[[], Awaitable[object]], *, patience: float) -> None:
        self._probe = probe
        self._patience = patience  # seconds a caller's request may wait for storage in all
        self._up = asyncio.Event()
        self._up.set()
        self._prober: asyncio.Task[None] | None = None
        self._down_since = 0.0

    @property
    def up(self) -> bool:
        return self._up.is_set()

    async def persist(self, request: Callable[[], Awaitable[T]]) -> T:
        """`request()`'s answer; while storage is away, tried again each time it is back, for
        up to `patience` seconds. Errors that are answers (a 404, a 409, a 412) are raised at once."""
        until = time.monotonic() + self._patience
        while True:
            await self._until_up(until)
            try:
                return await request()
            except Exception as error:
                if not unavailable(error) or time.monotonic() >= until:
                    raise
                self._went_down(error)

    async def _until_up(self, until: float) -> None:
        if self._up.is_set():
            return
        left = until - time.monotonic()
        if left > 0:
            try:
                await asyncio.wait_for(self._up.wait(), left)
            except TimeoutError:
                pass  # one more try, whose error is then the caller's

    def _went_down(self, error: BaseException) -> None:
        if self._prober is not None and not self._prober.done():
            return
        if self._up.is_set():
            self._down_since = time.monotonic()
            log.warning("storage does not answer (%s: %s): writes wait for it", type(error).__name__, error)
        self._up.clear()
        self._prober = asyncio.create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        delay, ceiling = PROBE_EVERY
        while True:
            await asyncio.sleep(delay)
            try:
                await self._probe()
            except Exception as error:
                if not unavailable(error):
                    break  # an answer, if not the expected one: storage is there
                delay = min(delay * 2, ceiling)
                continue
            break
        log.warning("storage answers again after %.1f s", time.monotonic() - self._down_since)
        self._up.set()


def probe_of(table: TableClient) -> Callable[[], Awaitable[object]]:
    """A probe for `StorageGate`: a read of a row that is never there (404 is storage answering),
    made once, without the SDK's own retries (the gate paces the probes)."""

    async def probe() -> object:
        try:
            return await table.get_entity("~probe", "~probe", retry_total=0)
        except ResourceNotFoundError:
            return None

    return probe
