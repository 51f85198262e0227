"""What the facade's two sides (off: facade.Off, on: otel.On) both are: the types only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from .names import Metric

Attribute = str | int | float | bool
Attributes = Mapping[str, Attribute]
# What an observable gauge's callback gives: (value, attributes) per series.
Observations = Callable[[], Iterable[tuple[float, Attributes]]]


class Span(Protocol):
    def set(self, key: str, value: Attribute) -> None: ...


class Telemetry(Protocol):
    def span(
        self, name: str, attributes: Attributes, notification: str | None, parent: str | None
    ) -> contextlib.AbstractContextManager[Span]: ...

    def count(self, metric: Metric, value: int, attributes: Attributes) -> None: ...

    def record(self, metric: Metric, value: float, attributes: Attributes) -> None: ...

    def observe(self, metric: Metric, observations: Observations) -> None: ...

    def traceparent(self, notification: str | None) -> str | None: ...

    def flush(self) -> None: ...
