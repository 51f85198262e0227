"""FunctionHost: loads a v1-model Python Functions app and serves it like the Functions host."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import sys
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from azure.core.exceptions import AzureError
from azure.functions.queue import QueueMessage

from .config import AppSettings, EnvironmentPatch, HostConfig, HostStartupError, load_host_config, load_settings
from .functions import MANUAL_REASON, Invoker, LoadedFunction, describe, discover, install_app_package, load
from .http import HttpGateway, HttpRoute, http_output, http_route
from .ncrontab import ScheduleError, parse_schedule
from .queues import PROCESSING_VISIBILITY, QueueConnections, QueuePoller, connection_string, queue_name
from .timers import TimerRunner
from .worker import WORKER_SETTING, MicrosoftWorker, WorkerInvoker, WorkerMode, worker_mode

log = logging.getLogger("funchost")

DEFAULT_PORT = 7071
HOST_KEY_SETTING = "FUNCTIONS_HOST_KEY"
PROCESSING_VISIBILITY_SETTING = "FUNCHOST_PROCESSING_VISIBILITY_SECONDS"


class FunctionHost:
    """Programmatic host: `await host.start(port)`, use `host.url`, then `await host.stop()`.

    `settings` override both local.settings.json and the environment (handy in tests); they,
    and the settings file's Values, are exported to os.environ while the host runs.
    """

    def __init__(
        self,
        app_root: Path,
        settings: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        drain_timeout: float = 30.0,
        run_timers: bool = True,
    ) -> None:
        """`run_timers` False: timers fire only through the admin API (a scaled-out sibling: the
        real host's singleton lock lets one instance run each occurrence)."""
        self.app_root = Path(app_root).resolve()
        self.run_timers = run_timers
        self.bind_host = host
        self.drain_timeout = drain_timeout
        self.host_key = ""
        self.port = 0
        self._explicit = dict(settings or {})
        self._state = "Initialized"
        self.worker_mode: WorkerMode | None = None  # chosen at start, from the settings
        self._functions: list[LoadedFunction] = []
        self._timers: dict[str, TimerRunner] = {}
        self._pollers: list[QueuePoller] = []
        self._routes: list[HttpRoute] = []
        self._env = EnvironmentPatch()
        self._added_sys_path = False
        self._stopping = asyncio.Event()
        self._loops: set[asyncio.Task[None]] = set()
        self._invocations: set[asyncio.Task[Any]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._connections: QueueConnections | None = None
        self._invoker: Invoker | None = None
        self._runner: web.AppRunner | None = None

    # --- public surface ------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def functions(self) -> Sequence[LoadedFunction]:
        return tuple(self._functions)

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.bind_host in ("", "0.0.0.0", "::") else self.bind_host
        if ":" in shown:  # an IPv6 literal
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}"

    async def __aenter__(self) -> FunctionHost:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def find_function(self, name: str) -> LoadedFunction | None:
        # Function names are case-insensitive in the host.
        return next((f for f in self._functions if f.name.lower() == name.lower()), None)

    def run_in_background(self, function: LoadedFunction, input_text: str) -> None:
        self.run_function(function.name, input_text)

    def run_function(self, name: str, input_text: str = "") -> asyncio.Task[Any]:
        """Run a non-HTTP function now, as the admin API does; await the task to wait for it."""
        function = self.find_function(name)
        if function is None or self._invoker is None:
            raise KeyError(f"no function named {name!r} is loaded")
        if function.trigger.type == "httpTrigger":
            raise ValueError(f"{function.name} is HTTP-triggered: call its route instead")
        if function.name in self._timers:
            return self._timers[function.name].fire(past_due=False)
        # A queue function gets the input as the body of a message that exists nowhere else,
        # so there is nothing to delete, retry or poison afterwards.
        now = datetime.now(UTC)
        message = QueueMessage(
            id=str(uuid.uuid4()),
            body=input_text.encode("utf-8"),
            dequeue_count=1,
            insertion_time=now,
            time_next_visible=now,
        )
        return self.spawn(self._invoke_logged(function, message, MANUAL_REASON))

    async def start(self, port: int | None = None) -> None:
        """Load the app and start serving; port None: Host.LocalHttpPort or 7071; 0: any free."""
        if self._state != "Initialized":
            raise RuntimeError("a FunctionHost starts once")
        self._state = "Starting"
        try:
            await self._start(port)
        except BaseException:
            await self._shutdown()
            raise

    async def stop(self) -> None:
        """Stop timers and pollers, wait (bounded) for in-flight invocations, close clients."""
        if self._state in ("Initialized", "Stopping", "Stopped"):
            return
        await self._shutdown()

    def spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        """Track background invocations so stop() can wait for them."""
        task = asyncio.ensure_future(work)
        self._invocations.add(task)
        task.add_done_callback(self._invocation_done)
        return task

    # --- startup --------------------------------------------------------------------------------

    async def _start(self, port: int | None) -> None:
        settings = load_settings(self.app_root, self._explicit)
        config = load_host_config(self.app_root)
        zone = _time_zone(settings)
        self.worker_mode = worker_mode(settings.get(WORKER_SETTING))
        self._env.apply(settings)
        threads = settings.get("PYTHON_THREADPOOL_THREAD_COUNT")
        # Unnamed, as the worker's own pool: sync functions see the same thread names.
        self._executor = ThreadPoolExecutor(int(threads) if threads else None)
        self._connections = QueueConnections(settings, config.queues.message_encoding)
        outputs = {"http": http_output, "queue": self._connections.send_output}
        if self.worker_mode is WorkerMode.MICROSOFT:
            worker = MicrosoftWorker(self.app_root)
            self._functions = await self._load_into_worker(worker, config, settings)
            self._invoker = WorkerInvoker(worker, self._executor, outputs, config.function_timeout)
        else:
            self._functions = self._load_functions(config, settings)
            self._invoker = Invoker(self._executor, outputs, config.function_timeout)
        self._build_triggers(config, settings, zone)
        await self._prepare_queues()
        self.host_key = settings.get(HOST_KEY_SETTING) or ""
        if not self.host_key:
            self.host_key = secrets.token_urlsafe(32)
            log.info("%s is not set; the host key for this run is: %s", HOST_KEY_SETTING, self.host_key)
        await self._serve_http(port if port is not None else settings.local_http_port or DEFAULT_PORT)
        self._state = "Running"
        log.info(self._banner(zone))
        for timer in self._timers.values() if self.run_timers else ():
            self._loop(timer.run(self._stopping))
        for poller in self._pollers:
            self._loop(poller.run(self._stopping))

    def _load_functions(self, config: HostConfig, settings: AppSettings) -> list[LoadedFunction]:
        # Imported on the loop's thread, as the worker does: module code that looks for the
        # running event loop at import time behaves the same here and in Azure.
        specs = discover(self.app_root, config, settings)
        self._add_app_root_to_path()
        install_app_package(self.app_root)
        loaded: list[LoadedFunction] = []
        problems: list[str] = []
        for spec in specs:
            try:
                loaded.append(load(spec, self.app_root))
            except HostStartupError as exc:
                problems.append(str(exc))
        if problems:
            raise HostStartupError("\n".join(problems))
        return loaded

    async def _load_into_worker(
        self, worker: MicrosoftWorker, config: HostConfig, settings: AppSettings
    ) -> list[LoadedFunction]:
        """WorkerInitRequest, then one FunctionLoadRequest per function.json, as the host sends."""
        specs = discover(self.app_root, config, settings)
        self._add_app_root_to_path()
        await worker.start()
        loaded: list[LoadedFunction] = []
        problems: list[str] = []
        for spec in specs:
            try:
                loaded.append(await worker.load(spec))
            except HostStartupError as exc:
                problems.append(str(exc))
        if problems:
            raise HostStartupError("\n".join(problems))
        return loaded

    def _add_app_root_to_path(self) -> None:
        if str(self.app_root) not in sys.path:
            # The worker puts the app root on sys.path, so `import shared_module` works.
            sys.path.insert(0, str(self.app_root))
            self._added_sys_path = True

    def _build_triggers(self, config: HostConfig, settings: AppSettings, zone: tzinfo) -> None:
        assert self._connections is not None and self._invoker is not None
        problems: list[str] = []
        # Hidden while it runs, and no shorter than the longest run functionTimeout allows.
        visibility = PROCESSING_VISIBILITY
        if config.function_timeout:
            visibility = max(visibility, config.function_timeout + timedelta(minutes=1))
        if settings.get(PROCESSING_VISIBILITY_SETTING):
            # Dev-only: lets a test see a killed worker's messages come back in seconds, not 10 min.
            visibility = timedelta(seconds=float(settings.get(PROCESSING_VISIBILITY_SETTING) or 0))
        for function in self._functions:
            trigger = function.trigger
            try:
                for output in function.spec.outputs:
                    if output.type == "queue":  # fail at start, not at the first send
                        queue_name(output, function.name)
                        connection_string(output, function.name, settings)
                if trigger.type == "httpTrigger":
                    self._routes.append(http_route(function, config.route_prefix))
                elif trigger.type == "timerTrigger":
                    schedule = parse_schedule(str(trigger.get("schedule") or ""))
                    self._timers[function.name] = TimerRunner(
                        function, schedule, zone, self._invoker.invoke, self.spawn
                    )
                else:
                    self._pollers.append(
                        QueuePoller(
                            function,
                            self._connections,
                            connection_string(trigger, function.name, settings),
                            config.queues,
                            visibility,
                            self._invoker.invoke,
                            self.spawn,
                        )
                    )
            except (HostStartupError, ScheduleError, ValueError) as exc:
                text = str(exc)
                problems.append(text if text.startswith("Function '") else f"Function '{function.name}': {text}")
        if problems:
            raise HostStartupError("\n".join(problems))

    async def _prepare_queues(self) -> None:
        for poller in self._pollers:
            try:
                await poller.prepare()
            except AzureError as exc:
                raise HostStartupError(
                    f"Function '{poller.function.name}': cannot create queue "
                    f"'{poller.queue_name}' (is Azurite running?): {exc}"
                ) from exc

    async def _serve_http(self, port: int) -> None:
        # Core Tools leaves the admin API open locally; off loopback it needs the host key.
        gateway = HttpGateway(
            self._routes, self._invoke_http, self.host_key, self, admin_needs_key=not _is_loopback(self.bind_host)
        )
        self._runner = web.AppRunner(gateway.application(), access_log=None, shutdown_timeout=self.drain_timeout)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.bind_host, port).start()
        except OSError as exc:
            raise HostStartupError(
                f"Cannot listen on {self.bind_host}:{port}: {exc.strerror} (another host running? pass --port)"
            ) from exc
        self.port = self._runner.addresses[0][1]

    def _banner(self, zone: tzinfo) -> str:
        lines = ["Functions:", ""]
        for function in self._functions:
            route = next((r for r in self._routes if r.function is function), None)
            if route is not None:
                lines.append(f"        {function.name}: [{route.display_methods}] {self.url}/{route.template.template}")
            else:
                lines.append(f"        {function.name}: {describe(function)}")
            lines.append("")
        if self._timers:
            lines.append(f"Timer schedules are read in time zone {zone}.")
        worker = "Microsoft's azure-functions-runtime-v1" if self.worker_mode is WorkerMode.MICROSOFT else "funchost's"
        lines.append(f"Functions loaded and invoked by {worker} worker code on Python {sys.version.split()[0]}.")
        lines.append(f"Host started on {self.url} (app {self.app_root}).")
        return "\n".join(lines)

    # --- running --------------------------------------------------------------------------------

    def _loop(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._loops.add(task)
        task.add_done_callback(self._loop_done)

    def _loop_done(self, task: asyncio.Task[None]) -> None:
        self._loops.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("A trigger listener crashed; its function no longer runs.", exc_info=task.exception())

    def _invocation_done(self, task: asyncio.Task[Any]) -> None:
        self._invocations.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Background invocation failed unexpectedly.", exc_info=task.exception())

    async def _invoke_http(self, function: LoadedFunction, request: Any, reason: str) -> dict[str, Any]:
        assert self._invoker is not None
        return await self._invoker.invoke(function, request, reason)

    async def _invoke_logged(self, function: LoadedFunction, trigger: Any, reason: str) -> None:
        assert self._invoker is not None
        try:
            await self._invoker.invoke(function, trigger, reason)
        except Exception:  # logged by the invoker; an admin run has nothing to retry
            pass

    # --- shutdown -------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        was_running = self._state == "Running"
        self._state = "Stopping"
        self._stopping.set()
        await _finish(self._loops, timeout=5, what="trigger listener(s)")
        if self._invocations:
            log.info("Waiting for %d in-flight invocation(s) to finish...", len(self._invocations))
        await _finish(self._invocations, timeout=self.drain_timeout, what="invocation(s)")
        if self._runner is not None:
            await self._runner.cleanup()
        if self._connections is not None:
            await self._connections.close()
        if self._executor is not None:
            # Threads of timed-out sync functions cannot be killed; do not wait for them.
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._env.restore()
        if self._added_sys_path and str(self.app_root) in sys.path:
            sys.path.remove(str(self.app_root))
        self._state = "Stopped"
        if was_running:
            log.info("Host stopped.")


async def _finish(tasks: set[asyncio.Task[Any]], timeout: float, what: str) -> None:
    """Let tasks end on their own within timeout, then cancel the rest."""
    if not tasks:
        return
    _, pending = await asyncio.wait(set(tasks), timeout=timeout)
    if pending:
        log.warning("Cancelling %d %s still running after %ss.", len(pending), what, timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a host name: assume it is reachable from elsewhere
        return False


def _time_zone(settings: AppSettings) -> tzinfo:
    name = settings.get("WEBSITE_TIME_ZONE")
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HostStartupError(
            f"WEBSITE_TIME_ZONE {name!r} is not an IANA time zone name (as Linux plans use, e.g. Europe/Berlin)"
        ) from exc
