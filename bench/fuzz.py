"""Fuzz the three entry points with generated hostile input; count crashes and lost messages.

    .venv/bin/python -m bench.fuzz [--inputs 10000] [--seed 1]

Each function runs through its own function.json (tests/functions/invoke.py) against a real
Azurite and the Connector stub, as in the test suite, with seeded random input:

- messages/      real Teams and Web Chat activities, the same with fields dropped or replaced by
                 random JSON, spoofed serviceUrls, bodies that are not activities or not JSON;
                 and, with credentials set, valid and forged Bot Framework tokens.
- queue_notify/  valid notifications (every recipient kind, plain and base64), mutated ones,
                 and garbage; then the broadcasts' work queue is run through deliver_batch/,
                 as the host would, until it is empty.
- timer_notify/  reminders with random text asked for through messages/, some of whose stored
                 addresses are then tampered with, sent by one timer run and checked by a second.

Printed per entry point: inputs tried, unhandled exceptions (goal 0) and messages lost (goal 0).
Lost means: a valid activity not answered 200 with its address stored; a queue message neither
delivered to every recipient, nor in the poison queue, nor logged as for an unknown recipient;
a reminder neither delivered once nor (for a tampered address) refused with a logged reason.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import json
import logging
import random
import re
import string
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from devtools import azurite
from devtools.connector_stub import ConnectorStub
from devtools.openid_stub import OpenIdStub, new_key
from proactive_bot import clients, clock
from proactive_bot.notifications import contract as notifications
from proactive_bot.settings import Settings
from proactive_bot.storage.keys import table_key
from tests import activities
from tests.functions import invoke

APP_ID = "5f0c0a3e-2d53-4d8b-9d1e-fuzz00000001"
CONCURRENCY = 16
MARK = re.compile(r"#fz-(\d+)#")

# --- what the log said, per input -----------------------------------------------------------------

_current_input: contextvars.ContextVar[int] = contextvars.ContextVar("fuzz_input", default=-1)


class LogByInput(logging.Handler):
    """Keeps every app log line, filed under the input whose invocation logged it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.setdefault(_current_input.get(), []).append(record.getMessage())

    def said(self, input_no: int, fragment: str) -> bool:
        return any(fragment in line for line in self.lines.get(input_no, []))


# --- random input ----------------------------------------------------------------------------------

