"""Package faces that cost nothing to import.

Each subpackage's `__init__` names its public face; the modules behind a name load on first
use. So `from proactive_bot.notifications.contract import validate` (the CLI) does not load the
delivery engine and the Bot Framework SDK behind `Fanout`, and cold start pays only for what a
function uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for a package: `names` maps each public name to its module."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
