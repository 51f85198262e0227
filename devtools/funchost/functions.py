"""Discover function folders, import them like the Python worker, and invoke them.

Each folder at the app root holding a function.json is one function. The worker imports its
script as `__app__.<folder>` (the app root also goes on sys.path, so `import shared` works),
and binds parameters of the entry point by binding name; we do the same.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import logging
import sys
import threading
import time
import traceback
import typing
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import azure.functions as func
from azure.functions import _abc as func_abc

from .config import AppSettings, HostConfig, HostStartupError, resolve_setting_references

log = logging.getLogger("funchost")

APP_PACKAGE = "__app__"
TRIGGER_TYPES = ("httpTrigger", "timerTrigger", "queueTrigger")
OUTPUT_TYPES = ("http", "queue")
_CANONICAL_TYPES = {name.lower(): name for name in (*TRIGGER_TYPES, *OUTPUT_TYPES)}
# The reason the host logs for HTTP calls and admin-API runs.
MANUAL_REASON = "This function was programmatically called via the host APIs."
# Binding properties that are names, not binding expressions: never %-resolved.
_LITERAL_PROPERTIES = {"name", "type", "direction"}


@dataclass(frozen=True)
class Binding:
    name: str
    type: str
    direction: str
    properties: Mapping[str, Any]  # everything else, %Setting% references resolved

    def get(self, key: str, default: Any = None) -> Any:
        return self.properties.get(key, default)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    directory: Path
    script_file: Path
    entry_point: str
    trigger: Binding
    outputs: tuple[Binding, ...]


def discover(app_root: Path, config: HostConfig, settings: AppSettings) -> list[FunctionSpec]:
    """Every enabled function of the app; all problems reported together."""
    specs: list[FunctionSpec] = []
    problems: list[str] = []
    for directory in sorted(path for path in app_root.iterdir() if (path / "function.json").is_file()):
        if config.functions is not None and directory.name not in config.functions:
            continue
        try:
            spec = read_spec(directory, settings)
        except HostStartupError as exc:
            problems.append(str(exc))
            continue
        if spec is not None:
            specs.append(spec)
    if problems:
        raise HostStartupError("\n".join(problems))
    return specs


def read_spec(directory: Path, settings: AppSettings) -> FunctionSpec | None:
    """One folder's function.json; None if the function is disabled."""
    name = directory.name
    try:
        document = json.loads((directory / "function.json").read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise HostStartupError(f"Function '{name}': function.json is not valid JSON: {exc}") from exc
    if _is_disabled(name, document, settings):
        log.info("Function '%s' is disabled; not loaded.", name)
        return None
    bindings = [_binding(name, raw, settings) for raw in document.get("bindings") or []]
    triggers = [b for b in bindings if b.type.lower().endswith("trigger")]
    if len(triggers) != 1:
        raise HostStartupError(f"Function '{name}': needs exactly one trigger binding, found {len(triggers)}")
    trigger = triggers[0]
    outputs = tuple(b for b in bindings if b is not trigger)
    for binding in bindings:
        _check_supported(name, binding, trigger)
    script = directory / document.get("scriptFile", "__init__.py")
    if script.suffix != ".py" or not script.is_file():
        raise HostStartupError(f"Function '{name}': script file {script} is missing or not .py")
    return FunctionSpec(name, directory, script, document.get("entryPoint") or "main", trigger, outputs)


def _is_disabled(name: str, document: Mapping[str, Any], settings: AppSettings) -> bool:
    # Both the function.json flag and the app setting the host documents for v2+ apps.
    setting = settings.get(f"AzureWebJobs.{name}.Disabled") or ""
    return document.get("disabled") is True or setting.lower() in ("true", "1")


def _binding(function: str, raw: Mapping[str, Any], settings: AppSettings) -> Binding:
    try:
        properties = {
            key: resolve_setting_references(value, settings) if isinstance(value, str) else value
            for key, value in raw.items()
            if key not in _LITERAL_PROPERTIES
        }
    except HostStartupError as exc:
        raise HostStartupError(f"Function '{function}', binding '{raw.get('name')}': {exc}") from exc
    raw_type = str(raw.get("type", ""))
    # The host reads binding types case-insensitively; keep the canonical spelling.
    return Binding(
        str(raw.get("name", "")),
        _CANONICAL_TYPES.get(raw_type.lower(), raw_type),
        str(raw.get("direction", "in")).lower(),
        properties,
    )


def _check_supported(function: str, binding: Binding, trigger: Binding) -> None:
    where = f"Function '{function}', binding '{binding.name}'"
    if not binding.name:
        raise HostStartupError(f"Function '{function}': a binding has no name")
    if binding is trigger:
        if binding.type not in TRIGGER_TYPES:
            raise HostStartupError(
                f"{where}: trigger type '{binding.type}' is not supported by "
                f"devtools.funchost (supported: {', '.join(TRIGGER_TYPES)})"
            )
        return
    if binding.direction != "out" or binding.type not in OUTPUT_TYPES:
        raise HostStartupError(
            f"{where}: {binding.direction} binding type '{binding.type}' is not "
            f"supported by devtools.funchost (supported outputs: "
            f"{', '.join(OUTPUT_TYPES)})"
        )
    if binding.type == "http" and trigger.type != "httpTrigger":
        raise HostStartupError(f"{where}: an http output needs an httpTrigger")


# --- importing -------------------------------------------------------------------------------


def install_app_package(app_root: Path) -> None:
    """Make `__app__` the package rooted at app_root, as the worker does at startup.

    Another host in this process (tests) may have installed a different root: its modules
    (`__app__.*` and top-level ones imported from its folder, like `shared`) are dropped from
    sys.modules so this app imports its own; functions already loaded keep what they imported.
    """
    root = str(app_root)
    current = sys.modules.get(APP_PACKAGE)
    if list(getattr(current, "__path__", [])) == [root]:
        return
    # Only names this app defines itself, and only as loaded from another app: never the
    # libraries or the project's own packages.
    own_names = {entry.stem for entry in app_root.iterdir() if entry.is_dir() or entry.suffix == ".py"}
    others = [other for other in _installed_roots if other != root]
    for module_name in list(sys.modules):
        top = module_name.split(".")[0]
        if top == APP_PACKAGE or (top in own_names and _module_under(sys.modules[module_name], others)):
            del sys.modules[module_name]
    _installed_roots.add(root)
    spec = importlib.machinery.ModuleSpec(APP_PACKAGE, None, is_package=True)
    spec.submodule_search_locations = [root]
    sys.modules[APP_PACKAGE] = importlib.util.module_from_spec(spec)
    importlib.invalidate_caches()


_installed_roots: set[str] = set()


def _module_under(module: Any, roots: list[str]) -> bool:
    location = getattr(module, "__file__", None)
    if not location:
        return False
    return any(Path(location).is_relative_to(root) for root in roots)


@dataclass(frozen=True)
class LoadedFunction:
    spec: FunctionSpec
    # Our own loader's import; None when Microsoft's worker loaded it (worker.py).
    main: Callable[..., Any] | None = None
    parameters: Mapping[str, inspect.Parameter] = field(default_factory=dict)
    # The trigger parameter is annotated str or bytes: the worker binds such a parameter
    # "generic", passing the message body rather than a QueueMessage.
    trigger_as_body: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def trigger(self) -> Binding:
        return self.spec.trigger

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.main)


def load(spec: FunctionSpec, app_root: Path) -> LoadedFunction:
    relative = spec.script_file.relative_to(app_root).with_suffix("")
    parts = [APP_PACKAGE, *relative.parts]
    if parts[-1] == "__init__":
        parts.pop()
    try:
        module = importlib.import_module(".".join(parts))
    except Exception as exc:
        raise HostStartupError(
            f"Function '{spec.name}': importing {spec.script_file} failed:\n{traceback.format_exc()}"
        ) from exc
    main = getattr(module, spec.entry_point, None)
    if not callable(main):
        raise HostStartupError(f"Function '{spec.name}': {spec.entry_point}() is not defined in {spec.script_file}")
    parameters = dict(inspect.signature(main).parameters)
    _check_parameters(spec, parameters)
    _check_annotations(spec, main)
    return LoadedFunction(spec, main, parameters, _annotation(main, spec.trigger.name) in (str, bytes))


def _annotation(main: Callable[..., Any], name: str) -> Any:
    try:
        return typing.get_type_hints(main).get(name)
    except Exception:  # unresolvable string annotations
        return None


def _check_parameters(spec: FunctionSpec, parameters: Mapping[str, inspect.Parameter]) -> None:
    # The worker refuses a mismatch in either direction; so do we, with its wording.
    bound = {spec.trigger.name, *(b.name for b in spec.outputs if b.name != "$return")}
    declared = set(parameters) - {"context"}
    if declared - bound:
        raise HostStartupError(
            f"Function '{spec.name}': the following parameters are declared in "
            f"Python but not in function.json: {sorted(declared - bound)}"
        )
    if bound - declared:
        raise HostStartupError(
            f"Function '{spec.name}': the following parameters are declared in "
            f"function.json but not in Python: {sorted(bound - declared)}"
        )


