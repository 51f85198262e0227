"""The Connector stub's server: an aiohttp app on loopback that speaks the Bot Connector REST
API v3, records every request it answers, and misbehaves on request (scripted failures, blocked
conversations, latency, rate limits). See the package docstring for how it is used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import itertools
import json
import math
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import EllipsisType, TracebackType
from typing import Any, Final, TextIO
from urllib.parse import unquote

from aiohttp import web

from .activities import Conversations, Shown
from .teams import Reply, TeamsDirectory
from .teams_limits import TEAMS_GLOBAL, TEAMS_PER_CONVERSATION, RateLimits, Window
from .wire import describe_activity, error_body, error_code_for

# Route names, as recorded in ReceivedRequest.route.
SEND: Final = "send"  # POST /v3/conversations/{id}/activities
REPLY: Final = "reply"  # POST /v3/conversations/{id}/activities/{activityId}
UPDATE: Final = "update"  # PUT  /v3/conversations/{id}/activities/{activityId}
DELETE: Final = "delete"  # DELETE /v3/conversations/{id}/activities/{activityId}
CREATE: Final = "create"  # POST /v3/conversations
MEMBERS: Final = "members"  # GET  /v3/conversations/{id}/members
PAGED_MEMBERS: Final = "pagedmembers"  # GET /v3/conversations/{id}/pagedmembers (teams.py)
UNKNOWN: Final = "unknown"

_POSTS_ACTIVITY: Final = frozenset({SEND, REPLY})
_CHANGES_ACTIVITY: Final = frozenset({UPDATE, DELETE})
_NEEDS_JSON_BODY: Final = frozenset({SEND, REPLY, UPDATE, CREATE})

# Activity ids look like Teams' (epoch milliseconds as a string); bots must treat them as opaque.
_ACTIVITY_ID_BASE: Final = 1_700_000_000_000


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the stub saw and answered it. Treat `body` as read-only."""

    seq: int  # 1-based arrival order since the last clear()
    received_monotonic: float  # the stub's clock (time.monotonic unless injected)
    received_wall: float  # time.time()
    method: str
    path: str  # as received, still URL-encoded
    route: str  # SEND, REPLY, UPDATE, DELETE, CREATE, MEMBERS or UNKNOWN
    conversation_id: str | None  # decoded; for CREATE, the id the stub assigned
    activity_id: str | None  # reply/update/delete target, decoded
    body: Any  # parsed JSON (the activity, or ConversationParameters for CREATE); None if absent
    authorization: str | None
    status: int
    response_id: str | None = None  # the id the stub answered with, on success
    error_code: str | None = None  # the Connector error code, when status >= 400
    retry_after: int | None = None  # Retry-After header value sent, if any
    tenant_id: str = ""  # whose per-tenant window it counted in ("": none the stub could tell)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def throttled(self) -> bool:
        return self.status == 429

    @property
    def activity(self) -> dict[str, Any] | None:
        """The activity this request carried, if any (CREATE may carry an initial one)."""
        if self.route == CREATE:
            inner = self.body.get("activity") if isinstance(self.body, dict) else None
            return inner if isinstance(inner, dict) else None
        if self.route in (SEND, REPLY, UPDATE) and isinstance(self.body, dict):
            return self.body
        return None

    @property
    def delivered(self) -> bool:
        """Accepted as a new activity in the conversation (what a user would see)."""
        return self.ok and self.route in (SEND, REPLY, CREATE) and self.activity is not None

    @property
    def text(self) -> str | None:
        activity = self.activity
        return None if activity is None else activity.get("text")

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    payload: Any = None  # JSON; None means an empty body
    error_code: str | None = None
    retry_after: int | None = None
    response_id: str | None = None
    conversation_id: str | None = None  # overrides the route's (CREATE assigns one)
    retry_after_date: bool = False  # send Retry-After as an HTTP-date, not seconds


