"""Where telemetry goes: decided by which settings are set, and how Application Insights is authenticated."""

from __future__ import annotations

from proactive_bot.settings import Settings
from proactive_bot.telemetry import Destination, TelemetrySettings

CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://example.invalid/"


def test_nothing_set_is_off():
    assert TelemetrySettings().destinations == frozenset()
    assert not TelemetrySettings().enabled


def test_each_destination_set_is_used_both_together_too():
    assert TelemetrySettings(otlp_endpoint="http://127.0.0.1:4318").destinations == {Destination.OTLP}
    assert TelemetrySettings(connection_string=CONNECTION).destinations == {Destination.AZURE_MONITOR}
    both = TelemetrySettings(connection_string=CONNECTION, otlp_endpoint="http://127.0.0.1:4318")
    assert both.destinations == {Destination.AZURE_MONITOR, Destination.OTLP}


def test_entra_auth_as_the_template_writes_it_names_the_identity():
    settings = TelemetrySettings(CONNECTION, "ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD")

    assert settings.entra
    assert settings.identity_client_id == "11111111-2222-3333-4444-555555555555"


def test_entra_without_a_client_id_is_the_system_assigned_identity_and_no_string_is_the_key():
    assert TelemetrySettings(CONNECTION, "Authorization=AAD").entra
    assert TelemetrySettings(CONNECTION, "Authorization=AAD").identity_client_id == ""
    assert not TelemetrySettings(CONNECTION).entra


def test_the_app_settings_read_them(storage_connection):
    env = {
        "AzureWebJobsStorage": storage_connection,
        "OTEL_EXPORTER_OTLP_ENDPOINT": " http://127.0.0.1:4318 ",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION,
    }

    telemetry = Settings.from_env(env).telemetry

    assert telemetry == TelemetrySettings(connection_string=CONNECTION, otlp_endpoint="http://127.0.0.1:4318")
