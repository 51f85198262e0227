"""The deployment template (azure.yaml, infra/*.bicep) against the app's own list of settings.

No Bicep compiler can be installed here (it ships as a binary outside the registries this
machine reaches), so these are text checks of the template, not a compile or a deployment.
"""

from __future__ import annotations

import re
import uuid

import pytest

from proactive_bot.settings import Settings
from proactive_bot.settings_catalog import SETTINGS, STORAGE, Reader
from tests.functions.invoke import APP_ROOT

INFRA = APP_ROOT / "infra"
# The Functions host's own settings the template writes (the app reads them too, for its telemetry: SETTINGS lists them).
HOST_OWN = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
# Flex Consumption deprecates these (functions-app-settings, "Flex Consumption plan deprecations").
FLEX_DEPRECATED = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_TIME_ZONE",
    "TZ",
}


def bicep(name: str) -> str:
    return (INFRA / name).read_text("utf-8")


def app_settings() -> dict[str, str]:
    """`var appSettings = { Name: value ... }` in app.bicep: each name with its value expression."""
    text = bicep("app.bicep")
    block = re.search(r"^var appSettings = \{\n(.*?)^\}", text, re.M | re.S)
    assert block, "app.bicep has no `var appSettings = {...}` block"
    pairs = re.findall(r"^\s+(\w+):\s*(.+?)\s*$", block.group(1), re.M)
    return dict(pairs)


def literal(expression: str) -> str | None:
    match = re.fullmatch(r"'([^'$]*)'", expression)
    return match.group(1) if match else None


def as_deployed() -> dict[str, str]:
    """The app settings as Azure would hold them: literals as written, expressions with
    representative values (endpoints of an account, the identity's ids), plus what the platform sets."""
    client_id, tenant_id = str(uuid.uuid4()), str(uuid.uuid4())
    values = {}
    for name, expression in app_settings().items():
        value = literal(expression)
        if value is None:
            if "primaryEndpoints." in expression:
                service = expression.rsplit(".", 1)[1]
                value = f"https://stbotx.{service}.core.windows.net/"
            elif "clientId" in expression:
                value = client_id
            elif "tenantId" in expression:
                value = tenant_id
            elif expression == "string(maxSendsPerSecond)":
                value = "50"  # the template's default: the app's whole ceiling, shared by its instances
            elif expression == "maxAppSendsPerSecond":
                value = ""  # the template's default: no cap over the budgets
            else:
                value = "computed"
        values[name] = value
    values.update(IDENTITY_ENDPOINT="http://localhost:42356/msi/token", IDENTITY_HEADER="platform-set")
    return values


def test_the_template_writes_only_settings_something_reads():
    listed = {s.name for s in SETTINGS if s.reader is not Reader.PLATFORM}

    assert set(app_settings()) - listed - HOST_OWN == set()


def test_the_template_writes_every_required_setting():
    written = set(app_settings())
    required = {s.name for s in SETTINGS if s.required}

    # The storage account is required in one of its two forms; the template uses the keyless one.
    assert required - {STORAGE} <= written
    assert STORAGE not in written and any(name.startswith(STORAGE + "__") for name in written)


def test_the_deployed_settings_pass_the_apps_own_check_keyless():
    settings = Settings.from_env(as_deployed())

    assert settings.managed_identity and settings.app_password == ""
    assert settings.storage_identity is not None and settings.storage_connection == ""
    assert settings.app_id == settings.storage_identity.client_id  # one identity for both


def test_the_template_writes_no_secret_and_nothing_flex_deprecates():
    secrets = {s.name for s in SETTINGS if s.secret}

    assert set(app_settings()) & (secrets | FLEX_DEPRECATED) == set()


@pytest.mark.parametrize(
    "name",
    [
        "ReferencesTable",
        "RemindersTable",
        "NotificationsTable",
        "NotificationsQueue",
        "TasksQueue",
        "TimerSchedule",
        "AllowedServiceUrlHosts",
        "DeliveryConcurrency",
        "DeliveryRetryBudgetSeconds",
    ],
)
def test_defaults_written_out_are_the_apps_defaults(name):
    default = {s.name: s.default for s in SETTINGS}[name]

    assert literal(app_settings()[name]) == default


def test_the_send_ceiling_is_written_whole_for_the_instances_to_share():
    # One budget for every instance (delivery/budget.py): no per-instance split in the template.
    text = bicep("app.bicep")
    assert "MaxSendsPerSecond: string(maxSendsPerSecond)" in text
    assert "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT" not in app_settings()


def test_the_resources_are_the_keyless_flex_consumption_deployment():
    app = bicep("app.bicep")

    assert re.search(r"name: 'FC1'\s+tier: 'FlexConsumption'", app)
    assert re.search(r"runtime: \{\s+name: 'python'\s+version: '3.13'", app)
    assert "allowSharedKeyAccess: false" in app and "DisableLocalAuth: true" in app
    assert "msaAppType: 'UserAssignedMSI'" in app and "msaAppMSIResourceId: identity.id" in app
    assert "endpoint: 'https://${functionApp.properties.defaultHostName}/api/messages'" in app
    assert "channelName: 'MsTeamsChannel'" in app and "isEnabled: true" in app
    for role in (
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "3913510d-42f4-4e42-8a64-420c390055eb",
    ):
        assert role in app
    assert "type: 'UserAssignedIdentity'" in app  # the deployment package, read as the identity


@pytest.mark.parametrize("name", ["main.bicep", "app.bicep"])
def test_bicep_brackets_balance(name):
    """Brackets outside strings and comments pair up (strings hold `${...}` with strings inside)."""
    text, i = bicep(name), 0
    stack: list[str] = []
    pairs = {"{": "}", "[": "]", "(": ")"}
    while i < len(text):
        ch, in_string = text[i], bool(stack) and stack[-1] == "'"
        if in_string:
            if text.startswith("${", i):
                stack.append("${")
                i += 1
            elif ch == "\\":
                i += 1
            elif ch == "'":
                stack.pop()
        elif text.startswith("//", i):
            i = text.find("\n", i)
        elif ch == "'":
            stack.append("'")
        elif ch in pairs:
            stack.append(ch)
        elif ch in pairs.values() or ch == "}":
            opened = stack.pop()
            assert pairs.get(opened, "}") == ch, (name, text[:i].count("\n") + 1)
        i += 1
    assert stack == [], name


def test_azd_project_deploys_this_folder_as_a_python_function_app():
    project = (APP_ROOT / "azure.yaml").read_text("utf-8")

    assert re.search(r"services:\n  bot:\n    project: \.\n    language: python\n    host: function\n", project)
    main = bicep("main.bicep")
    assert "module app 'app.bicep'" in main and "output BOT_APP_ID string" in main
    assert "'azd-service-name': 'bot'" in bicep("app.bicep")  # how azd finds the app to deploy to
