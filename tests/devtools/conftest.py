"""Fixtures for the local Functions host tests: a real Azurite and copies of the sample app."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devtools import azurite as azurite_process

SAMPLE_APP = Path(__file__).parent / "sample_app"


@pytest.fixture(scope="session")
def funchost_azurite(azurite: azurite_process.Azurite) -> azurite_process.Azurite:
    """The session's real storage emulator (tests/conftest.py)."""
    return azurite


@pytest.fixture(scope="session")
def copy_sample_app(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Copy the sample app to a fresh folder, optionally overriding host.json queue options.

    Each host gets its own copy: the sample functions record what they saw under <copy>/_out.
    """

    def copy(label: str, queues: dict[str, Any] | None = None) -> Path:
        target = tmp_path_factory.mktemp(label) / "app"
        shutil.copytree(SAMPLE_APP, target, ignore=shutil.ignore_patterns("__pycache__", "_out"))
        if queues:
            host_json = target / "host.json"
            document = json.loads(host_json.read_text())
            document["extensions"]["queues"].update(queues)
            host_json.write_text(json.dumps(document, indent=2))
        return target

    return copy