ALPHABETS = [
    string.ascii_letters + string.digits,
    "/\\#?%'\"<>&;:@|*`~[]{}",
    "\x00\x01\x1f\x7f\x85\x9f\u200b\u200e\u202e\ufeff\u2028",
    "éüßøñ中文日本語한국어العربيةעברית",
    "😀🎉👍🏽👨‍👩‍👧",
    " \t\n\r",
]


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def text(self, max_len: int = 40, *, surrogates: bool = False) -> str:
        r = self.r
        length = r.choice([0, 1, 2, 5, 12, max_len, r.randint(0, max_len)])
        alphabets = r.sample(ALPHABETS, r.randint(1, 3))
        chars = [r.choice(r.choice(alphabets)) for _ in range(length)]
        if surrogates and chars:
            chars[r.randrange(len(chars))] = chr(r.randint(0xD800, 0xDFFF))
        return "".join(chars)

    def json_value(self, depth: int = 0, *, surrogates: bool = True) -> Any:
        r = self.r
        kind = r.randrange(9 if depth < 3 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return r.choice([True, False])
        if kind == 2:
            return r.choice([0, -1, 1, 2**31, 2**63, -(2**64), r.randint(-1000, 1000)])
        if kind == 3:
            return r.choice([0.5, -0.0, 1e308, 1e-308, r.uniform(-1e6, 1e6)])
        if kind in (4, 5):
            return self.text(60, surrogates=surrogates and self.chance(0.05))
        if kind in (6, 7):
            return {self.text(10): self.json_value(depth + 1, surrogates=surrogates) for _ in range(r.randint(0, 4))}
        return [self.json_value(depth + 1, surrogates=surrogates) for _ in range(r.randint(0, 4))]

    def weird_id(self) -> Any:
        r = self.r
        return r.choice(
            [
                self.text(30),
                self.text(1200),
                "",
                " ",
                "a/b\\c#d?e%f'g",
                "\x00",
                "..",
                "\u202egnp.exe",
                None,
                0,
                [],
                {},
                {"id": "x"},
                "a" * 1025,
                f"19:{uuid.uuid4().hex}@thread.tacv2;messageid=1",
            ]
        )

    def hostile_url(self) -> str:
        return self.r.choice(
            [
                "https://evil.example/",
                "http://smba.trafficmanager.net/amer/",
                "https://attacker.trafficmanager.net/",
                "https://smba.trafficmanager.net@evil.example/",
                "https://evil.example#@smba.trafficmanager.net/",
                "https://evil.example\\@webchat.botframework.com/",
                "https://webchat.botframework.com\n.evil.example/",
                "http://169.254.169.254/metadata/",
                "file:///etc/passwd",
                "javascript:alert(1)",
                "//evil.example/",
                "https://botframework.com.evil.example/",
                "https://exämple.botframework.com/",
                "",
                "http://10.0.0.1/",
            ]
        )

    def garbage_body(self) -> bytes:
        r = self.r
        kind = r.randrange(10)
        if kind == 0:
            return bytes(r.randrange(256) for _ in range(r.randint(0, 200)))
        if kind == 1:
            return json.dumps(self.json_value()).encode()
        if kind == 2:
            return b"[" * 5000 + b"]" * 5000
        if kind == 3:
            return b'{"a": NaN, "b": Infinity}'
        if kind == 4:
            return b'{"type": "message", "type": "invoke"}'
        if kind == 5:
            return b'{"n": ' + b"9" * 5000 + b"}"
        if kind == 6:
            return base64.b64encode(bytes(r.randrange(256) for _ in range(60)))
        if kind == 7:
            return b"\xef\xbb\xbf" + json.dumps({"x": self.text(20)}).encode()
        if kind == 8:
            return json.dumps({"text": "\ud800"}).encode()
        return b"{" + b" " * r.choice([10, 70_000, 600_000]) + b"}"


# --- outcome bookkeeping ---------------------------------------------------------------------------


@dataclass
class Tally:
    name: str
    inputs: int = 0
    unhandled: Counter = field(default_factory=Counter)
    unhandled_examples: dict[str, str] = field(default_factory=dict)
    lost: int = 0
    lost_examples: list[str] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)

    def crash(self, error: BaseException, example: Any) -> None:
        where = traceback.extract_tb(error.__traceback__)[-1]
        key = f"{type(error).__name__}: {str(error)[:120]} (at {Path(where.filename).name}:{where.lineno})"
        self.unhandled[key] += 1
        self.unhandled_examples.setdefault(key, repr(example)[:300])

    def lose(self, why: str) -> None:
        self.lost += 1
        if len(self.lost_examples) < 5:
            self.lost_examples.append(why[:300])


async def bounded(items: list[Any], work) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(n: int, item: Any) -> None:
        async with limit:
            _current_input.set(n)
            await work(n, item)

    await asyncio.gather(*(one(n, item) for n, item in enumerate(items)))


async def use(settings: Settings) -> clients.Clients:
    """Make `clients.get()` (what the functions call) return clients built from these settings."""
    built = await clients.build(settings)

    async def get() -> clients.Clients:
        return built

    clients.get = get
    return built


def table_names() -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:10]
    return {"references_table": f"fuzzrefs{suffix}", "reminders_table": f"fuzzrem{suffix}"}


def complete_reference(reference: dict[str, Any]) -> bool:
    return all(
        isinstance(v, str) and v
        for v in (
            reference.get("channelId"),
            reference.get("serviceUrl"),
            (reference.get("conversation") or {}).get("id"),
            (reference.get("user") or {}).get("id"),
            (reference.get("bot") or {}).get("id"),
        )
    )


