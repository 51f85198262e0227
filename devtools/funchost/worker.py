"""Worker mode: Microsoft's Python worker code loads, binds and invokes the functions.

`azure-functions-runtime-v1` is the library Azure's Python worker calls for v1 (function.json)
apps on Python 3.13. It is driven here in-process, without gRPC: its `handle_event` coroutines
take the FunctionRpc `StreamingMessage`s the Functions host would send (WorkerInitRequest, one
FunctionLoadRequest per function.json, an InvocationRequest per trigger) and answer with the
host's response messages. This host keeps the host's side: function.json and host.json, HTTP,
keys, queue polling and poison, timers, output bindings and logging.

The generated FunctionRpc modules ship in the same wheel, under a top-level `tests/protos`
package that would clash with this repository's `tests`; they are loaded by file path under a
private name. The library keeps module-level state (one app per worker process, as in Azure);
a process that hosts several apps one after another (the test suite) re-points it at each.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
import types
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import rpc
from .config import HostStartupError, load_settings
from .functions import APP_PACKAGE, FunctionSpec, Invoker, LoadedFunction, OutputHandler, install_app_package, read_spec

DISTRIBUTION = "azure-functions-runtime-v1"
_PROTOS_PACKAGE = "_funchost_function_rpc"  # where the wheel's tests/protos modules are imported
_PROTO_MODULES = ("FunctionRpc_pb2", "shared.NullableTypes_pb2", "identity.ClaimsIdentityRpc_pb2")


def available() -> bool:
    """Microsoft's library is installed (it exists for Python 3.13 and later only)."""
    return importlib.util.find_spec("azure_functions_runtime_v1") is not None


WORKER_SETTING = "FUNCHOST_WORKER"


class WorkerMode(StrEnum):
    """Who loads, binds and invokes the functions."""

    MICROSOFT = "microsoft"  # azure-functions-runtime-v1 over FunctionRpc messages (Python 3.13+)
    FUNCHOST = "funchost"  # our own loader (functions.py), for 3.11 and 3.12


def worker_mode(setting: str | None = None) -> WorkerMode:
    """FUNCHOST_WORKER if set, else Microsoft's worker wherever it is installed."""
    if not setting:
        return WorkerMode.MICROSOFT if available() else WorkerMode.FUNCHOST
    try:
        mode = WorkerMode(setting.lower())
    except ValueError:
        choices = ", ".join(m.value for m in WorkerMode)
        raise HostStartupError(f"{WORKER_SETTING} {setting!r} is not one of {choices}") from None
    if mode is WorkerMode.MICROSOFT and not available():
        raise HostStartupError(
            f"{WORKER_SETTING}=microsoft needs azure-functions-runtime-v1 (Python 3.13+, requirements.txt)"
        )
    return mode


class WorkerError(Exception):
    """The worker answered Failure; `message` and `stack_trace` are its RpcException's."""

    def __init__(self, message: str, stack_trace: str = "") -> None:
        super().__init__(message)
        self.stack_trace = stack_trace


def load_protos() -> types.ModuleType:
    """The generated FunctionRpc messages, as one module (what the host passes as `protos`)."""
    existing = sys.modules.get(f"{_PROTOS_PACKAGE}.messages")
    if existing is not None:
        return existing
    location = Path(str(importlib.metadata.distribution(DISTRIBUTION).locate_file("tests/protos")))
    if not (location / "FunctionRpc_pb2.py").is_file():
        raise HostStartupError(f"{DISTRIBUTION} is installed without its generated protos ({location})")
    # A package with the wheel's folder as its path, without running its __init__ (which
    # imports grpc, which in-process use does not need).
    spec = importlib.machinery.ModuleSpec(_PROTOS_PACKAGE, None, is_package=True)
    spec.submodule_search_locations = [str(location)]
    sys.modules[_PROTOS_PACKAGE] = importlib.util.module_from_spec(spec)
    messages = types.ModuleType(f"{_PROTOS_PACKAGE}.messages")
    for name in _PROTO_MODULES:
        generated = importlib.import_module(f"{_PROTOS_PACKAGE}.{name}")
        for attribute in dir(generated):
            if not attribute.startswith("_"):
                setattr(messages, attribute, getattr(generated, attribute))
    sys.modules[messages.__name__] = messages
    return messages


class _Event:
    """What handle_event's coroutines take: the message, and for init the host's properties."""

    def __init__(self, request: Any, properties: Mapping[str, Any] | None = None) -> None:
        self.request = request
        self.properties = dict(properties or {})


# The exception the app's function raised, seen as the worker serializes it: an in-process
# caller (the tests) can then see the app's own exception, which the host's log shows too.
_raised: contextvars.ContextVar[BaseException | None] = contextvars.ContextVar("funchost_raised", default=None)


def _recording(serialize: Callable[[Exception, Any], Any]) -> Callable[[Exception, Any], Any]:
    def serialize_exception(exc: Exception, protos: Any) -> Any:
        _raised.set(exc)
        return serialize(exc, protos)

    serialize_exception.__wrapped__ = serialize  # type: ignore[attr-defined]
    return serialize_exception


