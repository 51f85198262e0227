"""The one list of every setting the app reads (and of the host's and the platform's settings it
depends on): `settings.Settings.from_env` reads only names listed here, the README's table is
made from it (devtools/settings_table.py) and checked against it, and so is the infrastructure
template (infra/).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Reader(Enum):
    """Who reads a setting."""

    APP = "app"  # Settings.from_env
    HOST = "host"  # the Functions host, through a function.json binding expression (%Name%)
    PLATFORM = "platform"  # set by Azure itself; never written by a template or by hand


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # as documented; "" = empty
    meaning: str
    secret: bool = False
    # Must be set in Azure: a function.json names it, so the host cannot start without it.
    required: bool = False
    reader: Reader = Reader.APP


STORAGE = "AzureWebJobsStorage"
STORAGE_IDENTITY_PREFIX = STORAGE + "__"
MANAGED_IDENTITY = "managedidentity"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        STORAGE,
        "",
        "storage account connection string (`UseDevelopmentStorage=true` = Azurite); its key "
        "can rewrite stored addresses. Required: this or the identity form below (not both)",
        secret=True,
        required=True,
    ),
    Setting(
        STORAGE + "__accountName",
        "",
        "identity-based storage: the account name (blob, queue and table "
        "endpoints in Azure's public cloud follow from it)",
    ),
    Setting(
        STORAGE + "__blobServiceUri",
        "",
        "identity-based storage: the blob endpoint (instead of "
        "`__accountName`; the host keeps its keys and leases there)",
    ),
    Setting(
        STORAGE + "__queueServiceUri", "", "identity-based storage: the queue endpoint (instead of `__accountName`)"
    ),
    Setting(
        STORAGE + "__tableServiceUri", "", "identity-based storage: the table endpoint (instead of `__accountName`)"
    ),
    Setting(
        STORAGE + "__credential",
        "",
        "`managedidentity` with `__clientId` (a user-assigned identity); empty = the app's system-assigned identity",
    ),
    Setting(STORAGE + "__clientId", "", "the user-assigned managed identity's client id for storage"),
    Setting(
        "MicrosoftAppId",
        "",
        "the bot's app id (with `UserAssignedMSI`: the identity's client id); "
        "empty = local mode (no auth, as the Emulator uses)",
    ),
    Setting("MicrosoftAppPassword", "", "the bot's client secret (none with `UserAssignedMSI`)", secret=True),
    Setting(
        "MicrosoftAppType",
        "MultiTenant",
        "`SingleTenant` (with `MicrosoftAppTenantId`) or `UserAssignedMSI` (tokens from the app's managed "
        "identity, no password): what a new Azure Bot can be; `MultiTenant` (no longer created since "
        "2025-07-31) still runs for an existing bot, with a warning in the log",
    ),
    Setting("MicrosoftAppTenantId", "", "the bot's tenant, for `SingleTenant` and `UserAssignedMSI`"),
    Setting(
        "IDENTITY_ENDPOINT",
        "",
        "the managed identity token endpoint (set by Azure; `UserAssignedMSI`)",
        reader=Reader.PLATFORM,
    ),
    Setting(
        "IDENTITY_HEADER",
        "",
        "the header value that endpoint wants (set by Azure, rotated by it)",
        secret=True,
        reader=Reader.PLATFORM,
    ),
    Setting("ReferencesTable", "ConversationReferences", "table of stored addresses"),
    Setting("RemindersTable", "Reminders", "table of pending reminders"),
    Setting(
        "NotificationsQueue",
        "notifications",
        "queue other systems write to (`<name>-poison` for bad messages); `queue_notify/function.json` names it",
        required=True,
    ),
    Setting(
        "TasksQueue",
        "tasks",
        "the app's own queue of long tasks (`<name>-poison` for bad messages); `long_tasks/function.json` names it",
        required=True,
    ),
    Setting(
        "TimerSchedule",
        "0 */1 * * * *",
        "NCRONTAB schedule of `timer_notify`, which sends due reminders "
        "and releases scheduled notifications; read by the host only (`timer_notify/function.json` names it)",
        required=True,
        reader=Reader.HOST,
    ),
    Setting("NotificationsTable", "Notifications", "each notification's record and its per-recipient deliveries"),
    Setting(
        "TeamsTable", "Teams", "Teams installs (teams, group chats), their rosters and the users reachable through them"
    ),
    Setting(
        "BotTokenEndpoint",
        "",
        "token endpoint override: OAuth (password) or managed identity "
        "(`UserAssignedMSI`); tests point it at a local server; empty = Microsoft's / Azure's",
    ),
    Setting(
        "DeliveryConcurrency",
        "128",
        "sends in flight per process (latency-bound below ~128 against a 50 ms channel); bulk sends "
        "waiting for their pace take up to three quarters of it in each budget scope",
    ),
    Setting(
        "MaxSendsPerSecond",
        "50",
        "each budget's ceiling: per app per tenant for Teams (about 50/s), per channel for the others; "
        "shared by all the app's instances through `BudgetTable` "
        "(see [Lanes and tenant budgets](#lanes-and-tenant-budgets))",
    ),
    Setting(
        "MaxAppSendsPerSecond",
        "",
        "an optional cap over all budgets together (the app's own capacity: storage, CPU), shared "
        "by its instances as each budget is; empty = none",
    ),
    Setting(
        "BudgetTable",
        "Budget",
        "where the app's instances share `MaxSendsPerSecond` (per tenant, per channel) and "
        "`MaxAppSendsPerSecond`: a heartbeat row per busy instance",
    ),
    Setting(
        "RateLimits",
        "",
        'JSON per channel id: `{"slack": {"perConversation": [[1, 1]], "channel": []}}`; empty = built in',
    ),
    Setting("RateLimitsEnabled", "true", "`false` turns pacing off (benchmarks, tests)"),
    Setting("DeliveryRetryBudgetSeconds", "45", "retrying inside one invocation before handing back to the queue"),
    Setting(
        "BotOpenIdMetadata",
        "https://login.botframework.com/v1/.well-known/openidconfiguration",
        "where the channel's token signing keys are published (tests point it at a local server)",
    ),
    Setting(
        "AllowedServiceUrlHosts",
        "default",
        "hosts a conversation's serviceUrl may name, comma-separated; "
        "`*.` for subdomains; `default` = the Bot Framework channel hosts (see [Security](#security))",
    ),
    Setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "",
        "Application Insights (the template sets it): the host's logs, and the app's spans and metrics through "
        "the Azure Monitor distro (see [OpenTelemetry](#opentelemetry)); empty = none from the app",
    ),
    Setting(
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "",
        "`ClientId=<identity>;Authorization=AAD`: telemetry sent with that managed identity's Entra token "
        "(the template's resource takes no other); empty = the connection string's key",
    ),
    Setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        "an OTLP/HTTP collector (e.g. `http://127.0.0.1:4318`) for the app's spans and metrics; the SDK's other "
        "`OTEL_*` variables apply; empty = none (see [OpenTelemetry](#opentelemetry))",
    ),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
