"""App settings: what the Functions host passes as environment variables, read and checked.

Which names there are, and what each means, is `settings_catalog.SETTINGS`: `Settings.from_env`
reads only names listed there.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from .settings_catalog import BY_NAME, MANAGED_IDENTITY, STORAGE, STORAGE_IDENTITY_PREFIX
from .telemetry.policy import TelemetrySettings


class SettingsError(RuntimeError):
    """The app settings cannot work together; raised at start-up with what to fix."""


class AppType(Enum):
    """Where the bot's own (outbound) token comes from. Inbound validation is the same for all."""

    MULTI_TENANT = "MultiTenant"  # password, Bot Framework tenant
    SINGLE_TENANT = "SingleTenant"  # password, the bot's tenant
    USER_ASSIGNED_MSI = "UserAssignedMSI"  # the app's user-assigned managed identity, no password

    @classmethod
    def parse(cls, text: str) -> AppType:
        for member in cls:
            if member.value.lower() == text.strip().lower():
                return member
        raise SettingsError(f"MicrosoftAppType must be one of {', '.join(m.value for m in cls)}, not {text!r}")


APP_TYPES = tuple(t.value for t in AppType)
MULTI_TENANT_ADVICE = (
    "MicrosoftAppType is MultiTenant (also what an unset one means): Azure Bot creates no new "
    "multi-tenant bots since 2025-07-31. An existing multi-tenant registration keeps working; for a "
    "new bot set MicrosoftAppType=SingleTenant and MicrosoftAppTenantId=<the app registration's "
    "tenant id>, or MicrosoftAppType=UserAssignedMSI with MicrosoftAppId=<the identity's client id> "
    "and MicrosoftAppTenantId (no password)."
)


@functools.cache  # once per process and app id: settings are read on every invocation
def _warn_multi_tenant(app_id: str) -> None:
    logging.getLogger(__name__).warning("app %s: %s", app_id, MULTI_TENANT_ADVICE)


@dataclass(frozen=True)
class StorageIdentity:
    """Identity-based storage (the host's `AzureWebJobsStorage__*` form): endpoints and who we are."""

    account_name: str = ""
    blob_uri: str = ""
    queue_uri: str = ""
    table_uri: str = ""
    credential: str = ""  # "managedidentity" or empty (the system-assigned identity)
    client_id: str = ""

    @property
    def queue_endpoint(self) -> str:
        return self.queue_uri or f"https://{self.account_name}.queue.core.windows.net"

    @property
    def table_endpoint(self) -> str:
        return self.table_uri or f"https://{self.account_name}.table.core.windows.net"

    def check(self) -> StorageIdentity:
        prefix = STORAGE_IDENTITY_PREFIX
        uris = {"blobServiceUri": self.blob_uri, "queueServiceUri": self.queue_uri, "tableServiceUri": self.table_uri}
        if not self.account_name:
            missing = [prefix + name for name, value in uris.items() if not value]
            if missing:
                raise SettingsError(
                    f"identity-based storage needs {prefix}accountName, or all three service URIs; "
                    f"missing: {', '.join(missing)}"
                )
        for name, value in uris.items():
            if value and not value.lower().startswith("https://"):
                # The SDKs refuse bearer tokens over plain HTTP; say so now, not at the first call.
                raise SettingsError(f"{prefix}{name} must be an https:// URI (tokens are never sent over HTTP)")
        if self.credential and self.credential.lower() != MANAGED_IDENTITY:
            raise SettingsError(f"{prefix}credential must be {MANAGED_IDENTITY!r}, not {self.credential!r}")
        if self.client_id and not self.credential:
            raise SettingsError(f"{prefix}clientId is set but {prefix}credential is not (set it to {MANAGED_IDENTITY})")
        if self.credential and not self.client_id:
            raise SettingsError(
                f"{prefix}credential={MANAGED_IDENTITY} needs {prefix}clientId (the user-assigned "
                "identity's client id); leave both empty for the system-assigned identity"
            )
        return self


