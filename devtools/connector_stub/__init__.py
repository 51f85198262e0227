"""A local channel that speaks the Bot Connector REST API v3, records what it receives, and
misbehaves on request.

The bot posts to the `serviceUrl` of a stored ConversationReference; no real channel is reachable
from tests, so this server stands in for one. It is used three ways:

* in-process by pytest (same event loop): `async with ConnectorStub() as stub: ... stub.url ...`;
* by benchmarks in another process, through `GET /_stub/received`, `GET /_stub/stats`,
  `GET /_stub/tenants` (requests, 429s and deliveries per tenant), `POST /_stub/reset`, and
  `POST /_stub/block|fail|limits` (the methods' keyword arguments as JSON; `block` takes
  `conversation_ids`), also against `make run`'s console channel;
* by `make run` as a console channel: `python -m devtools.connector_stub --port 3978` prints one
  line per activity the bot sends.

- `ConnectorStub`, `ReceivedRequest`, the route names, `summarize`, `console_line` (server): the
  aiohttp app, scripted failures, recorded requests, the console lines.
- `RateLimits`, `Window`, `TEAMS_PER_CONVERSATION`, `TEAMS_GLOBAL` (teams_limits): the sliding
  windows behind 429 + Retry-After, per conversation and per app per tenant.
- `Conversations`, `Shown` (activities): what each conversation shows after edits and deletions
  (PUT/DELETE of an id never delivered: 404).
- `TeamsDirectory` (teams): team rosters behind `pagedmembers`, and the creates Teams answers
  (1:1 chats, channel threads, 403 for users without the app).
- `error_body`, `error_code_for`, `describe_activity` (wire): ErrorResponse bodies and one-line
  activity descriptions, also used by the Web Chat channel; importing them loads no server.
- `__main__`: the command line.

Names load on first use, so `from devtools.connector_stub.wire import error_body` costs no server.
"""

from proactive_bot.lazy import exports

_NAMES = {
    "ConnectorStub": "server",
    "ReceivedRequest": "server",
    "summarize": "server",
    "console_line": "server",
    "SEND": "server",
    "REPLY": "server",
    "UPDATE": "server",
    "DELETE": "server",
    "CREATE": "server",
    "MEMBERS": "server",
    "PAGED_MEMBERS": "server",
    "UNKNOWN": "server",
    "TeamsDirectory": "teams",
    "RateLimits": "teams_limits",
    "Window": "teams_limits",
    "TEAMS_PER_CONVERSATION": "teams_limits",
    "TEAMS_GLOBAL": "teams_limits",
    "Conversations": "activities",
    "Shown": "activities",
    "error_body": "wire",
    "error_code_for": "wire",
    "describe_activity": "wire",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
