"""Whether telemetry is on, and where it goes: the one place that decides.

Off unless a destination is set: `APPLICATIONINSIGHTS_CONNECTION_STRING` (Azure Monitor, with an
Entra token when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` says `Authorization=AAD`, as the
template sets it up) and/or `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP/HTTP, protobuf). Each one set
gets the same spans and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


class Destination(Enum):
    AZURE_MONITOR = "azure-monitor"
    OTLP = "otlp"


class TelemetrySettings(NamedTuple):
    """A NamedTuple, not a dataclass: read at every cold start, on or off (a frozen dataclass's
    generated methods cost several times as much to make)."""

    connection_string: str = ""
    authentication_string: str = ""
    otlp_endpoint: str = ""

    @classmethod
    def read(cls, get: Callable[[str], str]) -> TelemetrySettings:
        """From the app's settings reader (settings.Settings.from_env)."""
        return cls(get(CONNECTION_STRING), get(AUTHENTICATION_STRING), get(OTLP_ENDPOINT))

    @property
    def destinations(self) -> frozenset[Destination]:
        found = set()
        if self.connection_string:
            found.add(Destination.AZURE_MONITOR)
        if self.otlp_endpoint:
            found.add(Destination.OTLP)
        return frozenset(found)

    @property
    def enabled(self) -> bool:
        return bool(self.destinations)

    @property
    def entra(self) -> bool:
        """Whether Application Insights wants an Entra token (its local auth off, as the template has it)."""
        return _parts(self.authentication_string).get("authorization", "").upper() == "AAD"

    @property
    def identity_client_id(self) -> str:
        """The user-assigned managed identity to take the token as; empty: the system-assigned one."""
        return _parts(self.authentication_string).get("clientid", "")


def _parts(text: str) -> dict[str, str]:
    """`ClientId=...;Authorization=AAD` as a dict, keys lowercased (Azure reads them so)."""
    parts = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts
