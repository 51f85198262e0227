"""The local Functions host against the sample app, with a real Azurite behind the queues."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import pytest_asyncio
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from devtools import azurite
from devtools.funchost import FunctionHost, HostStartupError, load_host_config, load_settings
from devtools.funchost.functions import Binding, FunctionSpec, LoadedFunction
from devtools.funchost.ncrontab import parse_schedule
from devtools.funchost.queues import EMULATOR_API_VERSION, QueueConnections
from devtools.funchost.routing import compile_route
from devtools.funchost.timers import TimerRunner, is_past_due
from tests.support.polling import eventually
from tests.support.present import present

pytestmark = pytest.mark.timeout(60)
# One event loop for the whole session, shared with the module-scoped hosts.
session_loop = pytest.mark.asyncio(loop_scope="session")

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


# --- helpers ------------------------------------------------------------------------------------


def records(app: Path, function: str) -> list[dict[str, Any]]:
    path = app / "_out" / f"{function}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Queues:
    """Raw (unencoded) access to the emulator's queues, as an outside producer sees them."""

    def __init__(self, connection_string: str) -> None:
        self._connection_string = connection_string
        self._clients: dict[str, QueueClient] = {}

    def __call__(self, name: str) -> QueueClient:
        if name not in self._clients:
            self._clients[name] = QueueClient.from_connection_string(self._connection_string, name)
        return self._clients[name]

    async def contents(self, name: str) -> list[str]:
        try:
            return [message.content for message in await self(name).peek_messages(max_messages=32)]
        except ResourceNotFoundError:  # the host creates poison and output queues on first use
            return []

    async def count(self, name: str) -> int:
        # Counts hidden (in-flight or retrying) messages too, unlike peek.
        return present((await self(name).get_queue_properties()).approximate_message_count)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()


# --- fixtures -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def queues(funchost_azurite: azurite.Azurite) -> AsyncIterator[Queues]:
    access = Queues(funchost_azurite.connection_string)
    yield access
    await access.close()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def base64_app(
    funchost_azurite: azurite.Azurite, copy_sample_app: Callable[..., Path]
) -> AsyncIterator[tuple[FunctionHost, Path]]:
    """The sample app as written: base64 messages, an every-second timer, generated host key."""
    app = copy_sample_app("base64")
    host = FunctionHost(app, {"AzureWebJobsStorage": funchost_azurite.connection_string})
    await host.start(0)
    yield host, app
    await host.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def plain_app(
    funchost_azurite: azurite.Azurite, copy_sample_app: Callable[..., Path]
) -> AsyncIterator[tuple[FunctionHost, Path]]:
    """messageEncoding "none", its own queues, a fixed host key and a yearly timer."""
    app = copy_sample_app("plain", queues={"messageEncoding": "none"})
    host = FunctionHost(
        app,
        {
            "AzureWebJobsStorage": funchost_azurite.connection_string,
            "WorkQueue": "plain-work",
            "FanoutQueue": "plain-fanout",
            "TickSchedule": "0 0 0 1 JAN *",
            "FUNCTIONS_HOST_KEY": "plain-secret",
        },
    )
    await host.start(0)
    yield host, app
    await host.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- HTTP ---------------------------------------------------------------------------------------


@session_loop
async def test_http_route_params_context_and_response(base64_app, http) -> None:
    host, _ = base64_app
    async with http.get(f"{host.url}/api/hello/Ada") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-Sample"] == "yes"
        payload = await response.json()
    assert payload["greeting"] == "Hello, Ada"
    assert payload["function"] == "sample_http"
    assert payload["invocation_id"]


@session_loop
async def test_http_optional_parameter_methods_and_body(base64_app, http) -> None:
    host, _ = base64_app
    async with http.get(f"{host.url}/api/hello?name=Grace") as response:
        assert (await response.json())["greeting"] == "Hello, Grace"
    async with http.post(f"{host.url}/API/Hello/Bob", data=b"payload") as response:
        payload = await response.json()
    assert (payload["greeting"], payload["method"], payload["body"]) == ("Hello, Bob", "POST", "payload")
    async with http.put(f"{host.url}/api/hello/Ada") as response:
        assert response.status == 404  # not among the binding's methods
    async with http.get(f"{host.url}/api/nowhere") as response:
        assert response.status == 404


