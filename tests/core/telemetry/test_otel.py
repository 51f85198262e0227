"""Telemetry on, behind the same facade calls: spans in each notification's own trace, linked
through `traceparent`, and the instruments made on first use. In memory here (the SDK's own
in-memory exporter and reader, providers local to the test); tests/test_telemetry_otlp.py sends
the same over OTLP/HTTP from the running app."""

from __future__ import annotations

import gc

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from proactive_bot.telemetry import Metric, SpanName
from proactive_bot.telemetry import names as attribute
from proactive_bot.telemetry.otel import On
from proactive_bot.telemetry.trace_ids import NotificationIds, trace_id_of


@pytest.fixture
def on():
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(id_generator=NotificationIds())
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = On(tracer_provider.get_tracer("test"), meter_provider.get_meter("test"), lambda: None)
    yield telemetry, spans, reader
    tracer_provider.shutdown()
    meter_provider.shutdown()


def finished(spans: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans.get_finished_spans()}


def test_a_notifications_spans_are_in_its_own_trace_wherever_they_start(on):
    telemetry, spans, _ = on
    with telemetry.span(SpanName.ACCEPT, {}, "n-1", None):
        pass
    with telemetry.span(SpanName.EDIT, {}, "n-1", None):  # a later request: no parent, same trace
        pass
    with telemetry.span(SpanName.ACCEPT, {}, "n-2", None):
        pass

    [first, edit, other] = spans.get_finished_spans()
    assert first.context.trace_id == edit.context.trace_id == trace_id_of("n-1")
    assert other.context.trace_id == trace_id_of("n-2")
    assert first.parent is None and edit.parent is None
    assert first.attributes[attribute.NOTIFICATION] == "n-1"


def test_a_work_message_carries_its_putters_span_and_its_span_is_that_ones_child(on):
    telemetry, spans, _ = on
    with telemetry.span(SpanName.ACCEPT, {}, "n-1", None):
        traceparent = telemetry.traceparent("n-1")
        assert telemetry.traceparent("n-2") is None  # never another notification's trace
    assert traceparent is not None and traceparent.startswith("00-")

    with telemetry.span(SpanName.work("page"), {}, "n-1", traceparent):
        pass

    made = finished(spans)
    page, accept = made[SpanName.work("page")], made[SpanName.ACCEPT]
    assert page.parent is not None and page.parent.span_id == accept.context.span_id
    assert page.context.trace_id == accept.context.trace_id
    assert page.parent.is_remote


def test_a_malformed_traceparent_starts_the_notifications_trace_anew(on):
    telemetry, spans, _ = on
    with telemetry.span(SpanName.work("batch"), {}, "n-1", "00-not-a-trace"):
        pass

    [batch] = spans.get_finished_spans()
    assert batch.parent is None and batch.context.trace_id == trace_id_of("n-1")


def test_a_span_for_another_notification_inside_one_starts_its_own_trace(on):
    telemetry, spans, _ = on
    with telemetry.span("timer", {}, None, None), telemetry.span(SpanName.work("release"), {}, "n-1", None):
        assert telemetry.traceparent("n-1") is not None

    release = finished(spans)[SpanName.work("release")]
    assert release.parent is None and release.context.trace_id == trace_id_of("n-1")


def test_counters_histograms_and_gauges_on_first_use(on):
    telemetry, _, reader = on

    class Budget:
        def shares(self):
            return [(0.5, {attribute.SCOPE: "tenant-a"})]

    budget = Budget()
    telemetry.count(Metric.DELIVERIES, 1, {attribute.OUTCOME: "sent"})
    telemetry.count(Metric.DELIVERIES, 2, {attribute.OUTCOME: "sent"})
    telemetry.record(Metric.QUEUE_AGE, 0.25, {attribute.WORK_KIND: "batch"})
    telemetry.observe(Metric.BUDGET_SHARE, budget.shares)

    points = {
        metric.name: list(metric.data.data_points)
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert [p.value for p in points[Metric.DELIVERIES]] == [3]
    assert [(p.count, p.sum) for p in points[Metric.QUEUE_AGE]] == [(1, 0.25)]
    assert [(p.value, dict(p.attributes)) for p in points[Metric.BUDGET_SHARE]] == [(0.5, {"budget.scope": "tenant-a"})]

    del budget  # a budget closed and dropped is no longer observed
    gc.collect()
    later = [
        metric.name
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.data.data_points
    ]
    assert Metric.BUDGET_SHARE not in later
