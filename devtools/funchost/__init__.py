"""A small local Azure Functions host for Python v1-model apps (function.json folders).

Azure Functions Core Tools cannot be installed here, so this drives the app the way the real
host does: HTTP, timer and queue triggers; http and queue outputs; the admin API. The app
itself stays unchanged and runs under `func start` too.

    python -m devtools.funchost [--app-root DIR] [--port 7071] [--host 127.0.0.1] [--instances K]
"""

from .config import HostConfig, HostStartupError, QueueOptions, load_host_config, load_settings
from .host import FunctionHost
from .ncrontab import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule, parse_timespan

__all__ = [
    "CronSchedule",
    "FunctionHost",
    "HostConfig",
    "HostStartupError",
    "IntervalSchedule",
    "QueueOptions",
    "ScheduleError",
    "load_host_config",
    "load_settings",
    "parse_schedule",
    "parse_timespan",
]
