"""Each Connector verb is called from exactly one module, and that module makes its calls through
delivery/calls.py (`Calls.make`: paced, classified, the one place a 429 tells the limiter)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "proactive_bot"

# The adapter's verbs (proactive_bot/channel/adapter.py), which the app outside channel/ calls.
ADAPTER_VERBS = {
    "send_proactive": "send to (or reply in) a conversation",
    "update_activity": "update an activity",
    "delete_activity": "delete an activity",
    "create_conversation_json": "create a conversation (a 1:1 chat, a channel thread)",
    "paged_members": "get paged members",
}
# The REST client's verbs (proactive_bot/channel/connector.py `Conversations`), which only the
# adapter calls (send and reply are botbuilder's, through the client the adapter hands it).
REST_VERBS = {"update_activity", "delete_activity", "create", "paged_members"}


def calls_in(path: Path) -> list[tuple[str, str]]:
    """(verb, receiver) of each method call in a module: `self._adapter.paged_members(...)` is
    ("paged_members", "self._adapter")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            found.append((node.func.attr, ast.unparse(node.func.value)))
    return found


def modules() -> dict[str, list[tuple[str, str]]]:
    return {str(path.relative_to(PACKAGE)): calls_in(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_each_adapter_verb_is_called_from_exactly_one_module_outside_the_edge() -> None:
    callers: dict[str, set[str]] = defaultdict(set)
    for module, calls in modules().items():
        if not module.startswith("channel/"):
            for verb, _ in calls:
                if verb in ADAPTER_VERBS:
                    callers[verb].add(module)
    assert {verb: len(callers[verb]) for verb in ADAPTER_VERBS} == dict.fromkeys(ADAPTER_VERBS, 1), dict(callers)


def test_the_modules_that_call_the_connector_do_it_through_calls_make() -> None:
    for module, calls in modules().items():
        if not module.startswith("channel/") and any(verb in ADAPTER_VERBS for verb, _ in calls):
            assert any(verb == "make" and receiver.endswith("_calls") for verb, receiver in calls), module


def test_the_rest_client_is_called_only_by_the_adapter() -> None:
    callers = {
        module
        for module, calls in modules().items()
        for verb, receiver in calls
        if verb in REST_VERBS and receiver.endswith("conversations")
    }
    assert callers == {"channel/adapter.py"}
