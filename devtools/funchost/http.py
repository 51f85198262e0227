"""The HTTP side of the host: httpTrigger routes with key auth, and the admin API."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import azure.functions as func
from aiohttp import web
from azure.functions import _abc as func_abc
from multidict import CIMultiDict

from .functions import MANUAL_REASON, Binding, InvocationFailed, LoadedFunction
from .routing import RouteTemplate, compile_route

log = logging.getLogger("funchost")

# The host computes these itself from the body it sends.
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True)
class HttpRoute:
    function: LoadedFunction
    template: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    auth_level: str

    @property
    def display_methods(self) -> str:
        return ",".join(sorted(self.methods)) if self.methods else "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"


def http_route(function: LoadedFunction, route_prefix: str) -> HttpRoute:
    trigger = function.trigger
    route = str(trigger.get("route") or function.name).strip("/")
    template = compile_route(f"{route_prefix}/{route}" if route_prefix else route)
    methods = trigger.get("methods")
    return HttpRoute(
        function,
        template,
        frozenset(m.upper() for m in methods) if methods else None,
        str(trigger.get("authLevel") or "function").lower(),
    )


def sort_routes(routes: Sequence[HttpRoute]) -> list[HttpRoute]:
    # ASP.NET precedence: literal segments beat parameters, longer templates break ties.
    return sorted(routes, key=lambda r: (r.template.precedence, -len(r.template.precedence)))


async def http_output(function: LoadedFunction, binding: Binding, value: Any) -> web.Response:
    """Output handler for `http` bindings; the worker accepts HttpResponse or str only."""
    if value is None:
        return web.Response(status=204)
    if isinstance(value, str):
        return web.Response(text=value, content_type="text/plain", charset="utf-8")
    if not isinstance(value, func_abc.HttpResponse):
        raise TypeError(
            f"http output '{binding.name}' of Functions.{function.name} must be "
            f"azure.functions.HttpResponse or str, not {type(value).__name__}"
        )
    headers = CIMultiDict((k, v) for k, v in value.headers.items() if k.lower() not in _HOP_HEADERS)
    if "Content-Type" not in headers:
        mimetype = value.mimetype
        headers["Content-Type"] = f"{mimetype}; charset={value.charset}" if mimetype.startswith("text/") else mimetype
    return web.Response(status=value.status_code, headers=headers, body=value.get_body())


class HostControl(Protocol):
    """What the admin API needs from the host."""

    @property
    def state(self) -> str: ...

    @property
    def functions(self) -> Sequence[LoadedFunction]: ...

    def find_function(self, name: str) -> LoadedFunction | None: ...

    def run_in_background(self, function: LoadedFunction, input_text: str) -> None: ...


Invoke = Callable[[LoadedFunction, Any, str], Awaitable[dict[str, Any]]]


class HttpGateway:
    def __init__(
        self, routes: Sequence[HttpRoute], invoke: Invoke, host_key: str, control: HostControl, admin_needs_key: bool
    ) -> None:
        self._routes = sort_routes(routes)
        self._invoke = invoke
        self._host_key = host_key.encode("utf-8")
        self._control = control
        self._admin_needs_key = admin_needs_key

    def application(self) -> web.Application:
        # Functions accept bodies up to 100 MB; aiohttp's default is 1 MB.
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_get("/admin/host/status", self._status)
        app.router.add_get("/admin/functions", self._list_functions)
        app.router.add_post("/admin/functions/{name}", self._run_function)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def _authorized(self, request: web.Request) -> bool:
        supplied = request.query.get("code") or request.headers.get("x-functions-key")
        # Constant time, so response timing does not reveal how much of a guess was right.
        return supplied is not None and hmac.compare_digest(supplied.encode("utf-8"), self._host_key)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.rel_url.raw_path in ("", "/"):
            return web.Response(text="Your Functions host (devtools.funchost) is running.\n")
        if self._control.state != "Running":
            return web.Response(status=503, text="The host is stopping.\n")
        for route in self._routes:
            values = route.template.match(request.rel_url.raw_path)
            if values is None or (route.methods and request.method not in route.methods):
                continue
            if route.auth_level != "anonymous" and not self._authorized(request):
                return web.Response(
                    status=401, text="Unauthorized: send the host key as ?code= or the x-functions-key header.\n"
                )
            return await self._call(route, request, values)
        return web.Response(status=404, text="Not Found\n")

    async def _call(self, route: HttpRoute, request: web.Request, route_values: dict[str, str]) -> web.StreamResponse:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()  # repeated headers arrive joined, as the host passes them
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        params = {key: request.query.getone(key) for key in request.query.keys()}
        req = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=headers,
            params=params,
            route_params=route_values,
            body=await request.read(),
        )
        try:
            outputs = await self._invoke(route.function, req, MANUAL_REASON)
        except InvocationFailed:
            return web.Response(status=500, text="Internal Server Error\n")
        response = next((outputs[b.name] for b in route.function.spec.outputs if b.type == "http"), None)
        return response if response is not None else web.Response(status=204)

    def _admin_denied(self, request: web.Request) -> web.Response | None:
        if self._admin_needs_key and not self._authorized(request):
            return web.Response(status=401, text="Unauthorized: the admin API needs the host key.\n")
        return None

    async def _status(self, request: web.Request) -> web.Response:
        return self._admin_denied(request) or web.json_response({"state": self._control.state})

    async def _list_functions(self, request: web.Request) -> web.Response:
        denied = self._admin_denied(request)
        if denied:
            return denied
        return web.json_response([{"name": f.name, "trigger": f.trigger.type} for f in self._control.functions])

    async def _run_function(self, request: web.Request) -> web.Response:
        """POST /admin/functions/{name} {"input": "..."}: run a non-HTTP function now."""
        denied = self._admin_denied(request)
        if denied:
            return denied
        if self._control.state != "Running":
            return web.Response(status=503, text="The host is stopping.\n")
        function = self._control.find_function(request.match_info["name"])
        if function is None:
            return web.Response(status=404, text="Function not found.\n")
        if function.trigger.type == "httpTrigger":
            return web.Response(
                status=400, text="HTTP-triggered functions run through their route, not the admin API.\n"
            )
        raw = await request.read()
        try:
            document = json.loads(raw) if raw.strip() else {}
            input_text = document.get("input") or ""
        except (ValueError, AttributeError):
            return web.Response(status=400, text='Expected a JSON body like {"input": "..."}.\n')
        if not isinstance(input_text, str):
            input_text = json.dumps(input_text)
        self._control.run_in_background(function, input_text)
        return web.Response(status=202)
