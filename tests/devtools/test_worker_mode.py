"""The local host's worker modes: Microsoft's azure-functions-runtime-v1 (3.13+) or our own loader.

What the app sees must not depend on the mode: where they differed, ours was changed to match
Microsoft's (README, "Python versions").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devtools.funchost import FunctionHost, HostStartupError
from devtools.funchost.worker import WORKER_SETTING, WorkerMode, available, worker_mode
from tests.conftest import unique
from tests.devtools.test_funchost import eventually, session_loop, write_app

MODES = [WorkerMode.FUNCHOST, *([WorkerMode.MICROSOFT] if available() else [])]
needs_worker = pytest.mark.skipif(not available(), reason="azure-functions-runtime-v1 needs Python 3.13+")

ECHO = """\
import json
import azure.functions as func

async def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    if req.params.get("fail"):
        raise RuntimeError("the app failed on purpose")
    seen = {
        "context": type(context).__module__,
        "function": context.function_name,
        "headers": dict(req.headers),
        "route": dict(req.route_params),
        "params": dict(req.params),
        "body": req.get_body().decode(),
    }
    return func.HttpResponse(json.dumps(seen), mimetype="application/json", headers={"X-Echo": "yes"})
"""

ECHO_JSON = {
    "bindings": [
        {"name": "req", "type": "httpTrigger", "direction": "in", "authLevel": "anonymous", "route": "echo/{id}"},
        {"name": "$return", "type": "http", "direction": "out"},
    ]
}

RECORD_QUEUE = """\
import json, os
import azure.functions as func

def main(msg: func.QueueMessage) -> None:
    seen = {
        "body": msg.get_body().decode(),
        "id": msg.id,
        "dequeue_count": msg.dequeue_count,
        "insertion_time": msg.insertion_time.isoformat() if msg.insertion_time else None,
        "pop_receipt": msg.pop_receipt,
    }
    with open(os.path.join(os.path.dirname(__file__), "seen.json"), "w") as out:
        json.dump(seen, out)
"""

RECORD_TEXT = """\
import os

def main(msg: str) -> None:
    with open(os.path.join(os.path.dirname(__file__), "seen.txt"), "w") as out:
        out.write(type(msg).__name__ + ":" + msg)
