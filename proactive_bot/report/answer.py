"""An HTTP answer whose body is not JSON: the CSV report, the status page's files and pages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    mimetype: str
    headers: dict[str, str] = field(default_factory=dict)
