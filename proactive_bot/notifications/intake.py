"""How much bulk work one process takes on at once: a few seconds of sends per budget scope.

The queue hands an instance up to its trigger's batch size of batch messages at once (16 here,
by default), each with dozens of recipients: many times what the instance can send in a few
seconds. Sends taken on wait in the limiter's bulk lane, where urgent sends pass them (lanes),
but held there they still pin the instance's memory and the queue's messages, and keep them from
a sibling that has room. So a bulk batch is taken on only while this process holds fewer than
`seconds` × the scope's pace of bulk recipients for each scope the batch touches (a Teams tenant,
or another channel); otherwise it goes back on the queue for a moment (`Deliveries.deliver`).

A scope with nothing taken on always takes one batch, whatever its size, so a batch larger than
the bound still runs. The cost of yielding: one queue put and one delete per batch given back,
and the second or two it waits before being offered again (README, "Lanes and tenant budgets").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..references import TEAMS
from ..teams.rows import RosterMember
from ..work import BatchRecipient

HORIZON = 3.0  # seconds of sends at the scope's pace that one process takes on


def scope_of(recipient: BatchRecipient) -> str:
    """The budget a recipient's send counts in: its Teams tenant, or its channel."""
    if isinstance(recipient, RosterMember) or recipient.channel_id == TEAMS:
        return f"{TEAMS}/{recipient.tenant_id}"
    return recipient.channel_id


@dataclass
class BulkIntake:
    """The bulk recipients this process holds, counted per scope."""

    per_second: float  # a scope's pace (MaxSendsPerSecond)
    seconds: float = HORIZON
    _held: Counter[str] = field(default_factory=Counter)

    @property
    def bound(self) -> int:
        return max(1, round(self.per_second * self.seconds))

    def held(self, scope: str) -> int:
        return self._held[scope]

    @contextmanager
    def take(self, recipients: Sequence[BatchRecipient]) -> Iterator[bool]:
        """Yields whether the batch is taken on; if it is, it counts until the block ends."""
        wanted = Counter(scope_of(r) for r in recipients)
        if any(self._held[s] and self._held[s] + n > self.bound for s, n in wanted.items()):
            yield False
            return
        self._held.update(wanted)
        try:
            yield True
        finally:
            self._held.subtract(wanted)
            for scope in wanted:
                if self._held[scope] <= 0:
                    del self._held[scope]
