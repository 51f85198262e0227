"""App settings (local.settings.json) and host.json, read the way Core Tools and the host do."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from .ncrontab import ScheduleError, parse_timespan


class HostStartupError(RuntimeError):
    """Configuration the real host would also refuse; the message names what to fix."""


@dataclass(frozen=True)
class AppSettings:
    values: Mapping[str, str]  # effective: explicit > environment > settings file
    file_values: Mapping[str, str]  # what the settings file declares, to export to the env
    explicit: Mapping[str, str]
    local_http_port: int | None
    source: Path | None

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def load_settings(
    app_root: Path, explicit: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> AppSettings:
    """Values from local.settings.json (else its .example); a variable already set in the
    environment wins over the file, as with Core Tools; `explicit` (tests, tools) wins over both."""
    environ = os.environ if environ is None else environ
    source = next(
        (
            path
            for path in (app_root / "local.settings.json", app_root / "local.settings.json.example")
            if path.is_file()
        ),
        None,
    )
    document: dict[str, Any] = {}
    if source is not None:
        try:
            document = json.loads(source.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise HostStartupError(f"{source} is not valid JSON: {exc}") from exc
        if document.get("IsEncrypted"):
            raise HostStartupError(f"{source} is encrypted; decrypt it (func settings decrypt)")
    file_values = {key: _as_setting(value) for key, value in (document.get("Values") or {}).items()}
    explicit = dict(explicit or {})
    values = {**file_values, **environ, **explicit}
    port = (document.get("Host") or {}).get("LocalHttpPort")
    return AppSettings(values, file_values, explicit, int(port) if port else None, source)


def _as_setting(value: Any) -> str:
    # Environment variables are strings; JSON true/false become the strings the host would see.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


class EnvironmentPatch:
    """Exports settings to os.environ (function code reads them there) and undoes it at stop,
    leaving alone anything someone else changed meanwhile."""

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._saved: dict[str, tuple[str | None, str]] = {}

    def apply(self, settings: AppSettings) -> None:
        for name in {*settings.file_values, *settings.explicit}:
            value = settings.values[name]
            previous = self._environ.get(name)
            if previous != value:
                self._saved[name] = (previous, value)
                self._environ[name] = value

    def restore(self) -> None:
        for name, (previous, ours) in self._saved.items():
            if self._environ.get(name) != ours:
                continue
            if previous is None:
                self._environ.pop(name, None)
            else:
                self._environ[name] = previous
        self._saved.clear()


@dataclass(frozen=True)
class QueueOptions:
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)  # delay before a failed message is retried
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: timedelta = timedelta(minutes=1)
    message_encoding: Literal["base64", "none"] = "base64"


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: timedelta | None = None
    functions: tuple[str, ...] | None = None  # host.json "functions": load only these


def load_host_config(app_root: Path) -> HostConfig:
    path = app_root / "host.json"
    if not path.is_file():
        raise HostStartupError(f"{path} is missing: not a Functions app root")
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise HostStartupError(f"{path} is not valid JSON: {exc}") from exc
    if str(document.get("version", "")) != "2.0":
        raise HostStartupError(f'{path}: only host.json version "2.0" is supported')
    try:
        return _host_config(document)
    except (ScheduleError, ValueError, TypeError) as exc:
        raise HostStartupError(f"{path}: {exc}") from exc


def _host_config(document: Mapping[str, Any]) -> HostConfig:
    extensions = document.get("extensions") or {}
    http = extensions.get("http") or {}
    timeout = document.get("functionTimeout")
    functions = document.get("functions")
    return HostConfig(
        route_prefix=str(http.get("routePrefix", "api")).strip("/"),
        queues=_queue_options(extensions.get("queues") or {}),
        # "-1" is how host.json spells "no limit".
        function_timeout=parse_timespan(timeout) if timeout and timeout != "-1" else None,
        functions=tuple(functions) if functions is not None else None,
    )


def _queue_options(section: Mapping[str, Any]) -> QueueOptions:
    defaults = QueueOptions()
    batch_size = int(section.get("batchSize", defaults.batch_size))
    if not 1 <= batch_size <= 32:  # the Queue service hands out at most 32 per request
        raise ValueError(f"extensions.queues.batchSize {batch_size} must be within 1-32")
    encoding = str(section.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise ValueError(f"extensions.queues.messageEncoding {encoding!r} must be base64 or none")
    max_polling = _timespan(section, "maxPollingInterval", defaults.max_polling_interval)
    if max_polling < timedelta(milliseconds=100):
        raise ValueError("extensions.queues.maxPollingInterval must be at least 00:00:00.1")
    max_dequeue = int(section.get("maxDequeueCount", defaults.max_dequeue_count))
    if max_dequeue < 1:
        raise ValueError("extensions.queues.maxDequeueCount must be at least 1")
    return QueueOptions(
        max_dequeue_count=max_dequeue,
        visibility_timeout=_timespan(section, "visibilityTimeout", defaults.visibility_timeout),
        batch_size=batch_size,
        new_batch_threshold=int(section.get("newBatchThreshold", batch_size // 2)),
        max_polling_interval=max_polling,
        message_encoding=encoding,  # type: ignore[arg-type]  # checked just above
    )


def _timespan(section: Mapping[str, Any], key: str, default: timedelta) -> timedelta:
    text = section.get(key)
    return parse_timespan(str(text)) if text is not None else default


_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


def resolve_setting_references(text: str, settings: AppSettings) -> str:
    """Replace each %Name% with that app setting, failing like the host on a missing one."""

    def substitute(match: re.Match[str]) -> str:
        value = settings.get(match[1])
        if value is None:
            raise HostStartupError(
                f"'%{match[1]}%' does not resolve to a value (no app setting "
                f"named {match[1]!r} in local.settings.json or environment)"
            )
        return value

    return _SETTING_REFERENCE.sub(substitute, text)
