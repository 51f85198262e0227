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
    assert len(FUNCTION_FOLDERS) == 7


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


# ---- the import graph and module sizes --------------------------------------------------------

PACKAGE = ROOT / "proactive_bot"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The proactive_bot modules a module imports, at module level and inside functions alike
    (TYPE_CHECKING imports included: a cycle there is a cycle for a reader too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from .x import y`: y may be a module of its own, else it is a name in x.
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, known) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, one path each (depth-first; a package importing its own submodules
    through its lazy face does not count: that is __init__ -> child, never child -> __init__)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_circle_inside_the_package():
    graph = {
        # A package's __init__ reaches its children lazily (lazy.exports); children import the
        # package's parent modules, not its face. Edges into a package face are left out.
        name: {t for t in targets if not (PACKAGE / Path(*t.split(".")[1:]) / "__init__.py").exists()}
        for name, targets in import_graph().items()
    }

    assert cycles(graph) == []


def test_the_cycle_check_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_walk_sees_function_level_and_relative_imports():
    graph = import_graph()

    assert "proactive_bot.work" in graph["proactive_bot.app"]  # `from . import work`
    assert "proactive_bot.notifications.compose" in graph["proactive_bot.clients"]  # inside a method


def test_no_module_over_the_line_bound():
    over = {
        str(path.relative_to(ROOT)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }

    assert {name: n for name, n in over.items()} == {}
