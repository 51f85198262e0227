"""The package's shape: the Bot Framework SDK is imported by the channel edge only.

The SDK is archived upstream; its successor (the Microsoft 365 Agents SDK) should replace one
subpackage, `proactive_bot/channel/`. These tests fail as soon as another module imports it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK = frozenset({"botbuilder", "botframework", "msrest"})
EDGE = ROOT / "proactive_bot" / "channel"
FUNCTION_FOLDERS = sorted(p.parent for p in ROOT.glob("*/function.json"))


def sdk_imports(source: str) -> list[str]:
    """The SDK modules a piece of Python imports (anywhere in it, functions included)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.split(".")[0] in SDK]
    return found


def app_modules() -> list[Path]:
    return sorted((ROOT / "proactive_bot").rglob("*.py")) + [p / "__init__.py" for p in FUNCTION_FOLDERS]


def test_only_the_channel_edge_imports_the_bot_framework_sdk():
    outside = {
        str(path.relative_to(ROOT)): imports
        for path in app_modules()
        if EDGE not in path.parents and (imports := sdk_imports(path.read_text("utf-8")))
    }

    assert outside == {}


def test_the_edge_is_where_the_sdk_is():
    # Guards the test above against passing by looking in the wrong place.
    inside = [path for path in EDGE.rglob("*.py") if sdk_imports(path.read_text("utf-8"))]

    assert len(inside) >= 4
    assert len(FUNCTION_FOLDERS) == 6


def test_an_sdk_import_is_seen_wherever_it_is_written():
    source = "import os\n\ndef later():\n    from botbuilder.core import TurnContext\n    import msrest.serialization\n"

    assert sdk_imports(source) == ["botbuilder.core", "msrest.serialization"]
    assert sdk_imports("from .channel import adapter\nimport botbuilder_like\n") == []


def test_validating_a_notification_loads_no_sdk():
    """The CLI and the Web Chat panel validate documents without loading the Bot Framework."""
    probe = (
        "import sys\n"
        "from proactive_bot import cli\n"
        "from proactive_bot.notifications.contract import validate\n"
        "validate({'to': {'all': True}, 'text': 'hi'})\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(SDK)!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
