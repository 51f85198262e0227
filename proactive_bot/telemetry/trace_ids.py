"""One trace per notification: a span that starts a notification's work without a parent gets
that notification's trace id, derived from its id.

So the HTTP accept, the queue intake, a timer's start, a later PATCH or DELETE and a work
message that came without `traceparent` (written before telemetry was on) all land in the same
trace, with nothing stored; `traceparent` on the queue messages links the spans within it.
"""

from __future__ import annotations

import contextvars
import hashlib

from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

# The notification the current span works for (None: none, e.g. a roster walk).
CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("telemetry_notification", default=None)


def trace_id_of(notification: str) -> int:
    """128 bits of the id's SHA-256 (never 0, which W3C reserves for "invalid")."""
    return int.from_bytes(hashlib.sha256(f"notification:{notification}".encode()).digest()[:16], "big") or 1


class NotificationIds(RandomIdGenerator):
    """The SDK's random ids, except a root span's trace id inside a notification's work."""

    def generate_trace_id(self) -> int:
        notification = CURRENT.get()
        return super().generate_trace_id() if notification is None else trace_id_of(notification)