@session_loop
async def test_http_function_key(base64_app, http) -> None:
    host, _ = base64_app
    url = f"{host.url}/api/items/42"
    async with http.get(url) as response:
        assert response.status == 401
    async with http.get(url, params={"code": "wrong"}) as response:
        assert response.status == 401
    async with http.get(url, params={"code": host.host_key}) as response:
        assert response.status == 200
        text = await response.text()
    # The sync function ran on a pool thread (unnamed, like the worker's own pool's).
    assert text.startswith("item 42 on ThreadPoolExecutor-")
    async with http.get(url, headers={"x-functions-key": host.host_key}) as response:
        assert response.status == 200
    async with http.get(f"{host.url}/api/items/abc", params={"code": host.host_key}) as response:
        assert response.status == 404  # {id:int} does not match


@session_loop
async def test_http_key_from_settings(plain_app, http) -> None:
    host, _ = plain_app
    assert host.host_key == "plain-secret"
    async with http.get(f"{host.url}/api/items/1", params={"code": "plain-secret"}) as response:
        assert response.status == 200


@session_loop
async def test_http_unhandled_exception_is_500(base64_app, http, caplog) -> None:
    host, _ = base64_app
    with caplog.at_level(logging.INFO, logger="funchost"):
        async with http.get(f"{host.url}/api/hello?fail=1") as response:
            assert response.status == 500
            assert "asked to fail" not in await response.text()
    failed = [r.getMessage() for r in caplog.records if "Executed 'Functions.sample_http' (Failed" in r.getMessage()]
    # Logged with the function's part of the traceback.
    assert failed and "sample_http/__init__.py" in failed[0] and "RuntimeError: asked to fail" in failed[0]


@session_loop
async def test_admin_api(base64_app, http) -> None:
    host, _ = base64_app
    async with http.get(f"{host.url}/admin/host/status") as response:
        assert response.status == 200
        assert await response.json() == {"state": "Running"}
    async with http.get(f"{host.url}/admin/functions") as response:
        names = {entry["name"] for entry in await response.json()}
    assert "sample_queue" in names and "sample_disabled" not in names
    async with http.post(f"{host.url}/admin/functions/no_such_function", json={"input": ""}) as response:
        assert response.status == 404
    async with http.post(f"{host.url}/admin/functions/sample_http", json={"input": ""}) as response:
        assert response.status == 400


# --- timers -------------------------------------------------------------------------------------


@session_loop
async def test_timer_runs_on_its_schedule(base64_app) -> None:
    _, app = base64_app

    def two_runs() -> list[dict[str, Any]] | None:
        found = records(app, "sample_timer")
        return found if len(found) >= 2 else None

    runs = await eventually(two_runs)
    assert all(run["past_due"] is False for run in runs)


@session_loop
async def test_timer_runs_through_the_admin_api(base64_app, http) -> None:
    host, app = base64_app
    async with http.post(f"{host.url}/admin/functions/sample_timer_manual", json={"input": ""}) as response:
        assert response.status == 202
    runs = await eventually(lambda: records(app, "sample_timer_manual"))
    assert runs == [{"past_due": False, "function_name": "sample_timer_manual"}]


def _fake_timer_function() -> LoadedFunction:
    trigger = Binding("timer", "timerTrigger", "in", {"schedule": "00:00:00.1"})
    spec = FunctionSpec("fake_timer", Path("."), Path("__init__.py"), "main", trigger, ())
    return LoadedFunction(spec, lambda timer: None, {})


@session_loop
async def test_timer_runs_never_overlap(caplog) -> None:
    active = max_active = finished = 0

    async def slow_invoke(function: LoadedFunction, request: Any, reason: str) -> dict[str, Any]:
        nonlocal active, max_active, finished
        active += 1
        max_active = max(max_active, active)
        await asyncio.sleep(0.4)  # far longer than the 0.1 s schedule
        active -= 1
        finished += 1
        return {}

    tasks: set[asyncio.Task[Any]] = set()

    def spawn(work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        return task

    runner = TimerRunner(_fake_timer_function(), parse_schedule("00:00:00.1"), UTC, slow_invoke, spawn)
    stopping = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="funchost"):
        loop = asyncio.ensure_future(runner.run(stopping))
        runner.fire(past_due=False)  # a manual run queues behind, never alongside
        await eventually(lambda: finished >= 3)
        stopping.set()
        await loop
        await asyncio.gather(*tasks)
    assert max_active == 1
    assert "skipped its occurrence" in caplog.text


