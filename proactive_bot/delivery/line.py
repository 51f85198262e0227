"""The sends waiting for one budget scope's pace, in lanes (lanes.py): served by lane, first come
first served within a lane, with a floor for bulk."""

from __future__ import annotations

import asyncio

from .lanes import Lane

# While bulk sends and higher lanes both wait in one scope, bulk gets at least this share of its
# slots. Half: an urgent send waits at most one bulk send more than with strict priority (20 ms
# at 50/s), and a broadcast keeps at least half its pace however many urgent sends come (a
# storm of 1:1 notifications, each of them urgent, slows it down but cannot stop it).
BULK_FLOOR = 0.5


class Waiter:
    """A send in a scope's line."""

    __slots__ = ("lane", "ready", "turn")

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        # Bound by the scope's pace at its last look, not held back by its own conversation's
        # windows: only a ready waiter can be next (one that is not would hold up the line).
        self.ready = False
        self.turn = asyncio.Event()  # set when it may be next


class Line:
    """The sends waiting for one scope's pace. The next slot goes to the first ready waiter of
    the highest lane, except when bulk is owed one (`BULK_FLOOR`)."""

    __slots__ = ("_lanes", "_owed")

    def __init__(self) -> None:
        # Insertion-ordered: first come first served within a lane, and O(1) to leave.
        self._lanes: dict[Lane, dict[Waiter, None]] = {lane: {} for lane in Lane}
        self._owed = 0.0  # slots owed to bulk for those higher lanes took while it waited

    def __bool__(self) -> bool:
        return any(self._lanes.values())

    def join(self, lane: Lane, retry: bool = False) -> Waiter:
        """A new waiter at the back of its lane; a retry at the front, since it waited its turn
        once already (at the back again, one failure would cost it a second wait behind every
        send queued since, and a broadcast its tail)."""
        waiter = Waiter(lane)
        if retry:
            self._lanes[lane] = {waiter: None, **self._lanes[lane]}
        else:
            self._lanes[lane][waiter] = None
        return waiter

    def ready(self) -> int:
        """How many are waiting for the scope's pace (its demand, with the sends just made)."""
        return sum(waiter.ready for waiters in self._lanes.values() for waiter in waiters)

    def head(self) -> Waiter | None:
        bulk = self._first(Lane.BULK)
        if bulk is not None and self._owed >= 1.0:
            return bulk
        for lane in Lane:
            first = self._first(lane)
            if first is not None:
                return first
        return None

    def served(self, waiter: Waiter) -> None:
        """`waiter` took a slot: it leaves, and whoever is next is told."""
        del self._lanes[waiter.lane][waiter]
        if waiter.lane is Lane.BULK:
            self._owed = max(0.0, self._owed - 1.0)
        elif self._first(Lane.BULK) is not None:
            self._owed += BULK_FLOOR / (1.0 - BULK_FLOOR)
        else:
            self._owed = 0.0  # no waiting bulk, no debt: it is not saved up for later
        self.wake_head()

    def leave(self, waiter: Waiter) -> None:
        """`waiter` stopped waiting (cancelled, failed) without a slot."""
        self._lanes[waiter.lane].pop(waiter, None)
        self.wake_head()

    def wake_head(self) -> None:
        head = self.head()
        if head is not None:
            head.turn.set()

    def _first(self, lane: Lane) -> Waiter | None:
        return next((waiter for waiter in self._lanes[lane] if waiter.ready), None)
