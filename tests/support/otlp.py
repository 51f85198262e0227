"""A real OTLP/HTTP receiver on loopback: what an OpenTelemetry Collector is to the app.

It decodes the exporters' protobuf payloads (`ExportTraceServiceRequest`, `ExportMetricsServiceRequest`,
as `opentelemetry-proto` defines them) into plain spans and metric points, and answers as a
collector does (an empty Export...ServiceResponse), so the app's own exporters are what is tested.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class Span:
    trace_id: str  # hex, as in a traceparent
    span_id: str
    parent_span_id: str  # "" for a root
    name: str
    attributes: dict[str, Any]
    service: str
    start: int = 0  # unix ns
    end: int = 0


@dataclass(frozen=True)
class Point:
    """One data point of a sum, gauge or histogram (its count and sum)."""

    metric: str
    attributes: dict[str, Any]
    value: float
    time: int  # unix ns
    count: int = 0  # histograms


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=lambda: {"traces": 0, "metrics": 0})

    def spans_of(self, trace_id: str) -> list[Span]:
        return [s for s in self.spans if s.trace_id == trace_id]

    def latest(self, metric: str) -> list[Point]:
        """Each series' newest point (the SDK exports cumulative sums: the newest is the total)."""
        newest: dict[tuple[tuple[str, Any], ...], Point] = {}
        for point in self.points:
            if point.metric != metric:
                continue
            key = tuple(sorted(point.attributes.items()))
            if key not in newest or point.time >= newest[key].time:
                newest[key] = point
        return list(newest.values())

    def total(self, metric: str, **attributes: Any) -> float:
        """The sum over the newest points of the series whose attributes include these."""
        return sum(p.value for p in self.latest(metric) if all(p.attributes.get(k) == v for k, v in attributes.items()))


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _spans(request: ExportTraceServiceRequest) -> list[Span]:
    found = []
    for resource_spans in request.resource_spans:
        service = _attributes(resource_spans.resource.attributes).get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    Span(
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.name,
                        _attributes(span.attributes),
                        service,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                    )
                )
    return found


def _points(request: ExportMetricsServiceRequest) -> list[Point]:
    found = []
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind)
                for point in data.data_points:
                    attributes = _attributes(point.attributes)
                    if kind == "histogram":
                        value, count = point.sum, point.count
                    else:
                        value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
                        count = 0
                    found.append(Point(metric.name, attributes, value, point.time_unix_nano, count))
    return found


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[tuple[str, Received]]:
    """(its base URL, for OTEL_EXPORTER_OTLP_ENDPOINT; what it has received so far)."""
    received = Received()

    async def traces(request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.spans.extend(_spans(message))
        received.requests["traces"] += 1
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)

    async def metrics(request: web.Request) -> web.Response:
        message = ExportMetricsServiceRequest()
        message.ParseFromString(await request.read())
        received.points.extend(_points(message))
        received.requests["metrics"] += 1
        return web.Response(body=ExportMetricsServiceResponse().SerializeToString(), content_type=PROTOBUF)

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/v1/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()