PAST_DUE = [
    # schedule, due, now, past due?
    ("0 * * * * *", datetime(2024, 6, 1, 12, 0, 0), datetime(2024, 6, 1, 12, 0, 30), False),
    ("0 * * * * *", datetime(2024, 6, 1, 12, 0, 0), datetime(2024, 6, 1, 12, 1, 0), True),
    ("00:10:00", datetime(2024, 6, 1, 12, 0, 0), datetime(2024, 6, 1, 12, 9, 0), False),
    ("00:10:00", datetime(2024, 6, 1, 12, 0, 0), datetime(2024, 6, 1, 12, 15, 0), True),
]


@pytest.mark.parametrize(("expression", "due", "now", "expected"), PAST_DUE)
def test_past_due_means_behind_by_more_than_the_schedule(
    expression: str, due: datetime, now: datetime, expected: bool
) -> None:
    utc = UTC
    assert is_past_due(parse_schedule(expression), utc, due.replace(tzinfo=utc), now.replace(tzinfo=utc)) is expected


# --- queues -------------------------------------------------------------------------------------


@session_loop
async def test_queue_message_is_processed_and_deleted(base64_app, queues) -> None:
    _, app = base64_app
    await queues("sample-work").send_message(b64("hello queue"))
    seen = await eventually(lambda: [r for r in records(app, "sample_queue") if r["body"] == "hello queue"])
    assert seen[0]["dequeue_count"] == 1
    await eventually(lambda: _is_zero(queues, "sample-work"))


async def _is_zero(queues: Queues, name: str) -> bool:
    return await queues.count(name) == 0


@session_loop
async def test_failing_message_is_retried_then_poisoned(base64_app, queues) -> None:
    _, app = base64_app
    await queues("sample-work").send_message(b64("fail"))
    poisoned = await eventually(lambda: queues.contents("sample-work-poison"))
    # The original, still-encoded text, after maxDequeueCount (2) attempts.
    assert b64("fail") in poisoned
    attempts = [r["dequeue_count"] for r in records(app, "sample_queue") if r["body"] == "fail"]
    assert attempts == [1, 2]
    await eventually(lambda: _is_zero(queues, "sample-work"))


@session_loop
async def test_message_that_is_not_base64_goes_straight_to_poison(base64_app, queues) -> None:
    _, app = base64_app
    await queues("sample-work").send_message("plain text!")
    await eventually(lambda: _contains(queues, "sample-work-poison", "plain text!"))
    assert not [r for r in records(app, "sample_queue") if "plain" in r["body"]]


async def _contains(queues: Queues, name: str, text: str) -> bool:
    return text in await queues.contents(name)


@session_loop
async def test_queue_output_binding_enqueues_base64(base64_app, queues) -> None:
    await queues("sample-fanout").send_message(b64("abc"))
    out = await eventually(lambda: _at_least(queues, "sample-fanout-out", 2))
    assert sorted(out) == sorted([b64("ABC"), b64("cba")])


async def _at_least(queues: Queues, name: str, count: int) -> list[str] | None:
    contents = await queues.contents(name)
    return contents if len(contents) >= count else None


@session_loop
async def test_queue_function_runs_through_the_admin_api(base64_app, http) -> None:
    host, app = base64_app
    async with http.post(f"{host.url}/admin/functions/sample_queue", json={"input": "from admin"}) as response:
        assert response.status == 202
    seen = await eventually(lambda: [r for r in records(app, "sample_queue") if r["body"] == "from admin"])
    assert seen[0]["dequeue_count"] == 1


@session_loop
async def test_encoding_none_passes_text_as_is(plain_app, queues) -> None:
    _, app = plain_app
    await queues("plain-work").send_message('{"plain": true}')
    await eventually(lambda: [r for r in records(app, "sample_queue") if r["body"] == '{"plain": true}'])
    await queues("plain-fanout").send_message("xyz")
    out = await eventually(lambda: _at_least(queues, "plain-fanout-out", 2))
    assert sorted(out) == ["XYZ", "zyx"]


# --- startup, settings, shutdown ----------------------------------------------------------------


