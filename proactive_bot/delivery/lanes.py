"""Lanes: which sends go first when there are more than the budget allows right now.

Every Connector call has a lane. Within one budget scope (a Teams tenant, a channel) a waiting
call of a higher lane gets the next slot before one of a lower lane; within a lane, first come
first served. (How bulk is kept from starving: rate_limits.py.)
"""

from __future__ import annotations

import enum


class Lane(enum.IntEnum):
    """Lower values are served first."""

    INTERACTIVE = 0  # a reply within a user's turn
    URGENT = 1  # one recipient: a 1:1 notification, a due reminder, a long task's result, priority "high"
    BULK = 2  # broadcasts, team and list audiences, their edits and recalls, roster reads
