"""OpenTelemetry, opt-in: spans and metrics of the app's work, or nothing at all.

- `span`, `count`, `record`, `observe`, `traceparent`, `flush`, `start`, `enabled` (facade): the API the app
  calls; a no-op until `start` is given settings that name a destination.
- `Span`, `Attributes` (api): the types both sides, off and on, share.
- `TelemetrySettings`, `Destination` (policy): whether it is on and where it goes.
- `SpanName`, `Metric` and the attribute keys (names): everything emitted, listed once.
- otel.py (the OpenTelemetry API behind the facade), exporters.py (the SDK's providers: OTLP or
  the Azure Monitor distro), trace_ids.py (one trace per notification): loaded only when on.

See the README's "OpenTelemetry" section.
"""

from typing import TYPE_CHECKING

from .facade import ATTEMPT, active, count, enabled, flush, observe, record, span, start, traceparent
from .names import Metric, SpanName
from .policy import Destination, TelemetrySettings

if TYPE_CHECKING:
    from .api import Attributes, Span

__all__ = [
    "ATTEMPT",
    "Attributes",
    "Destination",
    "Metric",
    "Span",
    "SpanName",
    "TelemetrySettings",
    "active",
    "count",
    "enabled",
    "flush",
    "observe",
    "record",
    "span",
    "start",
    "traceparent",
]
