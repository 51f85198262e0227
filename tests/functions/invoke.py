"""Calling a function the way the Functions host does: through its own function.json.

Where Microsoft's worker library is installed (Python 3.13, devtools/funchost/worker.py), the
call goes through it as FunctionRpc messages, as in Azure; elsewhere the function is called
directly with the objects the worker would build.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import azure.functions as func
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from devtools.funchost import worker as ms_worker

APP_ROOT = Path(__file__).resolve().parents[2]
# FUNCHOST_WORKER chooses as it does for the local host; else the worker wherever it is installed.
THROUGH_WORKER = ms_worker.worker_mode(os.environ.get(ms_worker.WORKER_SETTING)) is ms_worker.WorkerMode.MICROSOFT


class Collected(func.Out):
    """An output binding that keeps what the function set."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, val: Any) -> None:
        self.value = val

    def get(self) -> Any:
        return self.value


@dataclass
class Function:
    name: str
    bindings: list[dict[str, Any]]
    main: Callable[..., Any]

    def binding(self, type_: str) -> dict[str, Any]:
        [found] = [b for b in self.bindings if b["type"] == type_]
        return found

    def outputs(self, type_: str) -> dict[str, Collected]:
        return {
            b["name"]: Collected()
            for b in self.bindings
            if b["direction"] == "out" and b["type"] == type_ and b["name"] != "$return"
        }


def load(name: str) -> Function:
    spec = json.loads((APP_ROOT / name / "function.json").read_text("utf-8"))
    module = importlib.import_module(name)
    return Function(name, spec["bindings"], getattr(module, spec.get("entryPoint", "main")))


async def http(
    name: str,
    body: Any = b"",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
) -> func.HttpResponse:
    function = load(name)
    trigger = function.binding("httpTrigger")
    assert method.lower() in [m.lower() for m in trigger.get("methods", [method])], f"{name} does not take {method}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    route = _render(trigger.get("route", name), route_params or {})
    query = ("?" + urlencode(params)) if params else ""
    request = func.HttpRequest(
        method=method,
        url=f"http://localhost:7071/api/{route}{query}",
        headers={"Content-Type": "application/json", **(headers or {})},
        params=params or {},
        route_params=route_params or {},
        body=raw,
    )
    if THROUGH_WORKER:
        return (await _through_worker(name, request))["$return"]
    return await function.main(**{trigger["name"]: request})


async def _through_worker(name: str, trigger_value: Any) -> dict[str, Any]:
    """One InvocationRequest to Microsoft's worker; the outputs by binding name."""
    worker = await ms_worker.in_process_worker(APP_ROOT)
    return await worker.call(await worker.loaded(name), trigger_value, str(uuid.uuid4()))


def _render(template: str, values: dict[str, str]) -> str:
    """A Functions route template with its parameters filled in (optional ones may be left out)."""

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name in values:
            return quote(values[name], safe="")
        assert match["optional"], f"route parameter {name} is required"
        return ""

    return re.sub(r"\{(?P<name>\w+)(?::\w+)?(?P<optional>\?)?\}", fill, template).rstrip("/")


async def timer(name: str) -> None:
    function = load(name)
    trigger = function.binding("timerTrigger")
    request = TimerRequest(past_due=False)
    if THROUGH_WORKER:
        await _through_worker(name, request)
        return
    await function.main(**{trigger["name"]: request})


async def queue(name: str, body: bytes, *, dequeue_count: int = 1) -> dict[str, Collected]:
    """Deliver one queue message (as the host does with messageEncoding "none"); returns outputs."""
    function = load(name)
    trigger = function.binding("queueTrigger")
    outputs = function.outputs("queue")
    message = QueueMessage(id=str(uuid.uuid4()), body=body, dequeue_count=dequeue_count)
    if THROUGH_WORKER:
        for output, value in (await _through_worker(name, message)).items():
            if output in outputs:
                outputs[output].value = value
        return outputs
    await function.main(**{trigger["name"]: message}, **outputs)
    return outputs
