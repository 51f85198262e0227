"""Secrets stay out of git and out of the deployed package; the README says which settings are secret."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.functions.invoke import APP_ROOT

SECRET_SETTINGS = {"AzureWebJobsStorage", "MicrosoftAppPassword", "IDENTITY_HEADER"}


@pytest.mark.skipif(not (APP_ROOT / ".git").exists() or not shutil.which("git"), reason="not a git checkout")
def test_local_settings_are_ignored_by_git():
    for path in ("local.settings.json", "messages/local.settings.json"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=APP_ROOT, check=False)
        assert ignored.returncode == 0, f"{path} is not git-ignored"


def test_local_settings_stay_out_of_the_deployed_package():
    assert "local.settings.json" in (APP_ROOT / ".funcignore").read_text("utf-8").split()


def test_the_example_settings_hold_no_secret():
    values = json.loads((APP_ROOT / "local.settings.json.example").read_text("utf-8"))["Values"]

    assert values["MicrosoftAppPassword"] == ""
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"  # Azurite's public key


def test_the_readme_marks_each_setting_secret_or_not():
    rows = re.findall(r"^\| `(\w+)` \| [^|]* \| (yes|no) \|", (APP_ROOT / "README.md").read_text("utf-8"), re.M)
    marked = dict(rows)

    assert {name for name, secret in marked.items() if secret == "yes"} == SECRET_SETTINGS
    example = json.loads((APP_ROOT / "local.settings.json.example").read_text("utf-8"))["Values"]
    assert set(example) - {"FUNCTIONS_WORKER_RUNTIME"} <= set(marked)