# --- messages/ -------------------------------------------------------------------------------------

FIELDS = [
    "type",
    "id",
    "serviceUrl",
    "channelId",
    "from",
    "recipient",
    "conversation",
    "text",
    "channelData",
    "entities",
    "membersAdded",
    "membersRemoved",
    "timestamp",
    "attachments",
    "value",
    "replyToId",
    "locale",
    "name",
    "deliveryMode",
    "reactionsAdded",
    "action",
    "relatesTo",
    "suggestedActions",
    "textFormat",
]


OTHER_TYPES = [
    "invoke",
    "event",
    "messageReaction",
    "installationUpdate",
    "typing",
    "endOfConversation",
    "messageUpdate",
    "messageDelete",
    "command",
    "trace",
]
INVOKE_NAMES = [
    "adaptiveCard/action",
    "signin/verifyState",
    "signin/tokenExchange",
    "healthCheck",
    "composeExtension/query",
    "task/fetch",
    "fileConsent/invoke",
    "actionableMessage/executeAction",
]


def real_activity(g: Gen, service_url: str) -> dict[str, Any]:
    kind = g.r.randrange(7)
    if kind == 5:
        activity = activities.webchat_message("x", service_url)
        activity["type"] = g.r.choice(OTHER_TYPES)
        activity["name"] = g.r.choice([*INVOKE_NAMES, g.text(12)])
        if g.chance(0.5):
            activity["value"] = g.json_value(surrogates=False)
        return activity
    if kind == 6:
        activity = activities.teams_message(g.r.choice(["help", g.text(20)]), service_url)
        activity["deliveryMode"] = g.r.choice(["expectReplies", "normal", "notification", g.text(8)])
        return activity
    if kind == 0:
        return activities.teams_message(g.text(80), service_url)
    if kind == 1:
        return activities.teams_message(
            g.r.choice(["help", "hi", g.text(20)]), service_url, conversation=activities.teams_channel_conversation()
        )
    if kind == 2:
        return activities.webchat_message(g.r.choice(["help", "remind me in 5 minutes to x", g.text(200)]), service_url)
    if kind == 3:
        return activities.teams_members_added(service_url)
    return activities.webchat_members_added(service_url)


def mutate(g: Gen, activity: dict[str, Any]) -> dict[str, Any]:
    activity = json.loads(json.dumps(activity))
    for name in g.r.sample(FIELDS, g.r.randint(1, 4)):
        activity.pop(name, None) if g.chance(0.4) else activity.__setitem__(name, g.json_value())
    for holder in ("from", "recipient", "conversation"):
        if isinstance(activity.get(holder), dict) and g.chance(0.3):
            activity[holder]["id"] = g.weird_id()
    for listed in ("membersAdded", "entities", "attachments"):
        if isinstance(activity.get(listed), list) and g.chance(0.2):
            activity[listed] = activity[listed] + [g.r.choice([None, {}, {"id": g.weird_id()}, g.json_value()])]
    if g.chance(0.2):
        activity[g.text(12)] = g.json_value()
    return activity


async def fuzz_messages(g: Gen, n: int, channel: ConnectorStub, tally: Tally) -> None:
    app = await use(Settings(storage_connection=STORAGE, **table_names()))
    cases: list[tuple[str, Any, dict[str, str]]] = []
    for _ in range(n):
        roll = g.r.random()
        headers = {"Authorization": g.r.choice(["Bearer x", "Basic eA==", g.text(40)])} if g.chance(0.1) else {}
        if roll < 0.5:
            cases.append(("valid", real_activity(g, channel.url), headers))
        elif roll < 0.85:
            cases.append(("mutated", mutate(g, real_activity(g, channel.url)), headers))
        elif roll < 0.93:
            cases.append(("spoofed", real_activity(g, g.hostile_url()), headers))
        else:
            cases.append(("garbage", g.garbage_body(), headers))
    tally.inputs += len(cases)
    await bounded(cases, lambda i, case: one_message(app, case, tally))
    await app.close()