def _failure(status: int, code: str | None = None, retry_after: int | None = None) -> _Answer:
    code = code or error_code_for(status)
    return _Answer(status, error_body(code), error_code=code, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class _Incoming:
    """A parsed API request, before the stub decides how to answer it."""

    method: str
    raw_path: str
    route: str
    conversation_id: str | None
    activity_id: str | None
    body: Any
    problem: str | None  # why the body is unacceptable, if it is
    authorization: str | None
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Waiter:
    predicate: Callable[[ReceivedRequest], bool]
    needed: int
    future: asyncio.Future[list[ReceivedRequest]]
    matches: list[ReceivedRequest] = field(default_factory=list)

    def offer(self, record: ReceivedRequest) -> None:
        if self.future.done():
            return
        try:
            if self.predicate(record):
                self.matches.append(record)
        except Exception as exc:  # a broken predicate must fail the test, not the server
            self.future.set_exception(exc)
            return
        if len(self.matches) >= self.needed:
            self.future.set_result(list(self.matches))


def _match_route(method: str, parts: Sequence[str]) -> tuple[str, str | None, str | None]:
    """(route, conversation id, activity id) for a request to decoded path segments."""
    match method, parts:
        case "POST", ["v3", "conversations"]:
            return CREATE, None, None
        case "POST", ["v3", "conversations", str(conv), "activities"] if conv:
            return SEND, conv, None
        case "POST", ["v3", "conversations", str(conv), "activities", str(act)] if conv and act:
            return REPLY, conv, act
        case "PUT", ["v3", "conversations", str(conv), "activities", str(act)] if conv and act:
            return UPDATE, conv, act
        case "DELETE", ["v3", "conversations", str(conv), "activities", str(act)] if conv and act:
            return DELETE, conv, act
        case "GET", ["v3", "conversations", str(conv), "members"] if conv:
            return MEMBERS, conv, None
        case "GET", ["v3", "conversations", str(conv), "pagedmembers"] if conv:
            return PAGED_MEMBERS, conv, None
    return UNKNOWN, None, None


def _split_path(raw_path: str) -> list[str]:
    # Split before decoding: Teams ids are sent percent-encoded and may contain encoded "/".
    return [unquote(part) for part in raw_path.strip("/").split("/")] if raw_path.strip("/") else []


def _parse_body(raw: bytes, route: str) -> tuple[Any, str | None]:
    """(parsed JSON or None, why it is unacceptable or None)."""
    if route not in _NEEDS_JSON_BODY:
        return None, None
    if not raw.strip():
        return None, "The request body is empty."
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"The request body is not valid JSON: {exc}"
    if not isinstance(body, dict):
        return body, "The request body must be a JSON object."
    return body, None


class ConnectorStub:
    """A Bot Connector REST API v3 channel on loopback. See the package docstring."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        base_path: str = "/",
        console: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`base_path` lets the serviceUrl carry a path like Teams' `https://smba.../amer/`.
        `console` gets one line per request (the `make run` channel); leave it None in tests and
        benchmarks. `clock` drives receive times and rate-limit windows; inject one for exact
        window tests."""
        self.latency = latency
        self._prefix = [part for part in base_path.split("/") if part]
        self._console = console
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._ids = itertools.count(1)
        self._bearer: str | None = None
        self._blocked: dict[str, _Answer] = {}
        self._scripted: dict[str | None, deque[_Answer]] = {}
        self._refusing_changes: dict[str | None, _Answer] = {}
        self._limits = RateLimits()
        self._outage: int | None = None  # while set, every request is answered this status
        self._tenants: dict[str, str] = {}  # conversation id → tenant, as requests named it
        self._members: dict[str, list[dict[str, Any]]] = {}
        self._waiters: list[_Waiter] = []
        self.teams = TeamsDirectory()  # rosters and 1:1 chat creation (teams.py)
        self._reset_records()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind (port 0: any free port) and serve. Returns `url`."""
        if self._runner is not None:
            raise RuntimeError("ConnectorStub is already started")
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log: per-request logging would dominate the cost at thousands of requests/s.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = _bind(host, port)
        try:
            await web.SockSite(runner, sock, backlog=1024).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._host, self._port = host, sock.getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> ConnectorStub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The serviceUrl to put in activities and ConversationReferences (ends with '/')."""
        if self._runner is None:
            raise RuntimeError("ConnectorStub is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        path = "/".join(self._prefix)
        return f"http://{host}:{self._port}/{path + '/' if path else ''}"

    # ---- behaviour control -----------------------------------------------------------------

    def fail(
        self,
        conversation_id: str | None = None,
        statuses: Sequence[int] = (429, 500),
        retry_after: float | None = None,
        *,
        retry_after_as_date: bool = False,
    ) -> None:
        """Answer the next len(statuses) requests for `conversation_id` (None: any request) with
        these statuses, in order, then behave normally. Calls queue up. `retry_after` becomes a
        Retry-After header on 429 and 503 answers: whole seconds, as Teams sends it, or with
        `retry_after_as_date` the HTTP-date that many seconds on (RFC 9110 allows either, and a
        gateway in front of a channel may send one)."""
        header = None if retry_after is None else max(0, math.ceil(retry_after))
        queue = self._scripted.setdefault(conversation_id, deque())
        for status in statuses:
            answer = _failure(status, retry_after=header if status in (429, 503) else None)
            queue.append(dataclasses.replace(answer, retry_after_date=retry_after_as_date))

    def outage(self, status: int | None = 503) -> None:
        """Answer every request with `status` (a channel incident: 503, 500, 502, 504) until
        outage(None). For a channel that does not answer at all, see `refuse`."""
        self._outage = status

    async def refuse(self) -> None:
        """Close the listening socket and every open connection: requests meet a refused
        connection until `resume`. The port is kept."""
        await self.stop()

    async def resume(self) -> None:
        """Listen again on the same port, after `refuse`."""
        await self.start(self._host, self._port)

    def block(self, conversation_id: str, status: int = 403, code: str | None = None) -> None:
        """Answer every request for the conversation with `status` until unblock().

        403 defaults to code ConversationBlockedByUser (user blocked or uninstalled the bot);
        pass code="BotNotInConversationRoster" or "BotDisabledByAdmin" for Teams' other 403s.
        404 means the conversation is gone (ConversationNotFound)."""
        self._blocked[conversation_id] = _failure(status, code)

    def unblock(self, conversation_id: str) -> None:
        self._blocked.pop(conversation_id, None)

    def refuse_changes(self, conversation_id: str | None = None, status: int = 405) -> None:
        """Answer every PUT and DELETE of activities (in `conversation_id`, None: anywhere) with
        `status`, as Direct Line does (405: it cannot edit or delete sent messages), until
        allow_changes(). 501 answers as Microsoft's Teams emulator does a DELETE
        (DeleteActivityAPINotImplemented). For one-off answers (404, 429 ...) use fail()."""
        code = {405: "MethodNotAllowed", 501: "DeleteActivityAPINotImplemented"}.get(status)
        self._refusing_changes[conversation_id] = _failure(status, code)

    def allow_changes(self, conversation_id: str | None = None) -> None:
        self._refusing_changes.pop(conversation_id, None)

    def limits(
        self,
        per_conversation: Sequence[Window] | None = TEAMS_PER_CONVERSATION,
        global_: Sequence[Window] | EllipsisType | None = ...,
        *,
        per_tenant: bool = True,
    ) -> None:
        """Emulate channel rate limits over accepted requests. Defaults are Teams':
        `per_conversation` counts sends, replies, edits and deletions in each conversation;
        `global_` counts every API request (those, creates and roster reads) once per tenant,
        as Teams' "50 RPS per app per tenant" does, or for the whole app with `per_tenant`
        False. A request's tenant is the one it names (the activity's `conversation.tenantId`,
        `channelData.tenant.id`, a create's `tenantId`), else the one its conversation was
        last named with or created in, or the team's (see `tenant_of`); one that names none
        counts in the tenant "". `limits(None)` turns limiting off; `limits(None, global_=[...])`
        limits only app-wide. Windows start empty on each call."""
        if isinstance(global_, EllipsisType):
            global_ = TEAMS_GLOBAL if per_conversation is not None else None
        self._limits = RateLimits(per_conversation, global_, per_tenant=per_tenant)
        self.teams.limit(bool(per_conversation or global_))

    def set_tenant(self, conversation_id: str, tenant_id: str) -> None:
        """Which tenant a conversation belongs to, for requests that do not say (DELETE)."""
        self._tenants[conversation_id] = tenant_id

    def tenant_of(self, conversation_id: str | None) -> str:
        """The tenant the stub knows a conversation by ("" if none)."""
        if conversation_id is None:
            return ""
        return self._tenants.get(conversation_id) or self.teams.tenant_of(conversation_id) or ""

    def expect_bearer(self, token: str | None) -> None:
        """Require `Authorization: Bearer <token>` (401 otherwise); None stops checking."""
        self._bearer = token

    def set_members(self, conversation_id: str, members: Sequence[Mapping[str, Any]]) -> None:
        """What GET /v3/conversations/{id}/members answers (ChannelAccount dicts)."""
        self._members[conversation_id] = [dict(member) for member in members]

    def clear(self) -> None:
        """Forget received requests, counts and rate-limit history; keep the configuration
        (latency, limits, blocks, pending scripted failures, auth, members)."""
        self._reset_records()

    # ---- inspection ------------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedRequest]:
        """Every request (control routes excepted), in arrival order."""
        return list(self._records)

    @property
    def throttled_count(self) -> int:
        """429s answered: rate-limit hits and scripted 429s."""
        return self._throttled_count

    def delivered(self, conversation_id: str | None = None) -> list[ReceivedRequest]:
        """Requests accepted as new activities, optionally in one conversation."""
        if conversation_id is None:
            return list(self._delivered)
        return list(self._delivered_by_conversation.get(conversation_id, ()))

    def activities(
        self,
        conversation_id: str | None = None,
        type: str | None = "message",
    ) -> list[dict[str, Any]]:
        """Delivered activities (bodies), optionally of one conversation and type (None: any)."""
        found = (record.activity for record in self.delivered(conversation_id))
        return [a for a in found if a is not None and (type is None or a.get("type") == type)]

    def shown(self, conversation_id: str) -> list[Shown]:
        """What the conversation shows now: delivered activities as edits left them, deleted
        ones left out."""
        return self._shown.shown(conversation_id)

    def changes(self, route: str, conversation_id: str | None = None) -> list[ReceivedRequest]:
        """Accepted UPDATE or DELETE requests, optionally in one conversation."""
        return [
            r
            for r in self._records
            if r.route == route and r.ok and (conversation_id is None or r.conversation_id == conversation_id)
        ]

    def texts(self, conversation_id: str | None = None) -> list[str]:
        """Text of delivered messages ("" for a message without text, e.g. a card)."""
        return [a.get("text") or "" for a in self.activities(conversation_id)]

    async def wait_for(
        self,
        condition: int | Callable[[ReceivedRequest], bool] = 1,
        *,
        count: int = 1,
        conversation_id: str | None = None,
        timeout: float = 5.0,
    ) -> list[ReceivedRequest]:
        """Wait until enough matching requests have arrived (counting those already received
        since the last clear()) and return the matches.

        `wait_for(3)`: three delivered activities. `wait_for(pred, count=2)`: two requests for
        which `pred(record)` is true. `conversation_id` narrows either. On timeout raises
        AssertionError listing what was received."""
        predicate, needed, wanted = _waiting_spec(condition, count, conversation_id)
        waiter = _Waiter(predicate, needed, asyncio.get_running_loop().create_future())
        for record in self._records:
            waiter.offer(record)
        if waiter.future.done():
            return waiter.future.result()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter.future
        except TimeoutError:
            raise AssertionError(self._timeout_report(wanted, waiter, timeout)) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    # ---- request handling ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # The request target exactly as sent: yarl's view of the path re-normalises escapes.
        raw_path = request.raw_path.partition("?")[0]
        parts = _split_path(raw_path)
        if parts[:1] == ["_stub"]:
            return await self._control(request, parts[1:])
        route, conversation_id, activity_id = self._route(request.method, parts)
        body, problem = _parse_body(await request.read(), route)
        incoming = _Incoming(
            request.method,
            raw_path,
            route,
            conversation_id,
            activity_id,
            body,
            problem,
            request.headers.get("Authorization"),
            request.query,
        )
        now = self._clock()
        tenant = self._tenant(incoming)
        answer = self._decide(incoming, now, tenant)
        if answer.conversation_id and tenant:  # a create: the new conversation is the tenant's
            self._tenants.setdefault(answer.conversation_id, tenant)
        self._remember(self._record(incoming, answer, now, tenant))
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return _respond(answer)

    def _route(self, method: str, parts: list[str]) -> tuple[str, str | None, str | None]:
        if parts[: len(self._prefix)] != self._prefix:
            return UNKNOWN, None, None
        return _match_route(method, parts[len(self._prefix) :])

    def _tenant(self, incoming: _Incoming) -> str:
        """Whose tenant window the request counts in; a tenant named for a conversation is
        remembered for its later requests (a DELETE names none)."""
        named = _named_tenant(incoming.body, incoming.route)
        if named and incoming.conversation_id is not None:
            self._tenants[incoming.conversation_id] = named
        return named or self.tenant_of(incoming.conversation_id)

    def _decide(self, incoming: _Incoming, now: float, tenant: str = "") -> _Answer:
        route, conversation_id = incoming.route, incoming.conversation_id
        # The order mirrors a real channel: routing, then authentication, then the payload, then
        # throttling (a front door's: every request counts, whatever it is answered), then the
        # conversation's state.
        if route == UNKNOWN:
            message = f"No resource matches {incoming.method} {incoming.raw_path}."
            return _Answer(404, error_body("NotFound", message), error_code="NotFound")
        if self._outage is not None:
            return _failure(self._outage)
        if self._bearer is not None and incoming.authorization != f"Bearer {self._bearer}":
            return _failure(401)
        if incoming.problem is not None:
            problem = incoming.problem
            return _Answer(400, error_body("BadArgument", problem), error_code="BadArgument")
        # Teams: "all requests are subject to the same rate limiting policy". Every request
        # counts in its tenant's window; sends, replies, edits and deletions also in their
        # conversation's; roster reads in their team's (teams.py), creates app-wide only.
        per_conversation = conversation_id if route in _POSTS_ACTIVITY or route in _CHANGES_ACTIVITY else None
        retry_after = self._limits.retry_after(per_conversation, now, tenant)
        if retry_after is None and route == PAGED_MEMBERS:
            retry_after = self.teams.roster_retry_after(conversation_id or "", now)
        if retry_after is not None:
            return _failure(429, retry_after=retry_after)
        self._limits.admit(per_conversation, now, tenant)
        if conversation_id is not None and conversation_id in self._blocked:
            return self._blocked[conversation_id]
        if route in _CHANGES_ACTIVITY:
            refusal = self._refusing_changes.get(conversation_id) or self._refusing_changes.get(None)
            if refusal is not None:
                return refusal
        scripted = self._next_scripted(conversation_id)
        if scripted is not None:
            return scripted
        if route == PAGED_MEMBERS:
            return _answer_of(self.teams.paged_members(conversation_id or "", incoming.query, now))
        if route == CREATE and self.teams.handles(incoming.body):
            return _answer_of(self.teams.create_conversation(incoming.body, self._new_activity_id()))
        return self._accept(route, conversation_id, incoming.activity_id, incoming.body)

    def _record(self, incoming: _Incoming, answer: _Answer, now: float, tenant: str = "") -> ReceivedRequest:
        return ReceivedRequest(
            seq=len(self._records) + 1,
            received_monotonic=now,
            received_wall=time.time(),
            method=incoming.method,
            path=incoming.raw_path,
            route=incoming.route,
            conversation_id=answer.conversation_id or incoming.conversation_id,
            activity_id=incoming.activity_id,
            body=incoming.body,
            authorization=incoming.authorization,
            status=answer.status,
            response_id=answer.response_id,
            error_code=answer.error_code,
            retry_after=answer.retry_after,
            tenant_id=tenant,
        )

    def _next_scripted(self, conversation_id: str | None) -> _Answer | None:
        for key in (conversation_id, None) if conversation_id is not None else (None,):
            queue = self._scripted.get(key)
            if queue:
                return queue.popleft()
        return None

    def _accept(self, route: str, conversation_id: str | None, activity_id: str | None, body: Any) -> _Answer:
        if route in _POSTS_ACTIVITY:
            new_id = self._new_activity_id()
            self._shown.posted(conversation_id or "", new_id, body)
            return _Answer(200, {"id": new_id}, response_id=new_id)
        if route == UPDATE:
            if not self._shown.updated(conversation_id or "", activity_id or "", body):
                return _failure(404, "ActivityNotFound")
            return _Answer(200, {"id": activity_id}, response_id=activity_id)
        if route == DELETE:
            if not self._shown.deleted(conversation_id or "", activity_id or ""):
                return _failure(404, "ActivityNotFound")
            return _Answer(200)
        if route == MEMBERS:
            return _Answer(200, list(self._members.get(conversation_id or "", ())))
        return self._create_conversation(body)

    def _create_conversation(self, params: dict[str, Any]) -> _Answer:
        conversation_id = f"a:stub-conversation-{next(self._ids)}"
        members = params.get("members")
        if isinstance(members, list):
            self._members[conversation_id] = [m for m in members if isinstance(m, dict)]
        activity_id = self._new_activity_id() if isinstance(params.get("activity"), dict) else None
        if activity_id is not None:
            self._shown.posted(conversation_id, activity_id, params["activity"])
        payload = {"id": conversation_id, "activityId": activity_id, "serviceUrl": self.url}
        return _Answer(200, payload, response_id=conversation_id, conversation_id=conversation_id)

    def _new_activity_id(self) -> str:
        return str(_ACTIVITY_ID_BASE + next(self._ids))

    def _remember(self, record: ReceivedRequest) -> None:
        self._records.append(record)
        if record.throttled:
            self._throttled_count += 1
        if record.delivered:
            self._delivered.append(record)
            key = record.conversation_id or ""
            self._delivered_by_conversation.setdefault(key, []).append(record)
        if self._waiters:
            self._notify(record)
        if self._console is not None:
            print(console_line(record), file=self._console, flush=True)

    def _notify(self, record: ReceivedRequest) -> None:
        for waiter in self._waiters:
            waiter.offer(record)
        self._waiters = [waiter for waiter in self._waiters if not waiter.future.done()]

    # ---- control routes (for other processes) ----------------------------------------------

    async def _control(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        match request.method, parts:
            case "GET", ["received"]:
                since = request.query.get("since", "0")
                if not since.isdigit():
                    return web.json_response(error_body("BadArgument", "since: a count"), status=400)
                return web.json_response([r.to_json() for r in self._records[int(since) :]])
            case "GET", ["stats"]:
                return web.json_response(self.stats())
            case "POST", ["reset"]:
                cleared = len(self._records)
                self.clear()
                return web.json_response({"cleared": cleared})
            case "GET", ["tenants"]:
                return web.json_response(self.tenant_stats())
            case "POST", ["outage"]:
                params = await request.json()
                self.outage(params.get("status") if isinstance(params, dict) else None)
                return web.json_response({"outage": self._outage})
            case "POST", [("block" | "fail" | "limits") as what]:
                return await self._configure(what, request)
        return web.json_response(error_body("NotFound"), status=404)

    async def _configure(self, what: str, request: web.Request) -> web.Response:
        """Another process's `block`, `fail` or `limits` (benchmarks against `make run`'s
        console channel): the method's keyword arguments as a JSON object."""
        try:
            params = await request.json()
            if not isinstance(params, dict):
                raise TypeError("a JSON object")
            if what == "block":
                for conversation_id in params.pop("conversation_ids"):
                    self.block(str(conversation_id), **params)
            elif what == "fail":
                self.fail(**params)
            else:
                self.limits(**params)
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response(error_body("BadArgument", f"{what}: {exc}"), status=400)
        return web.json_response({what: "ok"})

    def tenant_stats(self) -> dict[str, dict[str, int]]:
        """Per tenant: requests received, 429s answered, activities delivered."""
        out: dict[str, dict[str, int]] = {}
        for record in self._records:
            counts = out.setdefault(record.tenant_id, {"received": 0, "throttled": 0, "delivered": 0})
            counts["received"] += 1
            counts["throttled"] += record.throttled
            counts["delivered"] += record.delivered
        return out

    def stats(self) -> dict[str, int]:
        return {
            "received": len(self._records),
            "delivered": len(self._delivered),
            "throttled": self._throttled_count,
            "updated": sum(1 for r in self._records if r.route == UPDATE and r.ok),
            "deleted": sum(1 for r in self._records if r.route == DELETE and r.ok),
        }

    # ---- internals -------------------------------------------------------------------------

    def _reset_records(self) -> None:
        self._records: list[ReceivedRequest] = []
        self._delivered: list[ReceivedRequest] = []
        self._delivered_by_conversation: dict[str, list[ReceivedRequest]] = {}
        self._throttled_count = 0
        self._shown = Conversations()
        self._limits.reset()

    def _timeout_report(self, wanted: str, waiter: _Waiter, timeout: float) -> str:
        shown = self._records[-50:]
        lines = [
            f"ConnectorStub.wait_for: wanted {wanted} within {timeout}s, "
            f"got {len(waiter.matches)}; {len(self._records)} request(s) received"
            + (f" (last {len(shown)} shown)" if len(shown) < len(self._records) else "")
            + (":" if shown else "."),
            *(f"  #{r.seq} {summarize(r)}" for r in shown),
        ]
        return "\n".join(lines)


def _named_tenant(body: Any, route: str) -> str:
    """The tenant a request names: a create's `tenantId` or `channelData.tenant.id`, an
    activity's `conversation.tenantId` (botbuilder writes `tenantID`) or `channelData.tenant.id`."""
    if not isinstance(body, dict):
        return ""
    places: list[Any] = [body.get("tenantId")] if route == CREATE else []
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        places += [conversation.get("tenantId"), conversation.get("tenantID")]
    channel_data = body.get("channelData")
    tenant = channel_data.get("tenant") if isinstance(channel_data, dict) else None
    if isinstance(tenant, dict):
        places.append(tenant.get("id"))
    return next((place for place in places if isinstance(place, str) and place), "")


def _answer_of(reply: Reply) -> _Answer:
    return _Answer(
        reply.status,
        reply.payload,
        reply.error_code,
        reply.retry_after,
        response_id=reply.conversation_id,
        conversation_id=reply.conversation_id,
    )


def _respond(answer: _Answer) -> web.Response:
    headers = None
    if answer.retry_after is not None:
        # An HTTP-date has whole seconds: from the next whole second on, so it is never sooner.
        value = (
            email.utils.formatdate(math.ceil(time.time()) + answer.retry_after, usegmt=True)
            if answer.retry_after_date
            else str(answer.retry_after)
        )
        headers = {"Retry-After": value}
    if answer.payload is None:
        return web.Response(status=answer.status, headers=headers)
    if isinstance(answer.payload, bytes):  # a malformed body, sent as it is (teams.garble_next_page)
        return web.Response(status=answer.status, body=answer.payload, content_type="application/json", headers=headers)
    return web.json_response(answer.payload, status=answer.status, headers=headers)


def _waiting_spec(
    condition: int | Callable[[ReceivedRequest], bool],
    count: int,
    conversation_id: str | None,
) -> tuple[Callable[[ReceivedRequest], bool], int, str]:
    """(predicate, how many matches, description for the timeout report)."""
    where = f" in {conversation_id!r}" if conversation_id is not None else ""
    if isinstance(condition, int):
        return (
            lambda r: r.delivered and (conversation_id is None or r.conversation_id == conversation_id),
            condition,
            f"{condition} delivered activit{'y' if condition == 1 else 'ies'}{where}",
        )
    name = getattr(condition, "__name__", repr(condition))
    return (
        lambda r: (conversation_id is None or r.conversation_id == conversation_id) and condition(r),
        count,
        f"{count} request(s) matching {name}{where}",
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # A restarted console channel must get its fixed port back despite TIME_WAIT sockets.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


# ---- human-readable output -------------------------------------------------------------------


def summarize(record: ReceivedRequest) -> str:
    """One line: what was asked and what the stub answered."""
    head = f"{record.method} {record.route} [{record.conversation_id}] -> {record.status}"
    if record.error_code:
        head += f" {record.error_code}"
    if record.retry_after is not None:
        head += f" (Retry-After {record.retry_after})"
    activity = record.activity
    return head + (f": {describe_activity(activity)}" if activity is not None else "")


def console_line(record: ReceivedRequest) -> str:
    """What the console channel prints for one request."""
    conversation = f"[{record.conversation_id}]"
    if not record.ok:
        target = f"{record.method} {record.path}" if record.route == UNKNOWN else record.route
        return f"{conversation} !! {record.status} {record.error_code} for {target}" + (
            f" (Retry-After {record.retry_after}s)" if record.retry_after is not None else ""
        )
    activity = record.activity
    if record.route == UPDATE and activity is not None:
        return f"{conversation} bot (edited {record.activity_id}): {describe_activity(activity)}"
    if record.route == DELETE:
        return f"{conversation} bot deleted {record.activity_id}"
    if record.route == MEMBERS:
        return f"{conversation} (members listed)"
    if activity is None:
        return f"{conversation} (conversation created)"
    return f"{conversation} bot: {describe_activity(activity)}"
