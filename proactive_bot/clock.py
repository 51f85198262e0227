"""The app's notion of "now": one function, so tests and local tools can move time forward."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
