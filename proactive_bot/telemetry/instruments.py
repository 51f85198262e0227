"""Each metric's instrument: its kind, unit and description (loaded only when telemetry is on)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .names import Metric


class Kind(Enum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


@dataclass(frozen=True)
class Instrument:
    kind: Kind
    unit: str
    description: str


INSTRUMENTS: dict[Metric, Instrument] = {
    Metric.CONNECTOR_CALLS: Instrument(Kind.COUNTER, "{call}", "Connector calls made, by outcome and status"),
    Metric.CONNECTOR_DURATION: Instrument(Kind.HISTOGRAM, "s", "how long a Connector request took"),
    Metric.DELIVERIES: Instrument(Kind.COUNTER, "{delivery}", "recipients' deliveries ended, by outcome and reason"),
    Metric.DELIVERY_DURATION: Instrument(
        Kind.HISTOGRAM, "s", "a delivery from its first wait for a slot to its last answer (pacing and retries)"
    ),
    Metric.QUEUE_AGE: Instrument(Kind.HISTOGRAM, "s", "a queue message's time from insertion to handling"),
    Metric.BUDGET_SHARE: Instrument(Kind.GAUGE, "1", "this instance's share of a scope's send ceiling"),
    Metric.BUDGET_RATE: Instrument(Kind.GAUGE, "{send}/s", "the sends per second this instance may make in a scope"),
}
