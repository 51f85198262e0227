"""What became of a notification: its rows counted. Pure arithmetic over typed rows (the store
reads them, `tally` counts them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .rows import Header, RecipientRow
from .states import ChangeFailure, NotificationState, RecipientState, as_seen


@dataclass(frozen=True, kw_only=True)
class Status:
    header: Header
    counts: dict[RecipientState, int]
    throttled: int  # 429s met, over every attempt
    rows: list[RecipientRow] | None  # with detail
    resent: int = 0  # recipients handed out again after an unconfirmed send
    read: int = 0  # rows with a read receipt
    updated: int = 0  # rows an edit reached
    unsupported: int = 0  # rows whose channel cannot edit or delete
    change_failed: int = 0  # rows whose last edit or recall was given up after the retry policy
    changing: int = 0  # sent rows an edit or recall is still to reach
    scheduled: bool = False  # its notBefore is still ahead

    @property
    def recipients(self) -> int:
        """Known so far: the walk's count, or the rows if a redelivery wrote more."""
        return max(self.header.recipients, sum(self.counts.values()))

    @property
    def never_sent(self) -> int:
        """Never sent because of a DELETE: rows so marked, and (once cancelled) recipients the
        walk found but no delivery reached, or that waited for a retry."""
        if not self.header.cancelled:
            return self.counts[RecipientState.CANCELLED]
        unreached = self.header.recipients - sum(self.counts.values())
        return self.counts[RecipientState.CANCELLED] + self.counts[RecipientState.RETRY] + max(0, unreached)

    @property
    def pending(self) -> int:
        """Deliveries still to settle, and edits or recalls still to reach sent rows."""
        if self.header.cancelled:
            return self.counts[RecipientState.SENDING] + self.changing
        return self.recipients - sum(n for state, n in self.counts.items() if state.final) + self.changing

    @property
    def state(self) -> NotificationState:
        if self.header.cancelled:
            return NotificationState.CANCELLED
        settled = any(n for state, n in self.counts.items() if state.final)
        if self.scheduled and not (self.header.recipients or settled or self.header.pages):
            return NotificationState.SCHEDULED
        if self.header.planned and self.pending == 0:
            return NotificationState.DONE
        return NotificationState.DELIVERING if self.header.recipients or settled else NotificationState.ACCEPTED


def tally(header: Header, rows: Iterable[RecipientRow], now: datetime, *, detail: bool, limit: int) -> Status:
    """The status of a notification whose record is `header` and whose rows are `rows`; with
    `detail`, up to `limit` rows listed (their state as the counts see it)."""
    counts = {state: 0 for state in RecipientState}
    throttled = read = updated = unsupported = change_failed = changing = resent = 0
    listed: list[RecipientRow] = []
    for row in rows:
        state = as_seen(row.state, row.lease_until, now)
        counts[state] += 1
        throttled += row.throttled
        read += row.read_at is not None
        updated += row.edited_at is not None
        unsupported += row.change == ChangeFailure.UNSUPPORTED.value
        change_failed += row.change == ChangeFailure.FAILED.value
        resent += row.resends > 0
        # Sent rows an edit or recall has yet to reach (or gave up on: not pending then).
        changing += (
            state is RecipientState.SENT and not row.change and (header.cancelled or row.version < header.version)
        )
        if detail and len(listed) < limit:
            listed.append(row if state is row.state else dataclasses.replace(row, state=state))
    return Status(
        header=header,
        counts=counts,
        throttled=throttled,
        rows=listed if detail else None,
        read=read,
        updated=updated,
        unsupported=unsupported,
        change_failed=change_failed,
        changing=changing,
        scheduled=header.notification.scheduled(now),
        resent=resent,
    )
