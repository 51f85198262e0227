"""Settings: one list of every setting (SETTINGS), what from_env reads, and what check() refuses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping

import pytest

from devtools.settings_table import markdown_table
from proactive_bot.settings import AppType, Settings, SettingsError, StorageIdentity
from proactive_bot.settings_catalog import BY_NAME, SETTINGS, Reader
from tests.conftest import APP_ID, STORAGE_CLIENT_ID
from tests.functions.invoke import APP_ROOT

CONNECTION = "UseDevelopmentStorage=true"
IDENTITY = {
    "AzureWebJobsStorage__accountName": "contosobot",
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__clientId": STORAGE_CLIENT_ID,
}
MSI = {
    "MicrosoftAppType": "UserAssignedMSI",
    "MicrosoftAppId": APP_ID,
    "MicrosoftAppTenantId": "contoso.onmicrosoft.com",
    "IDENTITY_ENDPOINT": "http://127.0.0.1:41234/msi/token",
    "IDENTITY_HEADER": "0123456789abcdef",
}


class Recording(Mapping[str, str]):
    """An environment that remembers which names were looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self._values[name]

    def get(self, name, default=None):
        self.read.add(name)
        return self._values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("from_env must look names up, not list the environment")

    def __len__(self) -> int:
        return len(self._values)


def test_from_env_reads_exactly_the_listed_settings():
    env = Recording({**IDENTITY, **MSI})
    Settings.from_env(env)

    assert env.read == {s.name for s in SETTINGS if s.reader is not Reader.HOST}


def test_the_readme_table_is_the_settings_list():
    readme = (APP_ROOT / "README.md").read_text("utf-8")

    assert markdown_table() in readme


def test_every_setting_a_function_json_names_is_listed_and_required():
    named = set()
    for path in APP_ROOT.glob("*/function.json"):
        named |= set(re.findall(r"%(\w+)%", path.read_text("utf-8")))

    assert named and named <= {s.name for s in SETTINGS if s.required}


def test_defaults_are_the_documented_ones():
    settings = Settings.from_env({"AzureWebJobsStorage": CONNECTION})

    assert settings.references_table == BY_NAME["ReferencesTable"].default
    assert settings.tasks_queue == BY_NAME["TasksQueue"].default
    assert settings.delivery_concurrency == int(BY_NAME["DeliveryConcurrency"].default)
    assert settings.kind is AppType.MULTI_TENANT and settings.local_mode
    assert settings.storage_identity is None and settings.storage_connection == CONNECTION


def test_a_connection_string_works_as_before():
    settings = Settings.from_env(
        {"AzureWebJobsStorage": CONNECTION, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x" * 12}
    )

    assert settings.storage_connection == CONNECTION and not settings.managed_identity


def test_identity_storage_from_the_hosts_setting_names():
    identity = Settings.from_env(IDENTITY).storage_identity

    assert identity == StorageIdentity(
        account_name="contosobot", credential="managedidentity", client_id=STORAGE_CLIENT_ID
    )
    assert identity.table_endpoint == "https://contosobot.table.core.windows.net"
    assert identity.queue_endpoint == "https://contosobot.queue.core.windows.net"


def test_identity_storage_by_service_uris():
    identity = Settings.from_env(
        {
            "AzureWebJobsStorage__blobServiceUri": "https://a.blob.core.windows.net",
            "AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net",
            "AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net",
        }
    ).storage_identity
    assert identity is not None

    assert identity.queue_endpoint == "https://a.queue.core.windows.net" and identity.client_id == ""


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "AzureWebJobsStorage is not set"),
        ({"AzureWebJobsStorage": CONNECTION, **IDENTITY}, "both set: keep one"),
        (
            {"AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": STORAGE_CLIENT_ID},
            "missing: AzureWebJobsStorage__blobServiceUri, AzureWebJobsStorage__queueServiceUri, AzureWebJobsStorage__tableServiceUri",
        ),
        (
            {
                "AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net",
                "AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net",
            },
            "missing: AzureWebJobsStorage__blobServiceUri$",
        ),
        (
            {"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__clientId": STORAGE_CLIENT_ID},
            "clientId is set but AzureWebJobsStorage__credential is not",
        ),
        (
            {"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__credential": "managedidentity"},
            "needs AzureWebJobsStorage__clientId",
        ),
        (
            {
                "AzureWebJobsStorage__accountName": "a",
                "AzureWebJobsStorage__credential": "connectionstring",
                "AzureWebJobsStorage__clientId": STORAGE_CLIENT_ID,
            },
            "must be 'managedidentity'",
        ),
        (
            {
                "AzureWebJobsStorage__blobServiceUri": "http://a",
                "AzureWebJobsStorage__queueServiceUri": "https://b",
                "AzureWebJobsStorage__tableServiceUri": "https://c",
            },
            "blobServiceUri must be an https",
        ),
    ],
)
def test_half_configured_storage_is_refused_with_what_is_missing(env, problem):
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"MicrosoftAppId": ""}, "UserAssignedMSI needs MicrosoftAppId"),
        ({"MicrosoftAppTenantId": ""}, "UserAssignedMSI needs MicrosoftAppTenantId"),
        ({"MicrosoftAppPassword": "leftover-secret"}, "takes no MicrosoftAppPassword"),
        ({"IDENTITY_ENDPOINT": ""}, "IDENTITY_ENDPOINT and IDENTITY_HEADER are not set"),
        ({"IDENTITY_HEADER": ""}, "IDENTITY_ENDPOINT and IDENTITY_HEADER are not set"),
    ],
)
def test_user_assigned_msi_needs_app_id_tenant_and_an_identity_and_no_password(change, problem):
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env({**IDENTITY, **MSI, **change})


