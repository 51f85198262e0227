"""Whether a budget scope's channel is answering: a circuit breaker, one per scope.

Every Connector call's answer is reported here (`Calls.make`): an HTTP answer other than 5xx
means the channel is up (a 403 or a 429 is an answer), a 5xx, a refused connection, a timeout
or a failed token fetch means it did not answer. When most of the recent answers in a scope
are failures (`OutagePolicy`, retries.py), the scope is `DOWN` until one request succeeds: the
limiter then paces it at the policy's probe rate (half-open probing), and the first success
closes the breaker, so the full pace is back one probe after the channel is.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable

from .limits import Window
from .retries import OUTAGE, OutagePolicy


class Health(enum.Enum):
    ANSWERING = "answering"
    DOWN = "down"


class _Answers:
    __slots__ = ("failures", "recent", "state")

    def __init__(self) -> None:
        self.recent: collections.deque[tuple[float, bool]] = collections.deque()
        self.failures = 0
        self.state = Health.ANSWERING


class ChannelHealth:
    def __init__(self, policy: OutagePolicy = OUTAGE, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._scopes: dict[str, _Answers] = {}

    def state(self, scope: str) -> Health:
        answers = self._scopes.get(scope)
        return answers.state if answers is not None else Health.ANSWERING

    def down(self, scope: str) -> bool:
        return self.state(scope) is Health.DOWN

    def paced(self, scope: str, windows: tuple[Window, ...]) -> tuple[Window, ...]:
        """The scope's windows, its first one capped at the probe rate while the scope is down."""
        if not self.down(scope):
            return windows
        probes = self.policy.probe_rate
        if not windows:
            return ((probes, 1.0),)
        (count, seconds), *rest = windows
        return ((min(count, max(1, round(probes * seconds))), seconds), *rest)

    def answered(self, scope: str, ok: bool) -> Health:
        """One call's answer in `scope`; returns the scope's state after it."""
        answers = self._scopes.setdefault(scope, _Answers())
        now = self._clock()
        if ok and answers.state is Health.DOWN:
            # A success while down: the channel is back. Forget the outage's failures, or they
            # would reopen the breaker at the next failure.
            answers.recent.clear()
            answers.failures = 0
            answers.state = Health.ANSWERING
        answers.recent.append((now, ok))
        answers.failures += not ok
        while answers.recent and answers.recent[0][0] < now - self.policy.window:
            _, was_ok = answers.recent.popleft()
            answers.failures -= not was_ok
        if (
            answers.state is Health.ANSWERING
            and answers.failures >= self.policy.min_failures
            and answers.failures >= self.policy.failing_ratio * len(answers.recent)
        ):
            answers.state = Health.DOWN
        if answers.state is Health.ANSWERING and not answers.failures and len(answers.recent) > 1:
            # Nothing to remember of a healthy scope but its last answer: memory follows
            # failures, not traffic.
            answers.recent = collections.deque([answers.recent[-1]])
        return answers.state