def write_app(
    root: Path, functions: dict[str, tuple[dict[str, Any], str]], values: dict[str, str] | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "host.json").write_text(json.dumps({"version": "2.0"}))
    settings = {"IsEncrypted": False, "Values": {"FUNCTIONS_WORKER_RUNTIME": "python", **(values or {})}}
    (root / "local.settings.json").write_text(json.dumps(settings))
    for name, (function_json, code) in functions.items():
        (root / name).mkdir()
        (root / name / "function.json").write_text(json.dumps(function_json))
        (root / name / "__init__.py").write_text(code)
    return root


def timer_json(schedule: str, *extra: dict[str, Any]) -> dict[str, Any]:
    return {"bindings": [{"name": "timer", "type": "timerTrigger", "direction": "in", "schedule": schedule}, *extra]}


STARTUP_ERRORS = [
    (
        "unsupported trigger",
        {
            "bad_blob": (
                {"bindings": [{"name": "blob", "type": "blobTrigger", "direction": "in", "path": "x/{name}"}]},
                "def main(blob): pass\n",
            )
        },
        ["bad_blob", "blobTrigger"],
    ),
    (
        "unsupported output",
        {
            "bad_table": (
                timer_json("0 * * * * *", {"name": "row", "type": "table", "direction": "out", "tableName": "t"}),
                "def main(timer, row): pass\n",
            )
        },
        ["bad_table", "table"],
    ),
    (
        "missing setting",
        {"bad_setting": (timer_json("%NoSuchSchedule%"), "def main(timer): pass\n")},
        ["bad_setting", "%NoSuchSchedule%"],
    ),
    ("bad schedule", {"bad_cron": (timer_json("0 0 25 * * *"), "def main(timer): pass\n")}, ["bad_cron", "hour"]),
    (
        "parameter mismatch",
        {"bad_params": (timer_json("0 * * * * *"), "def main(tick): pass\n")},
        ["bad_params", "tick"],
    ),
    (
        "annotation the worker refuses",
        {
            "bad_annotation": (
                {"bindings": [{"name": "msg", "type": "queueTrigger", "direction": "in", "queueName": "q1"}]},
                # str and bytes would pass: the worker binds them "generic", as the message body.
                "def main(msg: int): pass\n",
            )
        },
        ["bad_annotation", "msg", "queueTrigger"],
    ),
]


@pytest.mark.parametrize(("case", "functions", "expected"), STARTUP_ERRORS, ids=[case[0] for case in STARTUP_ERRORS])
@session_loop
async def test_startup_errors_name_the_function(
    tmp_path: Path, case: str, functions: dict, expected: list[str]
) -> None:
    host = FunctionHost(write_app(tmp_path / "app", functions))
    with pytest.raises(HostStartupError) as error:
        await host.start(0)
    assert all(text in str(error.value) for text in expected), str(error.value)
    assert host.state == "Stopped"


@session_loop
async def test_stop_waits_for_in_flight_invocations(tmp_path: Path) -> None:
    code = (
        "import asyncio, pathlib\n"
        "async def main(timer):\n"
        "    await asyncio.sleep(0.3)\n"
        "    (pathlib.Path(__file__).parent.parent / 'done').write_text('yes')\n"
    )
    app = write_app(tmp_path / "app", {"slow_timer": (timer_json("0 0 0 1 JAN *"), code)})
    host = FunctionHost(app)
    await host.start(0)
    host.run_function("slow_timer")
    await host.stop()
    assert (app / "done").read_text() == "yes"


@session_loop
async def test_run_on_startup(tmp_path: Path) -> None:
    code = (
        "import pathlib\n"
        "def main(timer):\n"
        "    (pathlib.Path(__file__).parent.parent / 'started').write_text(str(timer.past_due))\n"
    )
    schedule = timer_json("0 0 0 1 JAN *")
    schedule["bindings"][0]["runOnStartup"] = True
    app = write_app(tmp_path / "app", {"startup_timer": (schedule, code)})
    host = FunctionHost(app)
    await host.start(0)
    try:
        await eventually(lambda: (app / "started").exists())
    finally:
        await host.stop()
    assert (app / "started").read_text() == "False"


def test_development_storage_shorthand_targets_local_azurite(tmp_path: Path) -> None:
    settings = load_settings(write_app(tmp_path / "app", {}))
    client = QueueConnections(settings, "base64").queue("UseDevelopmentStorage=true", "work")
    assert client.url == "http://127.0.0.1:10001/devstoreaccount1/work"
    assert client.api_version == EMULATOR_API_VERSION


