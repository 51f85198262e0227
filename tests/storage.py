"""Seeing what the app does to storage: table clients that count their requests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from azure.data.tables.aio import TableClient

_WRITES = frozenset({"POST", "PUT", "PATCH", "MERGE", "DELETE"})


class RequestCount:
    def __init__(self) -> None:
        self.by_method: Counter[str] = Counter()

    def __call__(self, request: Any) -> None:
        self.by_method[request.http_request.method] += 1

    @property
    def writes(self) -> int:
        return sum(n for method, n in self.by_method.items() if method in _WRITES)

    @property
    def reads(self) -> int:
        return self.by_method["GET"]

    def reset(self) -> None:
        self.by_method.clear()


def counting_table(connection: str, name: str) -> tuple[TableClient, RequestCount]:
    count = RequestCount()
    return TableClient.from_connection_string(connection, name, raw_request_hook=count), count