def test_user_assigned_msi_without_a_password_is_a_complete_configuration():
    settings = Settings.from_env({**IDENTITY, **MSI, "MicrosoftAppType": "userassignedmsi"})

    assert settings.managed_identity and not settings.local_mode and settings.app_password == ""
    assert "0123456789abcdef" not in repr(settings)  # IDENTITY_HEADER is a secret


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"MicrosoftAppId": APP_ID}, "MicrosoftAppId is set but MicrosoftAppPassword is not"),
        ({"MicrosoftAppPassword": "a-secret"}, "MicrosoftAppPassword is set but MicrosoftAppId is not"),
        (
            {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "a-secret", "MicrosoftAppType": "SingleTenant"},
            "SingleTenant needs MicrosoftAppTenantId",
        ),
        (
            {"MicrosoftAppType": "SystemAssignedMSI"},
            "MicrosoftAppType must be one of MultiTenant, SingleTenant, UserAssignedMSI",
        ),
    ],
)
def test_a_half_configured_bot_identity_is_refused_with_what_is_missing(env, problem):
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env({"AzureWebJobsStorage": CONNECTION, **env})


def test_a_single_tenant_bot_with_its_tenant_is_a_complete_configuration():
    settings = Settings.from_env(
        {
            "AzureWebJobsStorage": CONNECTION,
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppPassword": "a-secret",
            "MicrosoftAppType": "SingleTenant",
            "MicrosoftAppTenantId": "contoso.onmicrosoft.com",
        }
    )

    assert settings.single_tenant and not settings.local_mode


def test_a_delivery_concurrency_below_one_is_refused():
    with pytest.raises(SettingsError, match="DeliveryConcurrency must be at least 1, not 0"):
        Settings.from_env({"AzureWebJobsStorage": CONNECTION, "DeliveryConcurrency": "0"})


def test_a_multi_tenant_bot_still_runs_and_the_log_says_what_a_new_bot_sets(caplog):
    multi = {"AzureWebJobsStorage": CONNECTION, "MicrosoftAppId": str(uuid.uuid4()), "MicrosoftAppPassword": "x"}

    settings = Settings.from_env(multi)  # the type unset: MultiTenant, as before
    Settings.from_env(multi)  # read again (every invocation does): warned once

    assert settings.kind is AppType.MULTI_TENANT
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "MicrosoftAppType=SingleTenant and MicrosoftAppTenantId=" in warning.getMessage()
    assert "UserAssignedMSI" in warning.getMessage()
    caplog.clear()
    Settings.from_env({**multi, "MicrosoftAppType": "SingleTenant", "MicrosoftAppTenantId": str(uuid.uuid4())})
    assert not caplog.records  # what a new bot is: nothing to say
