"""Timer triggers: fire on an NCRONTAB/TimeSpan schedule, never two runs of one function at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from azure.functions.timer import TimerRequest

from .functions import MANUAL_REASON, LoadedFunction
from .ncrontab import CronSchedule, IntervalSchedule

log = logging.getLogger("funchost")

Invoke = Callable[[LoadedFunction, Any, str], Awaitable[Any]]
Spawn = Callable[[Awaitable[None]], asyncio.Task[None]]


def next_after(schedule: CronSchedule | IntervalSchedule, zone: tzinfo, moment: datetime) -> datetime:
    """The schedule read on `zone`'s wall clock, answered in UTC.

    All arithmetic stays in UTC: Python compares and subtracts datetimes that share a tzinfo
    by wall clock, which is wrong across a DST change.
    """
    if isinstance(schedule, IntervalSchedule):  # elapsed time, not wall clock
        return schedule.next_occurrence(moment.astimezone(UTC))
    return schedule.next_occurrence(moment.astimezone(zone)).astimezone(UTC)


def is_past_due(schedule: CronSchedule | IntervalSchedule, zone: tzinfo, due: datetime, now: datetime) -> bool:
    """Late by more than the schedule: the occurrence after `due` has already passed."""
    return next_after(schedule, zone, due) <= now


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class TimerRunner:
    def __init__(
        self,
        function: LoadedFunction,
        schedule: CronSchedule | IntervalSchedule,
        zone: tzinfo,
        invoke: Invoke,
        spawn: Spawn,
    ) -> None:
        self.function = function
        self.schedule = schedule
        self._zone = zone
        self._invoke = invoke
        self._spawn = spawn
        # The real host holds a singleton lock per timer function; locally one lock suffices.
        self._lock = asyncio.Lock()
        self._pending = 0  # runs scheduled or running, counted before their task starts
        self._last: datetime | None = None
        self._next: datetime | None = None

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def run(self, stopping: asyncio.Event) -> None:
        if self.function.trigger.get("runOnStartup") is True:
            self.fire(past_due=False, reason=f"Timer fired at {self.now().isoformat()} (runOnStartup)")
        due = next_after(self.schedule, self._zone, self.now())
        while True:
            self._next = due
            if await self._sleep_until(due, stopping):
                return
            now = self.now()
            if self._pending:
                log.warning(
                    "Timer 'Functions.%s' skipped its occurrence at %s: the previous run is still in progress.",
                    self.function.name,
                    due.isoformat(),
                )
            else:
                self._last = due
                self.fire(is_past_due(self.schedule, self._zone, due, now), f"Timer fired at {now.isoformat()}")
            due = next_after(self.schedule, self._zone, due)
            if due <= now:  # fell behind: resume from now rather than replay the backlog
                due = next_after(self.schedule, self._zone, now)

    async def _sleep_until(self, due: datetime, stopping: asyncio.Event) -> bool:
        """True if the host is stopping. Re-checks the wall clock: loop timers may wake early."""
        while (delay := (due - self.now()).total_seconds()) > 0:
            try:
                await asyncio.wait_for(stopping.wait(), delay)
                return True
            except TimeoutError:
                pass
        return stopping.is_set()

    def fire(self, past_due: bool, reason: str = MANUAL_REASON) -> asyncio.Task[None]:
        """Start one run in the background; runs of this function are serialized."""
        self._pending += 1
        return self._spawn(self._run_once(past_due, reason))

    async def _run_once(self, past_due: bool, reason: str) -> None:
        try:
            async with self._lock:
                status = {"Last": _iso(self._last), "Next": _iso(self._next), "LastUpdated": _iso(self.now())}
                request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
                try:
                    await self._invoke(self.function, request, reason)
                except Exception:  # logged by the invoker; a timer has nothing to retry
                    pass
        finally:
            self._pending -= 1