def _package_dir(name: str) -> list[str]:
    spec = importlib.util.find_spec(name)
    return list(spec.submodule_search_locations or []) if spec else []


# Frames the traceback of a function's exception starts with before the function's own: ours,
# asyncio's and, in worker mode, Microsoft's worker library's.
_HOST_CODE = (
    str(Path(__file__).parent),
    str(Path(asyncio.__file__).parent),
    *_package_dir("azure_functions_runtime_v1"),
)


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the function's own frames on, without the host's and asyncio's."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_HOST_CODE):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__)).rstrip()


def _check_annotations(spec: FunctionSpec, main: Callable[..., Any]) -> None:
    """Refuse the annotations the worker refuses (it asks azure.functions' converters), so an
    app that loads here also loads under `func start`."""
    try:
        hints = typing.get_type_hints(main)
    except Exception:  # unresolvable string annotations: the worker would not check them either
        return
    registry = func.get_binding_registry()
    problem = (
        f'Function \'{spec.name}\': type of %s binding in function.json "%s" does not match its Python annotation "%s"'
    )
    trigger = spec.trigger
    # str and bytes pass for any binding: the worker binds them "generic" (the raw data).
    if trigger.name in hints and isinstance(hints[trigger.name], type) and hints[trigger.name] not in (str, bytes):
        if not registry.get(trigger.type).check_input_type_annotation(hints[trigger.name]):
            raise HostStartupError(problem % (trigger.name, trigger.type, hints[trigger.name].__name__))
    for binding in spec.outputs:
        key = "return" if binding.name == "$return" else binding.name
        if key not in hints:
            continue
        annotation = hints[key]
        if key != "return":
            origin = typing.get_origin(annotation) or annotation
            if not (isinstance(origin, type) and issubclass(origin, func_abc.Out)):
                raise HostStartupError(
                    f"Function '{spec.name}': binding {binding.name} is declared "
                    'to have the "out" direction, but its annotation in Python '
                    "is not a subclass of azure.functions.Out"
                )
            arguments = typing.get_args(annotation)
            if not arguments:
                continue
            annotation = arguments[0]
        if not registry.get(binding.type).check_output_type_annotation(annotation):
            raise HostStartupError(problem % (binding.name, binding.type, getattr(annotation, "__name__", annotation)))


# --- invoking --------------------------------------------------------------------------------

T = TypeVar("T")


class Out(func.Out[T], Generic[T]):
    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]  # unset reads as None, as in the worker


class _TraceContext(func_abc.TraceContext):
    trace_state = ""
    trace_parent = ""
    attributes: ClassVar[dict[str, str]] = {}


class _RetryContext(func_abc.RetryContext):
    retry_count = 0
    max_retry_count = 0
    exception = None  # type: ignore[assignment]


@dataclass
class InvocationContext(func.Context):
    _invocation_id: str
    _function_name: str
    _function_directory: str
    _thread_local: threading.local = field(default_factory=threading.local)

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]
        return self._thread_local

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> func_abc.RetryContext:
        return _RetryContext()


class InvocationFailed(Exception):
    """The function (or one of its outputs) failed; already logged with its traceback."""


# Turns what the function produced for one output binding into what the trigger needs
# (an aiohttp response for http) or sends it (queue). Raising fails the invocation.
OutputHandler = Callable[[LoadedFunction, Binding, Any], Awaitable[Any]]


