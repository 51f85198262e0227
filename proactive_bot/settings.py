"""App settings: what the Functions host passes as environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

APP_TYPES = ("MultiTenant", "SingleTenant")


class SettingsError(RuntimeError):
    """The app settings cannot work together; raised at start-up with what to fix."""


@dataclass(frozen=True)
class Settings:
    # Secrets are left out of repr() so a logged Settings never shows them.
    storage_connection: str = field(repr=False)
    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_type: str = "MultiTenant"
    app_tenant_id: str = ""
    references_table: str = "ConversationReferences"
    reminders_table: str = "Reminders"
    notifications_queue: str = "notifications"
    notifications_table: str = "Notifications"
    tasks_queue: str = "tasks"
    # Where bot tokens come from; empty = Microsoft's endpoint for the app type. Tests point it
    # at a local server.
    token_endpoint: str = ""
    # Where the channel's token signing keys are published; empty = the Bot Framework's.
    open_id_metadata: str = ""
    # Hosts a serviceUrl may name (see service_urls.py); empty = the Bot Framework channels.
    allowed_service_url_hosts: tuple[str, ...] = ()
    delivery_concurrency: int = 128  # sends in flight per process
    max_sends_per_second: float = 50.0  # the app's ceiling, shared by its instances
    budget_table: str = "Budget"  # where instances share that ceiling (delivery/budget.py)
    rate_limits: str = ""  # JSON: per channel id, {"perConversation": [[n, s], ...], "channel": [...]}
    rate_limits_enabled: bool = True
    retry_budget_seconds: float = 45.0  # retrying inside one invocation before requeueing

    @property
    def work_queue(self) -> str:
        """The internal queue of broadcast pages and delivery batches."""
        return f"{self.notifications_queue}-work"

    @property
    def local_mode(self) -> bool:
        """No app id: the bot accepts unauthenticated traffic, as the Emulator expects."""
        return not self.app_id

    @property
    def single_tenant(self) -> bool:
        return self.app_type.lower() == "singletenant"

    def check(self) -> Settings:
        """Refuse combinations that would fail later, or fail open."""
        if self.app_type.lower() not in {t.lower() for t in APP_TYPES}:
            raise SettingsError(f"MicrosoftAppType must be one of {', '.join(APP_TYPES)}, not {self.app_type!r}")
        if self.app_id and not self.app_password:
            raise SettingsError("MicrosoftAppId is set but MicrosoftAppPassword is not")
        if self.app_password and not self.app_id:
            raise SettingsError("MicrosoftAppPassword is set but MicrosoftAppId is not")
        if self.app_id and self.single_tenant and not self.app_tenant_id:
            raise SettingsError("MicrosoftAppType=SingleTenant needs MicrosoftAppTenantId")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        storage = env.get("AzureWebJobsStorage", "")
        if not storage:
            raise SettingsError("AzureWebJobsStorage is not set: the app needs a storage account")
        return cls(
            storage_connection=storage,
            app_id=env.get("MicrosoftAppId", "").strip(),
            app_password=env.get("MicrosoftAppPassword", ""),
            app_type=env.get("MicrosoftAppType", "").strip() or "MultiTenant",
            app_tenant_id=env.get("MicrosoftAppTenantId", "").strip(),
            references_table=env.get("ReferencesTable", "") or cls.references_table,
            reminders_table=env.get("RemindersTable", "") or cls.reminders_table,
            notifications_queue=env.get("NotificationsQueue", "") or cls.notifications_queue,
            notifications_table=env.get("NotificationsTable", "") or cls.notifications_table,
            tasks_queue=env.get("TasksQueue", "") or cls.tasks_queue,
            token_endpoint=env.get("BotTokenEndpoint", ""),
            delivery_concurrency=int(env.get("DeliveryConcurrency", "") or cls.delivery_concurrency),
            max_sends_per_second=float(env.get("MaxSendsPerSecond", "") or cls.max_sends_per_second),
            budget_table=env.get("BudgetTable", "") or cls.budget_table,
            rate_limits=env.get("RateLimits", ""),
            rate_limits_enabled=env.get("RateLimitsEnabled", "true").strip().lower() not in ("false", "0", "no"),
            retry_budget_seconds=float(env.get("DeliveryRetryBudgetSeconds", "") or cls.retry_budget_seconds),
            open_id_metadata=env.get("BotOpenIdMetadata", ""),
            allowed_service_url_hosts=tuple(env.get("AllowedServiceUrlHosts", "").replace(",", " ").split()),
        ).check()
