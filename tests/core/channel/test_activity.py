"""The SDK door guarded on values: what proactive_bot/channel/ hands out is ours (plain data or
an opaque `PreparedActivity`), never a botbuilder, botframework or msrest object."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import typing
from pathlib import Path
from typing import Any

from proactive_bot.activities import message
from proactive_bot.channel import ChannelAdapter, PreparedActivity, outgoing
from proactive_bot.notifications.contract import validate
from tests.core.teams.test_reach import TEAM, installed

PACKAGE = Path(__file__).resolve().parents[3] / "proactive_bot"
SDK = ("botbuilder", "botframework", "msrest")
# The adapter's Connector verbs: what the rest of the app calls on the edge.
VERBS = ("send_proactive", "update_activity", "delete_activity", "create_conversation_json", "paged_members")


def is_sdk(kind: Any) -> bool:
    return any(getattr(c, "__module__", "").split(".")[0] in SDK for c in getattr(kind, "__mro__", (kind,)))


def sdk_objects(value: Any) -> list[str]:
    """The SDK objects in `value` (walking lists, tuples and dicts; ours are not opened)."""
    if isinstance(value, dict):
        return [found for item in (*value.keys(), *value.values()) for found in sdk_objects(item)]
    if isinstance(value, (list, tuple)):
        return [found for item in value for found in sdk_objects(item)]
    return [f"{type(value).__module__}.{type(value).__qualname__}"] if is_sdk(type(value)) else []


def sdk_types_in(hint: Any) -> list[str]:
    """The SDK classes an annotation names (inside unions, generics, callables)."""
    found = [f"{hint.__module__}.{hint.__qualname__}"] if isinstance(hint, type) and is_sdk(hint) else []
    return found + [name for argument in typing.get_args(hint) for name in sdk_types_in(argument)]


def test_an_outgoing_activity_is_prepared_once_and_opaque() -> None:
    prepared = outgoing(message("hi"))

    assert isinstance(prepared, PreparedActivity) and sdk_objects([prepared]) == []
    assert outgoing(prepared) is prepared  # already prepared: the same one, for every send
    assert all(f.name.startswith("_") for f in dataclasses.fields(prepared))  # nothing public to read
    assert repr(prepared) == "PreparedActivity(type='message')"


def edge_names() -> set[tuple[str, str]]:
    """(module, name) of everything the app outside channel/ imports from channel/."""
    used = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] == "channel":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "channel":
                module = "proactive_bot." + node.module
                used |= {(module, alias.name) for alias in node.names}
    return used


def test_what_the_app_takes_from_the_edge_names_no_sdk_type_in_its_signatures() -> None:
    offenders = []
    for module_name, name in sorted(edge_names()):
        thing = getattr(importlib.import_module(module_name), name)
        if inspect.isclass(thing) and not is_sdk(thing) and issubclass(thing, Exception):
            continue  # our exceptions: raised, not held
        if inspect.isclass(thing):
            if is_sdk(thing):  # an SDK subclass: whoever holds one holds the SDK
                offenders.append(f"{module_name}:{name} is a {[c.__module__ for c in thing.__mro__ if is_sdk(c)]}")
            functions = [
                (f"{name}.{attribute}", value.fget if isinstance(value, property) else value)
                for attribute, value in vars(thing).items()
                if not attribute.startswith("_") and (callable(value) or isinstance(value, property))
            ]
            if dataclasses.is_dataclass(thing):
                functions.append((name, thing))
        else:
            functions = [(name, thing)]
        for label, function in functions:
            hints = typing.get_type_hints(function)
            if inspect.isclass(function):  # a dataclass's public fields (a private one is opaque)
                hints = {k: hint for k, hint in hints.items() if not k.startswith("_")}
            offenders += [f"{module_name}:{label} {k}: {t}" for k, hint in hints.items() for t in sdk_types_in(hint)]
    assert offenders == []


async def test_a_notification_sent_edited_posted_and_recalled_hands_the_edge_no_sdk_object(engine_factory) -> None:
    engine = await engine_factory()
    adapter: ChannelAdapter = engine.delivery._adapter
    crossed: list[str] = []

    def watch(verb: str) -> None:
        original = getattr(adapter, verb)

        async def watched(*args: Any, **kwargs: Any) -> Any:
            crossed.extend(f"{verb} got {found}" for found in sdk_objects([args, kwargs]))
            answer = await original(*args, **kwargs)
            crossed.extend(f"{verb} answered {found}" for found in sdk_objects(answer))
            return answer

        setattr(adapter, verb, watched)

    for verb in VERBS:
        watch(verb)
    await installed(engine, 2)  # a roster read, and two users' chats later
    await engine.users(2)

    for notification in (
        {"id": "all", "to": {"all": True}, "text": "v0"},
        {"id": "team", "to": {"teamId": TEAM}, "text": "to the team"},
        {"id": "post", "to": {"teamChannel": {"teamId": TEAM, "channelId": "19:g@thread.tacv2"}}, "text": "post"},
    ):
        await engine.fanout.start(validate(notification), "test")
        await engine.drain()
    await engine.lifecycle.edit("all", "v1", None)
    await engine.drain()
    await engine.lifecycle.cancel("all")
    await engine.drain()

    holders = (engine.delivery, engine.delivery.calls, engine.teams.chats, engine.teams.roster, engine.fanout)
    crossed += [f"{type(h).__name__} holds {found}" for h in holders for found in sdk_objects(list(vars(h).values()))]
    routes = {r.route for r in engine.stub.received if r.ok}
    assert routes >= {"reply", "update", "delete", "create", "pagedmembers"}  # every verb was crossed
    assert crossed == []