def test_settings_precedence(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {}, {"A": "file", "B": "file", "C": "file"})
    (app / "local.settings.json").rename(app / "local.settings.json.example")
    settings = load_settings(app, explicit={"C": "explicit"}, environ={"B": "env"})
    assert (settings.get("A"), settings.get("B"), settings.get("C")) == ("file", "env", "explicit")
    assert settings.source == app / "local.settings.json.example"


def test_host_json_options(copy_sample_app: Callable[..., Path], tmp_path: Path) -> None:
    sample = load_host_config(copy_sample_app("config"))
    assert sample.route_prefix == "api"
    assert sample.queues.max_dequeue_count == 2
    assert sample.queues.visibility_timeout == timedelta(seconds=1)
    assert sample.queues.batch_size == 4
    assert sample.function_timeout == timedelta(seconds=30)
    defaults = load_host_config(write_app(tmp_path / "app", {}))
    assert (
        defaults.route_prefix,
        defaults.queues.max_dequeue_count,
        defaults.queues.batch_size,
        defaults.queues.max_polling_interval,
        defaults.queues.message_encoding,
        defaults.queues.visibility_timeout,
    ) == ("api", 5, 16, timedelta(minutes=1), "base64", timedelta(0))


ROUTES = [
    # template, path, expected route values (None: no match)
    ("api/hello/{name?}", "/api/hello", {}),
    ("api/hello/{name?}", "/api/hello/Ada", {"name": "Ada"}),
    ("api/notifications/{id}", "/api/notifications/a%20b", {"id": "a b"}),
    ("api/notifications/{id}", "/api/notifications", None),
    ("api/items/{id:int}", "/api/items/12", {"id": "12"}),
    ("api/items/{id:int}", "/api/items/x", None),
    ("api/items/{id:int?}", "/api/items", {}),
    ("api/items/{id:min(1)}", "/api/items/abc", {"id": "abc"}),  # unknown constraint: tolerated
    ("api/page/{n=1}", "/api/page", {"n": "1"}),
    ("api/files/{*path}", "/api/files/a/b/c.txt", {"path": "a/b/c.txt"}),
    ("api/{file}.{ext}", "/api/report.pdf", {"file": "report", "ext": "pdf"}),
    ("hello", "/hello/", {}),
]


@pytest.mark.parametrize(("template", "path", "expected"), ROUTES)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert compile_route(template).match(path) == expected


@session_loop
async def test_command_line_host_starts_and_stops(
    copy_sample_app: Callable[..., Path], funchost_azurite: azurite.Azurite, http
) -> None:
    app = copy_sample_app("cli")
    port = azurite.free_port()
    env = {
        **os.environ,
        "AzureWebJobsStorage": funchost_azurite.connection_string,
        "WorkQueue": "cli-work",
        "FanoutQueue": "cli-fanout",
        "TickSchedule": "0 0 0 1 JAN *",
        "PYTHONPATH": str(REPO_ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.funchost",
        "--app-root",
        str(app),
        "--port",
        str(port),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def ready() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/admin/host/status") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(ready)
        async with http.get(f"http://127.0.0.1:{port}/api/hello/cli") as response:
            assert (await response.json())["greeting"] == "Hello, cli"
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "sample_http: [GET,POST]" in log and "Host stopped." in log


@session_loop
async def test_identity_storage_settings_get_a_clear_startup_error(tmp_path: Path) -> None:
    """This host speaks connection strings only; an identity-based AzureWebJobsStorage__* says so."""
    functions = {
        "worker": (
            {"bindings": [{"name": "msg", "type": "queueTrigger", "direction": "in", "queueName": "work-items"}]},
            "def main(msg): pass\n",
        )
    }
    # Explicitly empty: this module's other hosts export a connection string while they run.
    host = FunctionHost(
        write_app(tmp_path / "app", functions),
        {"AzureWebJobsStorage": "", "AzureWebJobsStorage__accountName": "contosobot"},
    )
    try:
        with pytest.raises(HostStartupError, match=r"does not take the identity form \(AzureWebJobsStorage__\*\)"):
            await host.start(0)
    finally:
        await host.stop()
