"""The SDK's tracer and meter providers, exporting where the settings say (loaded only when on).

OTLP: OTLP/HTTP with protobuf to `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces`, `/v1/metrics`).
Azure Monitor: the distro (`configure_azure_monitor`) with an Entra token from the managed
identity the template names in `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` (its resource has
local auth off); OTLP's exporters ride along when both are set. The SDK's own `OTEL_*` variables
(`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`...) apply as usual.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .policy import Destination, TelemetrySettings
from .trace_ids import NotificationIds

SERVICE = "proactive-bot"


def install(settings: TelemetrySettings) -> tuple[TracerProvider, MeterProvider]:
    """Make the providers, set them as the process's global ones, and return them."""
    resource = Resource.create({} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: SERVICE})
    processors, readers = _otlp(settings.otlp_endpoint) if Destination.OTLP in settings.destinations else ([], [])
    if Destination.AZURE_MONITOR in settings.destinations:
        _azure_monitor(settings, resource, processors, readers)
        tracer_provider, meter_provider = trace.get_tracer_provider(), metrics.get_meter_provider()
        if not isinstance(tracer_provider, TracerProvider) or not isinstance(meter_provider, MeterProvider):
            raise RuntimeError("the Azure Monitor distro set no SDK providers")  # another one was set first
        tracer_provider.id_generator = NotificationIds()  # read by each tracer as it is made
        return tracer_provider, meter_provider
    tracer_provider = TracerProvider(resource=resource, id_generator=NotificationIds())
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def _otlp(endpoint: str) -> tuple[list[SpanProcessor], list[MetricReader]]:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = endpoint.rstrip("/")  # the signal's path follows, as the SDK does with the variable
    spans = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces"))
    return [spans], [PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics"))]


def _azure_monitor(
    settings: TelemetrySettings, resource: Resource, processors: list[SpanProcessor], readers: list[MetricReader]
) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    options: dict[str, Any] = {}
    if settings.entra:
        options["credential"] = _credential(settings.identity_client_id)
    configure_azure_monitor(
        connection_string=settings.connection_string,
        resource=resource,
        span_processors=processors,
        metric_readers=readers,
        # The Functions host sends the worker's logs to Application Insights already.
        disable_logging=True,
        # Storage calls would be spans of their own: several per recipient (claim, settle...).
        instrumentation_options={"azure_sdk": {"enabled": False}},
        enable_live_metrics=False,
        **options,
    )


def _credential(client_id: str) -> Any:
    """The token for Application Insights: the user-assigned identity the template names; else
    whatever `DefaultAzureCredential` finds (the system-assigned identity, a developer's login)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()