class Invoker:
    def __init__(
        self, executor: Executor, output_handlers: Mapping[str, OutputHandler], timeout: timedelta | None
    ) -> None:
        self._executor = executor
        self._output_handlers = output_handlers
        self._timeout = timeout.total_seconds() if timeout else None

    async def invoke(self, function: LoadedFunction, trigger_value: Any, reason: str) -> dict[str, Any]:
        """Run one invocation with the host's Executing/Executed log lines.

        Returns each output binding's handled value by name; raises InvocationFailed.
        """
        invocation_id = str(uuid.uuid4())
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation_id)
        started = time.monotonic()

        def executed(outcome: str) -> str:
            duration = round((time.monotonic() - started) * 1000)
            return f"Executed 'Functions.{function.name}' ({outcome}, Id={invocation_id}, Duration={duration}ms)"

        try:
            results = await asyncio.wait_for(self._run(function, trigger_value, invocation_id), self._timeout)
        except asyncio.CancelledError:
            log.warning("%s: cancelled", executed("Failed"))
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                log.error(
                    "%s\nTimeout value of %ss exceeded by function 'Functions.%s' (host.json functionTimeout)",
                    executed("Failed"),
                    self._timeout,
                    function.name,
                )
            else:
                log.error(
                    "%s\nException while executing function: Functions.%s\n%s",
                    executed("Failed"),
                    function.name,
                    getattr(exc, "stack_trace", None) or _user_traceback(exc),
                )
            raise InvocationFailed(f"Functions.{function.name} failed: {exc!r}") from exc
        log.info(executed("Succeeded"))
        return results

    async def _run(self, function: LoadedFunction, trigger_value: Any, invocation_id: str) -> dict[str, Any]:
        values = await self.call(function, trigger_value, invocation_id)
        results: dict[str, Any] = {}
        # Outputs are flushed only after the function succeeded, as the host does.
        for binding in function.spec.outputs:
            results[binding.name] = await self._output_handlers[binding.type](function, binding, values[binding.name])
        return results

    async def call(self, function: LoadedFunction, trigger_value: Any, invocation_id: str) -> dict[str, Any]:
        """Bind and run the function (our own loader); each output's value by name, $return too."""
        assert function.main is not None
        outs: dict[str, Out[Any]] = {b.name: Out() for b in function.spec.outputs if b.name != "$return"}
        kwargs = self._arguments(function, trigger_value, outs, invocation_id)
        if function.is_async:
            returned = await function.main(**kwargs)
        else:
            # Like the worker: sync functions run on a thread pool, keeping the loop free.
            call = functools.partial(contextvars.copy_context().run, function.main, **kwargs)
            returned = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        _check_returned(function, returned)
        return {b.name: returned if b.name == "$return" else outs[b.name].get() for b in function.spec.outputs}

    @staticmethod
    def _arguments(
        function: LoadedFunction, trigger_value: Any, outs: Mapping[str, Out[Any]], invocation_id: str
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(outs)
        trigger = function.trigger.name
        kwargs[trigger] = trigger_value
        if function.trigger_as_body and isinstance(trigger_value, func.QueueMessage):
            body = trigger_value.get_body()
            try:  # the host sends a queue message as a string where it is text
                kwargs[trigger] = body.decode("utf-8")
            except UnicodeDecodeError:
                kwargs[trigger] = body
        if "context" in function.parameters:
            kwargs["context"] = InvocationContext(invocation_id, function.name, str(function.spec.directory))
        return kwargs


def _check_returned(function: LoadedFunction, returned: Any) -> None:
    """Fail the invocation where the worker does: a value with nowhere to go, or no HTTP answer."""
    returns = next((b for b in function.spec.outputs if b.name == "$return"), None)
    if returns is None and returned is not None:
        raise RuntimeError(f"function {function.name!r} without a $return binding returned a non-None value")
    if returns is not None and returns.type == "http" and returned is None:
        raise TypeError(f"function {function.name!r} returned None for its http $return binding: no response to send")


def describe(function: LoadedFunction) -> str:
    """The one-line summary func start prints per function (without the http URL)."""
    trigger = function.trigger
    if trigger.type == "timerTrigger":
        return f"timerTrigger (schedule '{trigger.get('schedule')}')"
    if trigger.type == "queueTrigger":
        connection = trigger.get("connection") or "AzureWebJobsStorage"
        return f"queueTrigger (queue '{trigger.get('queueName')}', connection {connection})"
    return trigger.type
