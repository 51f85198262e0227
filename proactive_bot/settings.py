"""App settings: what the Functions host passes as environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    storage_connection: str
    app_id: str = ""
    app_password: str = ""
    app_type: str = "MultiTenant"
    app_tenant_id: str = ""
    references_table: str = "ConversationReferences"
    reminders_table: str = "Reminders"
    notifications_queue: str = "notifications"
    notifications_table: str = "Notifications"
    # Where bot tokens come from; empty = Microsoft's endpoint for the app type. Tests point it
    # at a local server.
    token_endpoint: str = ""
    delivery_concurrency: int = 64  # sends in flight per process
    max_sends_per_second: float = 50.0  # the app's ceiling, shared by its instances
    max_instances: int = 1  # WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT: splits the ceiling
    rate_limits: str = ""  # JSON: per channel id, {"perConversation": [[n, s], ...], "channel": [...]}
    rate_limits_enabled: bool = True
    retry_budget_seconds: float = 45.0  # retrying inside one invocation before requeueing

    @property
    def work_queue(self) -> str:
        """The internal queue of broadcast pages and delivery batches."""
        return f"{self.notifications_queue}-work"

    @property
    def sends_per_second_per_instance(self) -> float:
        return self.max_sends_per_second / max(1, self.max_instances)

    @property
    def local_mode(self) -> bool:
        """No app id: the bot accepts unauthenticated traffic, as the Emulator expects."""
        return not self.app_id

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        storage = env.get("AzureWebJobsStorage", "")
        if not storage:
            raise RuntimeError("AzureWebJobsStorage is not set: the app needs a storage account")
        return cls(
            storage_connection=storage,
            app_id=env.get("MicrosoftAppId", ""),
            app_password=env.get("MicrosoftAppPassword", ""),
            app_type=env.get("MicrosoftAppType", "") or "MultiTenant",
            app_tenant_id=env.get("MicrosoftAppTenantId", ""),
            references_table=env.get("ReferencesTable", "") or cls.references_table,
            reminders_table=env.get("RemindersTable", "") or cls.reminders_table,
            notifications_queue=env.get("NotificationsQueue", "") or cls.notifications_queue,
            notifications_table=env.get("NotificationsTable", "") or cls.notifications_table,
            token_endpoint=env.get("BotTokenEndpoint", ""),
            delivery_concurrency=int(env.get("DeliveryConcurrency", "") or cls.delivery_concurrency),
            max_sends_per_second=float(env.get("MaxSendsPerSecond", "") or cls.max_sends_per_second),
            max_instances=int(env.get("WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT", "") or 1),
            rate_limits=env.get("RateLimits", ""),
            rate_limits_enabled=env.get("RateLimitsEnabled", "true").strip().lower() not in ("false", "0", "no"),
            retry_budget_seconds=float(env.get("DeliveryRetryBudgetSeconds", "") or cls.retry_budget_seconds),
        )