"""


def queue_json(queue: str) -> dict[str, Any]:
    return {"bindings": [{"name": "msg", "type": "queueTrigger", "direction": "in", "queueName": queue}]}


@pytest.fixture
async def host_of(tmp_path: Path, storage_connection: str) -> AsyncIterator[Any]:
    started: list[FunctionHost] = []

    async def start(mode: WorkerMode, functions: dict[str, tuple[dict[str, Any], str]]) -> FunctionHost:
        app = write_app(tmp_path / f"app-{mode}-{len(started)}", functions)
        host = FunctionHost(app, {"AzureWebJobsStorage": storage_connection, WORKER_SETTING: mode.value})
        await host.start(0)
        started.append(host)
        return host

    yield start
    for host in started:
        await host.stop()


@needs_worker
@session_loop
async def test_the_worker_mode_is_microsofts_code_path(host_of, monkeypatch) -> None:
    from azure_functions_runtime_v1 import handle_event

    decoded: list[str] = []
    original = handle_event.from_incoming_proto

    def spy(binding: str, pb: Any, **kwargs: Any) -> Any:
        decoded.append(binding)
        return original(binding, pb, **kwargs)

    monkeypatch.setattr(handle_event, "from_incoming_proto", spy)
    host = await host_of(WorkerMode.MICROSOFT, {"echo": (ECHO_JSON, ECHO)})

    async with aiohttp.ClientSession() as http, http.post(f"{host.url}/api/echo/7", data=b"hi") as response:
        seen = await response.json()

    assert host.worker_mode is WorkerMode.MICROSOFT
    assert decoded == ["httpTrigger"]  # Microsoft's converters built the request
    assert seen["context"] == "azure_functions_runtime_v1.bindings.context"
    assert seen["function"] == "echo"


@pytest.mark.parametrize("mode", MODES)
@session_loop
async def test_what_an_http_function_sees_is_the_same_in_both_modes(host_of, mode: WorkerMode) -> None:
    host = await host_of(mode, {"echo": (ECHO_JSON, ECHO)})

    async with aiohttp.ClientSession() as http:
        url = f"{host.url}/api/echo/7?q=1"
        async with http.post(url, data=b"hi", headers={"X-Custom-Header": "A"}) as response:
            assert (response.status, response.headers["X-Echo"]) == (200, "yes")
            assert response.content_type == "application/json"
            seen = await response.json()
        async with http.get(f"{host.url}/api/echo/7?fail=1") as failed:
            assert failed.status == 500  # an exception in the function, as the host answers it

    assert seen["headers"]["x-custom-header"] == "A"  # names lower-cased, as the host sends them
    assert seen["route"] == {"id": "7"}
    assert seen["params"] == {"q": "1"}
    assert seen["body"] == "hi"


@pytest.mark.parametrize("mode", MODES)
@session_loop
async def test_a_queue_message_carries_the_storage_metadata_in_both_modes(
    host_of, mode: WorkerMode, storage_connection: str
) -> None:
    from azure.storage.queue import TextBase64EncodePolicy
    from azure.storage.queue.aio import QueueClient

    queue = unique("wm-")
    host = await host_of(
        mode, {"record": (queue_json(queue), RECORD_QUEUE), "text": (queue_json(f"{queue}-t"), RECORD_TEXT)}
    )
    client = QueueClient.from_connection_string(
        storage_connection, queue, message_encode_policy=TextBase64EncodePolicy()
    )
    text = QueueClient.from_connection_string(
        storage_connection, f"{queue}-t", message_encode_policy=TextBase64EncodePolicy()
    )
    async with client, text:
        sent = await client.send_message('{"hello": "queue"}')
        await text.send_message("plain words")
    record = host.find_function("record")
    assert record is not None

    seen_file = record.spec.directory / "seen.json"
    seen = json.loads(await eventually(lambda: seen_file.is_file() and seen_file.read_text()))
    text_file = record.spec.directory.parent / "text" / "seen.txt"
    said = await eventually(lambda: text_file.is_file() and text_file.read_text())

    assert seen["body"] == '{"hello": "queue"}'
    assert seen["id"] == sent.id
    assert seen["dequeue_count"] == 1
    assert seen["pop_receipt"]
    assert seen["insertion_time"] and seen["insertion_time"].endswith("+00:00")
    assert said == "str:plain words"  # a str annotation binds the body ("generic"), in both modes


def http_json(returns: bool) -> dict[str, Any]:
    trigger = {"name": "req", "type": "httpTrigger", "direction": "in", "authLevel": "anonymous"}
    return {"bindings": [trigger, *([{"name": "$return", "type": "http", "direction": "out"}] if returns else [])]}


@pytest.mark.parametrize("mode", MODES)
@session_loop
async def test_a_return_value_the_bindings_cannot_take_fails_the_invocation_in_both_modes(
    host_of, mode: WorkerMode
) -> None:
    host = await host_of(
        mode,
        {
            "no_answer": (http_json(returns=True), "async def main(req):\n    return None\n"),
            "nowhere": (http_json(returns=False), "async def main(req):\n    return 'lost'\n"),
            "unset": (http_json(returns=False), "async def main(req):\n    return None\n"),
        },
    )

    async with aiohttp.ClientSession() as http:
        statuses = {}
        for name in ("no_answer", "nowhere", "unset"):
            async with http.get(f"{host.url}/api/{name}") as response:
                statuses[name] = response.status

    # The worker cannot encode None as an HttpResponse, nor send a value without a $return.
    assert statuses == {"no_answer": 500, "nowhere": 500, "unset": 204}


def test_the_mode_is_chosen_by_the_setting_else_by_what_is_installed() -> None:
    assert worker_mode("funchost") is WorkerMode.FUNCHOST
    assert worker_mode(None) is (WorkerMode.MICROSOFT if available() else WorkerMode.FUNCHOST)
    with pytest.raises(HostStartupError, match="FUNCHOST_WORKER 'grpc'"):
        worker_mode("grpc")
    if not available():
        with pytest.raises(HostStartupError, match="azure-functions-runtime-v1"):
            worker_mode("microsoft")