class MicrosoftWorker:
    """One app's functions, loaded into Microsoft's worker library in this process."""

    def __init__(self, app_root: Path) -> None:
        from azure_functions_runtime_v1 import handle_event

        self.app_root = app_root
        self.protos = load_protos()
        self._events = handle_event
        self._ids: dict[str, str] = {}  # function name -> function id
        self._loaded: dict[str, LoadedFunction] = {}

    async def start(self) -> None:
        """WorkerInitRequest, after pointing the library at this app root."""
        from azure_functions_runtime_v1 import loader
        from azure_functions_runtime_v1.utils import threadpool

        root = str(self.app_root)
        if set(getattr(sys.modules.get(APP_PACKAGE), "__path__", [])) != {root}:
            # Another app was loaded in this process before: its modules go (install_app_package),
            # then the library installs its own `__app__` namespace package for this root.
            loader._submodule_dirs.clear()
            install_app_package(self.app_root)
            sys.modules.pop(APP_PACKAGE, None)
        if not hasattr(self._events.serialize_exception, "__wrapped__"):
            self._events.serialize_exception = _recording(self._events.serialize_exception)
        if threadpool.get_threadpool_executor() is None:
            threadpool.start_threadpool_executor()  # sized by PYTHON_THREADPOOL_THREAD_COUNT
        request = self.protos.StreamingMessage(
            worker_init_request=self.protos.WorkerInitRequest(
                host_version="4.1000.0", function_app_directory=root, worker_directory=root
            )
        )
        response = await self._events.worker_init_request(_Event(request, {"protos": self.protos, "host": "127.0.0.1"}))
        if response.result.status != self.protos.StatusResult.Success:
            raise HostStartupError(f"The worker did not start: {response.result.exception.message}")

    async def load(self, spec: FunctionSpec) -> LoadedFunction:
        function_id = str(uuid.uuid4())
        request = self.protos.StreamingMessage(
            function_load_request=self.protos.FunctionLoadRequest(
                function_id=function_id, metadata=rpc.function_metadata(self.protos, spec, function_id)
            )
        )
        response = await self._events.function_load_request(_Event(request))
        if response.result.status != self.protos.StatusResult.Success:
            exception = response.result.exception
            raise HostStartupError(f"Function '{spec.name}': the worker did not load it: {exception.message}")
        self._ids[spec.name] = function_id
        return LoadedFunction(spec)

    async def loaded(self, name: str) -> LoadedFunction:
        """The function of that folder, loaded now if it was not yet."""
        if name not in self._loaded:
            spec = read_spec(self.app_root / name, load_settings(self.app_root))
            if spec is None:
                raise HostStartupError(f"Function '{name}' is disabled")
            self._loaded[name] = await self.load(spec)
        return self._loaded[name]

    async def call(self, function: LoadedFunction, trigger_value: Any, invocation_id: str) -> dict[str, Any]:
        """One InvocationRequest; the outputs by binding name, or the function's exception."""
        data, metadata = rpc.trigger_data(self.protos, function.name, trigger_value)
        request = self.protos.StreamingMessage(
            invocation_request=self.protos.InvocationRequest(
                invocation_id=invocation_id,
                function_id=self._ids[function.name],
                input_data=[self.protos.ParameterBinding(name=function.trigger.name, data=data)],
                trigger_metadata=metadata,
            )
        )
        _raised.set(None)
        response = await self._events.invocation_request(_Event(request))
        if response.result.status != self.protos.StatusResult.Success:
            raised = _raised.get()
            if raised is not None:
                raise raised
            exception = response.result.exception
            raise WorkerError(exception.message, exception.stack_trace)
        return rpc.output_values(response, function.spec.outputs)


class WorkerInvoker(Invoker):
    """The host's invocation (logging, timeout, outputs) around Microsoft's worker."""

    def __init__(
        self,
        worker: MicrosoftWorker,
        executor: Executor,
        output_handlers: Mapping[str, OutputHandler],
        timeout: timedelta | None,
    ) -> None:
        super().__init__(executor, output_handlers, timeout)
        self.worker = worker

    async def call(self, function: LoadedFunction, trigger_value: Any, invocation_id: str) -> dict[str, Any]:
        return await self.worker.call(function, trigger_value, invocation_id)


_in_process: dict[Path, MicrosoftWorker] = {}


async def in_process_worker(app_root: Path) -> MicrosoftWorker:
    """The worker for callers that invoke functions directly (tests/functions): started once
    per app root, each function loaded on first use, as a warm worker process keeps them."""
    root = app_root  # absolute, as callers pass it (tests/functions/invoke.py: APP_ROOT)
    worker = _in_process.get(root)
    if worker is None:
        worker = MicrosoftWorker(root)
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        await worker.start()
        _in_process[root] = worker
    return worker
