"""Every span name, metric name and attribute key the app emits: one list, the README's.

Span and metric names are enums so a typo is a type error; attribute keys follow OpenTelemetry's
semantic conventions where one exists (`http.response.status_code`, `error.type`,
`messaging.message.id`), else they are the app's own words (README glossary).
"""

from __future__ import annotations

from enum import StrEnum


class SpanName(StrEnum):
    ACCEPT = "notification.accept"  # POST /api/notifications
    INTAKE = "notification.intake"  # a notification from the queue (queue_notify)
    CANCEL = "notification.cancel"  # DELETE: cancel what is not sent, recall what is
    EDIT = "notification.edit"  # PATCH
    RESEND = "notification.resend"  # POST .../resend
    CONNECTOR_CALL = "connector.call"  # one request to the Connector (delivery/calls.py)

    @staticmethod
    def work(kind: str) -> str:
        """A work message's span: `work.page`, `work.batch`, ... (the kind as on the wire)."""
        return f"work.{kind}"


class Metric(StrEnum):
    CONNECTOR_CALLS = "proactive_bot.connector.calls"
    CONNECTOR_DURATION = "proactive_bot.connector.duration"
    DELIVERIES = "proactive_bot.deliveries"
    DELIVERY_DURATION = "proactive_bot.delivery.duration"
    QUEUE_AGE = "proactive_bot.queue.age"
    BUDGET_SHARE = "proactive_bot.budget.share"
    BUDGET_RATE = "proactive_bot.budget.rate"


# Attribute keys.
NOTIFICATION = "notification.id"
TEAM = "teams.team.id"
WORK_KIND = "work.kind"
RECIPIENTS = "work.recipients"
SHARD = "work.shard"
MESSAGE_ID = "messaging.message.id"
QUEUE = "messaging.destination.name"
DEQUEUE_COUNT = "messaging.dequeue_count"
STATUS = "http.response.status_code"
ERROR = "error.type"
CHANNEL = "connector.channel"
LANE = "connector.lane"
OUTCOME = "connector.outcome"
ATTEMPT = "connector.attempt"
RETRY_AFTER = "connector.retry_after"
WAITED = "connector.waited"
CHANGE = "connector.change"
REASON = "delivery.reason"
DELIVERY_KIND = "delivery.kind"
SCOPE = "budget.scope"
