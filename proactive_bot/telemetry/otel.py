"""The facade's calls made with the OpenTelemetry API (loaded only when telemetry is on)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import exporters, trace_ids
from .api import Attribute, Attributes, Observations
from .instruments import INSTRUMENTS, Kind
from .names import NOTIFICATION, Metric
from .policy import TelemetrySettings

SCOPE = "proactive_bot"
# Seconds: the SDK's default buckets are milliseconds' (0, 5, 10, 25, ... 10000).
SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]

_PROPAGATOR = TraceContextTextMapPropagator()


class _Span:
    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, key: str, value: Attribute) -> None:
        self._span.set_attribute(key, value)


class On:
    """Telemetry on: spans from one tracer, instruments from one meter, made on first use."""

    def __init__(self, tracer: trace.Tracer, meter: Meter, flush: Callable[[], None]) -> None:
        self._tracer = tracer
        self._meter = meter
        self._flush = flush
        self._counters: dict[Metric, Counter] = {}
        self._histograms: dict[Metric, Histogram] = {}
        self._sources: dict[Metric, list[Callable[[], Observations | None]]] = {}

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes, notification: str | None, parent: str | None) -> Iterator[_Span]:
        context: otel_context.Context | None = None
        if parent:
            context = _PROPAGATOR.extract({"traceparent": parent})  # a malformed one: a root
        elif notification is not None and trace_ids.CURRENT.get() != notification:
            context = otel_context.Context()  # a root, in the notification's own trace
        values = dict(attributes)
        if notification is not None:
            values[NOTIFICATION] = notification
        token = trace_ids.CURRENT.set(notification) if notification is not None else None
        try:
            with self._tracer.start_as_current_span(name, context=context, attributes=values) as span:
                yield _Span(span)
        finally:
            if token is not None:
                trace_ids.CURRENT.reset(token)

    def count(self, metric: Metric, value: int, attributes: Attributes) -> None:
        counter = self._counters.get(metric)
        if counter is None:
            spec = INSTRUMENTS[metric]
            counter = self._counters[metric] = self._meter.create_counter(metric, spec.unit, spec.description)
        counter.add(value, dict(attributes))

    def record(self, metric: Metric, value: float, attributes: Attributes) -> None:
        histogram = self._histograms.get(metric)
        if histogram is None:
            spec = INSTRUMENTS[metric]
            histogram = self._histograms[metric] = self._meter.create_histogram(
                metric,
                spec.unit,
                spec.description,
                explicit_bucket_boundaries_advisory=SECONDS if spec.unit == "s" else None,
            )
        histogram.record(value, dict(attributes))

    def observe(self, metric: Metric, observations: Observations) -> None:
        assert INSTRUMENTS[metric].kind is Kind.GAUGE, metric
        sources = self._sources.get(metric)
        if sources is None:
            sources = self._sources[metric] = []
            spec = INSTRUMENTS[metric]
            self._meter.create_observable_gauge(
                metric, [lambda options: self._collect(metric, options)], spec.unit, spec.description
            )
        # Weakly: a source (a budget) that is closed and dropped stops being observed.
        method = getattr(observations, "__self__", None) is not None
        sources.append(weakref.WeakMethod(observations) if method else lambda: observations)

    def _collect(self, metric: Metric, options: CallbackOptions) -> Iterable[Observation]:
        for source in list(self._sources[metric]):
            observations = source()
            if observations is None:
                self._sources[metric].remove(source)
                continue
            for value, attributes in observations():
                yield Observation(value, dict(attributes))

    def traceparent(self, notification: str | None) -> str | None:
        if trace_ids.CURRENT.get() != notification or not trace.get_current_span().get_span_context().is_valid:
            return None
        carrier: dict[str, Any] = {}
        _PROPAGATOR.inject(carrier)
        value = carrier.get("traceparent")
        return value if isinstance(value, str) else None

    def flush(self) -> None:
        self._flush()


def start(settings: TelemetrySettings) -> On:
    tracer_provider, meter_provider = exporters.install(settings)

    def flush() -> None:
        tracer_provider.force_flush()
        meter_provider.force_flush()

    return On(tracer_provider.get_tracer(SCOPE), meter_provider.get_meter(SCOPE), flush)