async def one_message(app: clients.Clients, case: tuple[str, Any, dict[str, str]], tally: Tally) -> None:
    label, body, headers = case
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        response = await invoke.http("messages", raw, headers=headers)
    except Exception as error:
        tally.crash(error, body)
        return
    status = response.status_code
    tally.outcomes[status] += 1
    # An invoke is answered with the bot's own status; 501 is the protocol's "no handler for it".
    is_invoke = isinstance(body, dict) and body.get("type") == "invoke"
    if not (status in (200, 400, 401, 413) or (is_invoke and (status < 500 or status == 501))):
        tally.lose(f"{label}: answered {status}: {response.get_body()[:200]!r}")
        return
    # Refused by the app (before any turn) or answered by a turn, which stores the address.
    answer = json.loads(response.get_body() or b"null") if status != 200 else None
    refused = status in (400, 401, 413, 503) and isinstance(answer, dict) and set(answer) == {"error"}
    if label in ("valid", "signed") and refused:
        tally.lose(f"{label} activity answered {status}: {response.get_body()[:200]!r}")
    if label in ("spoofed", "forged") and not refused:
        tally.lose(f"{label} activity was accepted: {json.dumps(body)[:200]}")
    if (
        isinstance(body, dict)
        and isinstance(body.get("channelId"), str)
        and isinstance(body.get("conversation"), dict)
        and isinstance(body["conversation"].get("id"), str)
    ):
        stored = await app.references.get(body["channelId"], body["conversation"]["id"])
        if not refused and (stored is None or not complete_reference(stored.reference)):
            tally.lose(f"a turn ran ({status}) but the stored address is {stored and stored.reference}")
        if refused and label in ("valid", "signed", "spoofed", "forged") and stored is not None:
            tally.lose(f"{label} activity answered {status} but its address was stored")


async def fuzz_auth(g: Gen, n: int, channel: ConnectorStub, openid: OpenIdStub, tally: Tally) -> None:
    app = await use(
        Settings(
            storage_connection=STORAGE,
            app_id=APP_ID,
            app_password="fuzz-secret",
            token_endpoint=openid.token_endpoint,
            open_id_metadata=openid.metadata_url,
            allowed_service_url_hosts=("default", "127.0.0.1"),
            **table_names(),
        )
    )
    channel.expect_bearer(openid.access_token)
    now = int(time.time())
    forgeries: list[Callable[[], dict[str, Any]]] = [
        lambda: {"exp": now - 3600},
        lambda: {"aud": "someone-else"},
        lambda: {"iss": "https://evil.example"},
        lambda: {"serviceurl": "https://evil.example/"},
        lambda: {"exp": None},
        lambda: {"nbf": now + 3600},
    ]
    cases: list[tuple[str, Any, dict[str, str]]] = []
    for _ in range(n):
        activity = real_activity(g, channel.url)
        roll = g.r.random()
        if roll < 0.4:
            header = "Bearer " + openid.channel_token(APP_ID, channel.url)
            cases.append(("signed", activity, {"Authorization": header}))
        elif roll < 0.7:
            claims = openid.channel_claims(APP_ID, channel.url, **g.r.choice(forgeries)())
            cases.append(("forged", activity, {"Authorization": "Bearer " + openid.sign(claims)}))
        elif roll < 0.8:
            # The right claims, signed with a key nobody published, or naming a key id that is not there.
            claims = openid.channel_claims(APP_ID, channel.url)
            token = openid.sign(claims, key=new_key()) if g.chance(0.2) else openid.sign(claims, kid="not-published")
            cases.append(("forged", activity, {"Authorization": "Bearer " + token}))
        else:
            header = g.r.choice(["", "Bearer", "Bearer " + g.text(80), "bearer a.b.c", g.text(30)])
            cases.append(("forged", activity, {"Authorization": header} if header else {}))
    tally.inputs += len(cases)
    await bounded(cases, lambda i, case: one_message(app, case, tally))
    channel.expect_bearer(None)
    await app.close()


