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
    tasks_queue: str = "tasks"
    # Where bot tokens come from; empty = Microsoft's endpoint for the app type. Tests point it
    # at a local server.
    token_endpoint: str = ""

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
            tasks_queue=env.get("TasksQueue", "") or cls.tasks_queue,
            token_endpoint=env.get("BotTokenEndpoint", ""),
        )
