"""The small API the app calls, and the no-op behind it while telemetry is off.

Nothing here imports OpenTelemetry: with no destination set (policy.py) every call is a no-op
and cold start pays for this module only. `start` swaps in the real thing (otel.py) once per
process, when the settings name a destination.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: cold start makes no module it does not run
    from .api import Attribute, Attributes, Observations, Span, Telemetry
    from .names import Metric
    from .policy import TelemetrySettings

log = logging.getLogger(__name__)

# The attempt a Connector call is (delivery/calls.py `patiently` sets it around each attempt).
ATTEMPT: contextvars.ContextVar[int] = contextvars.ContextVar("telemetry_attempt", default=1)


class _NoSpan:
    def set(self, key: str, value: Attribute) -> None:
        pass


class Off:
    """Telemetry off: everything is a no-op."""

    _span = _NoSpan()

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes, notification: str | None, parent: str | None) -> Iterator[Span]:
        yield self._span

    def count(self, metric: Metric, value: int, attributes: Attributes) -> None:
        pass

    def record(self, metric: Metric, value: float, attributes: Attributes) -> None:
        pass

    def observe(self, metric: Metric, observations: Observations) -> None:
        pass

    def traceparent(self, notification: str | None) -> str | None:
        return None

    def flush(self) -> None:
        pass


_active: Telemetry = Off()
_started: TelemetrySettings | None = None


def start(settings: TelemetrySettings) -> None:
    """Turn telemetry on if `settings` name a destination; once per process (the SDK's
    providers are global), later calls are no-ops. clients.get calls it with every invocation's
    settings: a comparison, nothing more, once started."""
    global _active, _started
    if _started is not None or not settings.enabled:
        return
    _started = settings
    from . import otel  # the only way to OpenTelemetry

    _active = otel.start(settings)
    log.info("telemetry on: %s", ", ".join(sorted(d.value for d in settings.destinations)))


def active() -> Telemetry:
    return _active


def enabled() -> bool:
    """Whether telemetry is on (for a caller that would do work only to report it)."""
    return not isinstance(_active, Off)


def span(
    name: str,
    attributes: Attributes | None = None,
    *,
    notification: str | None = None,
    parent: str | None = None,
) -> contextlib.AbstractContextManager[Span]:
    """A span around a block. `notification`: the one it works for (its trace is that
    notification's); `parent`: a W3C traceparent that came with a queue message."""
    return _active.span(name, attributes or {}, notification, parent)


def count(metric: Metric, value: int = 1, attributes: Attributes | None = None) -> None:
    _active.count(metric, value, attributes or {})


def record(metric: Metric, value: float, attributes: Attributes | None = None) -> None:
    _active.record(metric, value, attributes or {})


def observe(metric: Metric, observations: Observations) -> None:
    """A gauge read when the metrics are collected (the callback must be cheap and not block)."""
    _active.observe(metric, observations)


def traceparent(notification: str | None) -> str | None:
    """The current span's W3C traceparent, for a queue message about `notification` (None: not
    about one): only when the current span works for that same notification, so a message
    never carries another notification's trace (the timer starting several, say)."""
    return _active.traceparent(notification)


def flush() -> None:
    """Export what is buffered now (blocking: call it off the event loop, or at shutdown)."""
    _active.flush()