# --- queue_notify/ ---------------------------------------------------------------------------------


@dataclass
class Pool:
    """Conversations that talked to the bot, as the queue phase knows them."""

    conversations: list[dict[str, Any]]  # the activities that created them

    def by_user(self, channel_id: str, user_id: str) -> dict[str, Any] | None:
        found = [a for a in self.conversations if a["channelId"] == channel_id and a["from"]["id"] == user_id]
        personal = [a for a in found if not a["conversation"].get("isGroup")]
        chosen = personal or found
        return chosen[0] if chosen else None

    def by_conversation(self, channel_id: str, conversation_id: str) -> dict[str, Any] | None:
        return next(
            (
                a
                for a in self.conversations
                if a["channelId"] == channel_id and a["conversation"]["id"] == conversation_id
            ),
            None,
        )

    def by_aad(self, aad: str) -> dict[str, Any] | None:
        found = [a for a in self.conversations if a["from"].get("aadObjectId") == aad]
        personal = [a for a in found if not a["conversation"].get("isGroup")]
        chosen = personal or found
        return chosen[0] if chosen else None

    def all(self, channel_id: str | None, tenant_id: str | None) -> list[dict[str, Any]]:
        def tenant(a: dict[str, Any]) -> str:
            return a["conversation"].get("tenantId") or (a.get("channelData") or {}).get("tenant", {}).get("id", "")

        return [
            a
            for a in self.conversations
            if (channel_id is None or a["channelId"] == channel_id) and (tenant_id is None or tenant(a) == tenant_id)
        ]


async def make_pool(channel: ConnectorStub) -> Pool:
    made = []
    for n in range(12):
        if n % 3 == 0:
            activity = activities.webchat_message("hi", channel.url)
        elif n % 3 == 1:
            activity = activities.teams_message("hi", channel.url)
        else:
            activity = activities.teams_message("hi", channel.url, conversation=activities.teams_channel_conversation())
        response = await invoke.http("messages", activity)
        assert response.status_code == 200, response.get_body()
        made.append(activity)
    return Pool(made)


def notification(g: Gen, pool: Pool, n: int) -> dict[str, Any]:
    r = g.r
    target = r.choice(pool.conversations)
    kind = r.randrange(8)
    if kind == 0:
        to: dict[str, Any] = {"userId": target["from"]["id"], "channelId": target["channelId"]}
    elif kind == 1:
        to = {"conversationId": target["conversation"]["id"], "channelId": target["channelId"]}
    elif kind == 2 and target["from"].get("aadObjectId"):
        to = {"aadObjectId": target["from"]["aadObjectId"]}
    elif kind == 3:
        to = {"userId": f"29:unknown-{uuid.uuid4().hex}", "channelId": "msteams"}
    elif kind == 4:
        to = {"aadObjectId": str(uuid.uuid4())}
    elif kind == 5 and g.chance(0.3):
        to = {
            "all": True,
            **({"channelId": r.choice(["msteams", "webchat"])} if g.chance(0.8) else {}),
            **({"tenantId": activities.TENANT} if g.chance(0.3) else {}),
        }
    else:
        to = {"conversationId": target["conversation"]["id"], "channelId": target["channelId"]}
    document: dict[str, Any] = {"to": to, "id": f"fz-{n}"}
    marker = f" #fz-{n}#"
    if g.chance(0.8):
        document["text"] = g.text(300).replace("#fz-", "") + marker
    if "text" not in document or g.chance(0.2):
        document["attachments"] = [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "type": "AdaptiveCard",
                    "version": "1.5",
                    "body": [{"type": "TextBlock", "text": g.text(50) + marker}],
                },
            }
        ]
    return document


def encode(g: Gen, document: dict[str, Any]) -> bytes:
    raw = json.dumps(document, ensure_ascii=g.chance(0.5)).encode("utf-8", "surrogatepass")
    roll = g.r.randrange(4)
    if roll == 0:
        return base64.b64encode(raw)
    if roll == 1:
        return b"\xef\xbb\xbf" + raw
    if roll == 2:
        return b"  " + raw + b"\n"
    return raw