@dataclass(frozen=True)
class Settings:
    # Secrets are left out of repr() so a logged Settings never shows them.
    storage_connection: str = field(default="", repr=False)
    # Set instead of storage_connection: storage with Entra tokens from a managed identity.
    storage_identity: StorageIdentity | None = None
    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_type: str = "MultiTenant"
    app_tenant_id: str = ""
    # The platform's managed identity endpoint (UserAssignedMSI bot tokens).
    identity_endpoint: str = ""
    identity_header: str = field(default="", repr=False)
    references_table: str = "ConversationReferences"
    reminders_table: str = "Reminders"
    notifications_queue: str = "notifications"
    notifications_table: str = "Notifications"
    tasks_queue: str = "tasks"
    teams_table: str = "Teams"  # Teams installs, rosters and the users reachable through them
    # Where bot tokens come from; empty = Microsoft's endpoint for the app type (the platform's
    # identity endpoint for UserAssignedMSI). Tests point it at a local server.
    token_endpoint: str = ""
    # Where the channel's token signing keys are published; empty = the Bot Framework's.
    open_id_metadata: str = ""
    # Hosts a serviceUrl may name (see service_urls.py); empty = the Bot Framework channels.
    allowed_service_url_hosts: tuple[str, ...] = ()
    delivery_concurrency: int = 128  # sends in flight per process
    max_sends_per_second: float = 50.0  # each budget's ceiling (per Teams tenant, per channel), shared by instances
    max_app_sends_per_second: float | None = None  # over all budgets together; None = no cap
    budget_table: str = "Budget"  # where instances share that ceiling (delivery/budget.py)
    rate_limits: str = ""  # JSON: per channel id, {"perConversation": [[n, s], ...], "channel": [...]}
    rate_limits_enabled: bool = True
    retry_budget_seconds: float = 45.0  # retrying inside one invocation before requeueing
    # Where spans and metrics go (telemetry/policy.py); none set: telemetry off.
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings, repr=False)

    @property
    def work_queue(self) -> str:
        """The internal queue of broadcast pages and delivery batches."""
        return f"{self.notifications_queue}-work"

    @property
    def local_mode(self) -> bool:
        """No app id: the bot accepts unauthenticated traffic, as the Emulator expects."""
        return not self.app_id

    @property
    def kind(self) -> AppType:
        return AppType.parse(self.app_type)

    @property
    def single_tenant(self) -> bool:
        return self.kind is AppType.SINGLE_TENANT

    @property
    def managed_identity(self) -> bool:
        """The bot's outbound tokens come from the managed identity, not a password."""
        return self.kind is AppType.USER_ASSIGNED_MSI and not self.local_mode

    def check(self) -> Settings:
        """Refuse combinations that would fail later, or fail open."""
        kind = self.kind  # raises on an unknown app type
        if self.delivery_concurrency < 1:
            raise SettingsError(
                f"DeliveryConcurrency must be at least 1, not {self.delivery_concurrency} "
                "(no send would ever get a slot)"
            )
        if self.max_app_sends_per_second is not None and self.max_app_sends_per_second < 1:
            raise SettingsError(
                f"MaxAppSendsPerSecond must be at least 1 (or empty for no cap), not {self.max_app_sends_per_second}"
            )
        if self.storage_connection and self.storage_identity is not None:
            raise SettingsError(
                f"{STORAGE} (a connection string) and {STORAGE_IDENTITY_PREFIX}* (identity) are both set: keep one"
            )
        if not self.storage_connection and self.storage_identity is None:
            raise SettingsError(
                f"{STORAGE} is not set: the app needs a storage account (a connection string, or "
                f"{STORAGE_IDENTITY_PREFIX}accountName for a managed identity)"
            )
        if self.storage_identity is not None:
            self.storage_identity.check()
        if kind is AppType.USER_ASSIGNED_MSI:
            if not self.app_id:
                raise SettingsError("MicrosoftAppType=UserAssignedMSI needs MicrosoftAppId (the identity's client id)")
            if not self.app_tenant_id:
                raise SettingsError("MicrosoftAppType=UserAssignedMSI needs MicrosoftAppTenantId")
            if self.app_password:
                raise SettingsError("MicrosoftAppType=UserAssignedMSI takes no MicrosoftAppPassword: remove it")
            if not self.token_endpoint and not (self.identity_endpoint and self.identity_header):
                raise SettingsError(
                    "MicrosoftAppType=UserAssignedMSI needs a managed identity: IDENTITY_ENDPOINT and "
                    "IDENTITY_HEADER are not set (Azure sets them when the identity is assigned to the app)"
                )
            return self
        if self.app_id and not self.app_password:
            raise SettingsError("MicrosoftAppId is set but MicrosoftAppPassword is not")
        if self.app_password and not self.app_id:
            raise SettingsError("MicrosoftAppPassword is set but MicrosoftAppId is not")
        if self.app_id and kind is AppType.SINGLE_TENANT and not self.app_tenant_id:
            raise SettingsError("MicrosoftAppType=SingleTenant needs MicrosoftAppTenantId")
        if self.app_id and kind is AppType.MULTI_TENANT:
            _warn_multi_tenant(self.app_id)
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str:
            # Only listed settings: what the app reads is what SETTINGS (and the README) say.
            setting = BY_NAME[name]
            return env.get(name, "").strip() or setting.default

        return cls(
            storage_connection=env.get(STORAGE, ""),
            storage_identity=storage_identity(get),
            app_id=get("MicrosoftAppId"),
            app_password=env.get("MicrosoftAppPassword", ""),
            app_type=get("MicrosoftAppType"),
            app_tenant_id=get("MicrosoftAppTenantId"),
            identity_endpoint=get("IDENTITY_ENDPOINT"),
            identity_header=get("IDENTITY_HEADER"),
            references_table=get("ReferencesTable"),
            reminders_table=get("RemindersTable"),
            notifications_queue=get("NotificationsQueue"),
            notifications_table=get("NotificationsTable"),
            tasks_queue=get("TasksQueue"),
            teams_table=get("TeamsTable"),
            token_endpoint=get("BotTokenEndpoint"),
            delivery_concurrency=int(get("DeliveryConcurrency")),
            max_sends_per_second=float(get("MaxSendsPerSecond")),
            max_app_sends_per_second=float(get("MaxAppSendsPerSecond")) if get("MaxAppSendsPerSecond") else None,
            budget_table=get("BudgetTable"),
            rate_limits=get("RateLimits"),
            rate_limits_enabled=get("RateLimitsEnabled").lower() not in ("false", "0", "no"),
            retry_budget_seconds=float(get("DeliveryRetryBudgetSeconds")),
            open_id_metadata=get("BotOpenIdMetadata"),
            allowed_service_url_hosts=tuple(get("AllowedServiceUrlHosts").replace(",", " ").split()),
            telemetry=TelemetrySettings.read(get),
        ).check()


def storage_identity(get: Callable[[str], str]) -> StorageIdentity | None:
    """The `AzureWebJobsStorage__*` settings, or None when none is set (a connection string then)."""
    p = STORAGE_IDENTITY_PREFIX
    identity = StorageIdentity(
        account_name=get(p + "accountName"),
        blob_uri=get(p + "blobServiceUri"),
        queue_uri=get(p + "queueServiceUri"),
        table_uri=get(p + "tableServiceUri"),
        credential=get(p + "credential"),
        client_id=get(p + "clientId"),
    )
    return identity if identity != StorageIdentity() else None