def mutate_notification(g: Gen, document: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    roll = g.r.randrange(7)
    if roll == 0:
        document["serviceUrl"] = g.hostile_url()
    elif roll == 1:
        document["to"] = {**document["to"], "serviceUrl": g.hostile_url()}
    elif roll == 2:
        document["to"] = g.json_value()
    elif roll == 3:
        document["id"] = g.weird_id()
    elif roll == 4:
        document[g.text(10)] = g.json_value()
    elif roll == 5:
        document.pop("to")
    else:
        document["attachments"] = g.json_value()
    return document


async def fuzz_queue(g: Gen, n: int, channel: ConnectorStub, log: LogByInput, tally: Tally) -> None:
    app = await use(Settings(storage_connection=STORAGE, **table_names()))
    pool = await make_pool(channel)
    channel.clear()
    cases: list[tuple[str, bytes]] = []
    for i in range(n):
        roll = g.r.random()
        if roll < 0.55:
            cases.append(("valid", encode(g, notification(g, pool, i))))
        elif roll < 0.85:
            cases.append(("mutated", encode(g, mutate_notification(g, notification(g, pool, i)))))
        else:
            cases.append(("garbage", g.garbage_body()[:70_000]))
    tally.inputs += len(cases)
    poisoned: dict[int, bool] = {}

    async def one(i: int, case: tuple[str, bytes]) -> None:
        _label, body = case
        for dequeue_count in range(1, 6):  # host.json maxDequeueCount
            try:
                outputs = await invoke.queue("queue_notify", body, dequeue_count=dequeue_count)
            except Exception as error:
                tally.crash(error, body)
                continue  # the host would retry it too
            poisoned[i] = outputs["poison"].value is not None
            if poisoned[i] and outputs["poison"].value != body.decode("utf-8", "replace"):
                tally.lose(f"poisoned but changed: {body[:100]!r}")
            return
        poisoned[i] = True  # after the last dequeue the host moves it to the poison queue
        tally.outcomes["retries spent"] += 1

    await bounded(cases, one)
    await run_work_queue(app, tally)
    deliveries: Counter[tuple[int, Any]] = Counter()
    for record in channel.delivered():
        for marker in set(MARK.findall(json.dumps(record.activity))):
            deliveries[(int(marker), record.conversation_id)] += 1
    accepted_ids = Counter(
        notifications.parse_queue_message(body).id
        for i, (_, body) in enumerate(cases)
        if i in poisoned and not poisoned[i]
    )
    for i, (label, body) in enumerate(cases):
        if i not in poisoned:
            continue  # crashed every time: counted as unhandled
        if poisoned[i]:
            tally.outcomes["poison"] += 1
            if label == "valid":
                tally.lose(f"a valid message was poisoned: {body[:200]!r}")
            continue
        try:
            document = notifications.parse_queue_message(body)
        except notifications.InvalidNotification as error:
            tally.lose(f"accepted but invalid ({error}): {body[:200]!r}")
            continue
        expected = expected_recipients(pool, document.to)
        got = {
            conversation for (marker, conversation), count in deliveries.items() if marker == i for _ in range(count)
        }
        counts = [deliveries[(i, a["conversation"]["id"])] for a in expected]
        if expected and counts == [1] * len(expected) and len(got) == len(expected):
            tally.outcomes["delivered"] += 1
        elif accepted_ids[document.id] > 1 and not got:
            # The id is the producer's idempotency key: another message with it was taken first.
            tally.outcomes["id reused, the first stands"] += 1
        elif not expected and log.said(i, "is not known"):
            tally.outcomes["unknown recipient"] += 1
        elif not expected and document.to.get("all"):
            tally.outcomes["broadcast to nobody"] += 1
        else:
            tally.lose(f"{label}: to={document.to} expected {len(expected)} deliveries, got {counts} {sorted(got)}")
    await app.close()


async def run_work_queue(app: clients.Clients, tally: Tally) -> None:
    """Play the host for the internal work queue (broadcast pages and batches) until it is empty."""
    queue = app.queues.get_queue_client(app.settings.work_queue)
    while messages := [m async for m in queue.receive_messages(max_messages=32, visibility_timeout=300)]:
        for message in messages:
            body = message.content.encode()
            try:
                outputs = await invoke.queue("deliver_batch", body, dequeue_count=message.dequeue_count or 1)
            except Exception as error:
                tally.crash(error, body)
            else:
                if outputs["poison"].value is not None:
                    tally.lose(f"our own work message was poisoned: {body[:200]!r}")
            await queue.delete_message(message)


def expected_recipients(pool: Pool, to: dict[str, Any]) -> list[dict[str, Any]]:
    if to.get("all"):
        return pool.all(to.get("channelId"), to.get("tenantId"))
    if "userId" in to:
        found = pool.by_user(to["channelId"], to["userId"])
    elif "conversationId" in to:
        found = pool.by_conversation(to["channelId"], to["conversationId"])
    else:
        found = pool.by_aad(to["aadObjectId"])
    return [found] if found else []


# --- timer_notify/ ---------------------------------------------------------------------------------


async def fuzz_timer(g: Gen, n: int, channel: ConnectorStub, log: LogByInput, tally: Tally) -> None:
    app = await use(Settings(storage_connection=STORAGE, **table_names()))
    pool = await make_pool(channel)
    tampered = {a["conversation"]["id"] for a in g.r.sample(pool.conversations, 3)}
    channel.clear()
    asks = []
    for i in range(n):
        target = g.r.choice(pool.conversations)
        text = g.text(120).replace("#fz-", "").strip() or "x"
        when = g.r.choice([f"in {g.r.randint(1, 59)} minutes"] * 9 + ["in 0 minutes", "sometime", "in 99 lightyears"])
        asks.append((target, f"remind me {when} to {text} #fz-{i}#"))
    tally.inputs += len(asks) + len(tampered)

    async def ask(i: int, item: tuple[dict[str, Any], str]) -> None:
        target, text = item
        if target["channelId"] == "webchat":
            activity = activities.webchat_message(
                text, channel.url, user_id=target["from"]["id"], conversation_id=target["conversation"]["id"]
            )
        else:
            activity = activities.teams_message(
                text, channel.url, user=target["from"], conversation=target["conversation"]
            )
        try:
            response = await invoke.http("messages", activity)
        except Exception as error:
            tally.crash(error, text)
            return
        if response.status_code != 200:
            tally.lose(f"a reminder request answered {response.status_code}")

    await bounded(asks, ask)
    confirmed = {
        int(m)
        for r in channel.delivered()
        if (r.text or "").startswith("OK, I will remind you")
        for m in MARK.findall(r.text)
    }
    tally.outcomes["reminders set"] = len(confirmed)
    tally.outcomes["explained instead"] = len(asks) - len(confirmed)
    # Rows edited in storage: their serviceUrl now names a stranger.
    for conversation_id in tampered:
        activity = pool.by_conversation(
            next(a["channelId"] for a in pool.conversations if a["conversation"]["id"] == conversation_id),
            conversation_id,
        )
        assert activity is not None
        stored = await app.references.get(activity["channelId"], conversation_id)
        assert stored is not None
        entity = await app.references._table.get_entity(
            "ref|" + table_key(activity["channelId"]), table_key(conversation_id)
        )
        entity["reference"] = json.dumps({**stored.reference, "serviceUrl": g.hostile_url() or "https://evil.example/"})
        await app.references._table.update_entity(entity)
    channel.clear()
    real_now = clock.now
    later = real_now() + timedelta(hours=2)
    clock.now = lambda: later
    _current_input.set(-2)
    try:
        for _ in range(2):  # the second run must find nothing left to send
            try:
                await invoke.timer("timer_notify")
            except Exception as error:
                tally.crash(error, "timer run")
    finally:
        clock.now = real_now
    sent = Counter(int(m) for r in channel.delivered() if (r.text or "").startswith("⏰") for m in MARK.findall(r.text))
    refusals = sum("serviceUrl not allowed" in line for line in log.lines.get(-2, []))
    for i in confirmed:
        target = asks[i][0]
        if target["conversation"]["id"] in tampered:
            if sent[i]:
                tally.lose(f"reminder {i} went to a tampered address")
            else:
                tally.outcomes["refused (tampered address)"] += 1
        elif sent[i] == 1:
            tally.outcomes["sent"] += 1
        else:
            tally.lose(f"reminder {i} sent {sent[i]} times")
    if any(asks[i][0]["conversation"]["id"] in tampered for i in confirmed) and not refusals:
        tally.lose("tampered addresses were refused without a logged reason")
    strangers = [r for r in channel.received if r.conversation_id in tampered]
    if strangers:
        tally.lose(f"{len(strangers)} requests reached the stub for tampered addresses")
    await app.close()


# --- the run ---------------------------------------------------------------------------------------

STORAGE = ""


async def run(total: int, seed: int) -> int:
    global STORAGE
    g = Gen(seed)
    log = LogByInput()
    logging.getLogger().addHandler(log)
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("azure", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    shares = {"messages": 0.35, "auth": 0.07, "queue": 0.43, "timer": 0.15}
    counts = {k: max(1, round(total * v)) for k, v in shares.items()}
    with tempfile.TemporaryDirectory() as tmp:
        emulator = azurite.start(Path(tmp))
        STORAGE = emulator.connection_string
        try:
            async with ConnectorStub() as channel, OpenIdStub() as openid:
                tallies = {name: Tally(name) for name in ("messages", "queue_notify", "timer_notify")}
                started = time.perf_counter()
                timings = {}
                for phase, work in (
                    ("messages", lambda: fuzz_messages(g, counts["messages"], channel, tallies["messages"])),
                    ("auth", lambda: fuzz_auth(g, counts["auth"], channel, openid, tallies["messages"])),
                    ("queue", lambda: fuzz_queue(g, counts["queue"], channel, log, tallies["queue_notify"])),
                    ("timer", lambda: fuzz_timer(g, counts["timer"], channel, log, tallies["timer_notify"])),
                ):
                    t0 = time.perf_counter()
                    channel.clear()
                    await work()
                    timings[phase] = time.perf_counter() - t0
                elapsed = time.perf_counter() - started
        finally:
            emulator.stop()
    return report(tallies, timings, elapsed, seed)


def report(tallies: dict[str, Tally], timings: dict[str, float], elapsed: float, seed: int) -> int:
    print(f"\nfuzz run, seed {seed}: {elapsed:.1f} s")
    print(f"{'entry point':<14}{'inputs':>8}{'unhandled':>11}{'lost':>6}   outcomes")
    for tally in tallies.values():
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(tally.outcomes.items(), key=lambda kv: str(kv[0])))
        print(f"{tally.name:<14}{tally.inputs:>8}{sum(tally.unhandled.values()):>11}{tally.lost:>6}   {outcomes}")
    inputs = sum(t.inputs for t in tallies.values())
    unhandled = sum(sum(t.unhandled.values()) for t in tallies.values())
    lost = sum(t.lost for t in tallies.values())
    print(
        f"{'total':<14}{inputs:>8}{unhandled:>11}{lost:>6}   ({inputs / elapsed:.0f} inputs/s; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        + ")"
    )
    for tally in tallies.values():
        for key, count in tally.unhandled.most_common(10):
            print(f"  {tally.name} unhandled x{count}: {key}\n      e.g. {tally.unhandled_examples[key]}")
        for example in tally.lost_examples:
            print(f"  {tally.name} lost: {example}")
    return 0 if unhandled == 0 and lost == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs across the three entry points")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.inputs, args.seed))


if __name__ == "__main__":
    sys.exit(main())
