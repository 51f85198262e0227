"""Command line for other systems and for people: `python -m proactive_bot notify|status|cancel|edit|resend ...`.

`notify` builds the same JSON the queue contract describes and validates it against the same
schema; it then posts it to the HTTP front door (`--url`, with a function key) or puts it on the
queue (the default, with the storage connection string). `status` asks the front door how a
notification went; `cancel` (alias `recall`) and `edit` change it there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from .activities import adaptive_card
from .notifications.contract import InvalidNotification, validate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proactive_bot", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    notify = commands.add_parser("notify", help="send a notification to a user, a conversation or everyone")
    to = notify.add_mutually_exclusive_group(required=True)
    to.add_argument("--user", help="the user's channel id (with --channel)")
    to.add_argument("--conversation", help="a conversation id (with --channel)")
    to.add_argument("--aad", help="an Entra ID (AAD) object id")
    to.add_argument("--all", action="store_true", help="everyone (filter with --channel/--tenant; --include-roster)")
    to.add_argument("--team", help="every member of this Teams team (its 19:...@thread.tacv2 id)")
    to.add_argument("--aad-list", type=Path, help="a file of Entra object ids, one a line (with --tenant: its tenant)")
    to.add_argument("--channel-post", nargs=2, metavar=("TEAM_ID", "CHANNEL_ID"), help="a new post in a Teams channel")
    notify.add_argument("--channel", help="channelId, e.g. msteams, webchat")
    notify.add_argument("--tenant", help="with --all: only this tenant; with --aad-list: the users' tenant")
    notify.add_argument("--include-roster", action="store_true", help="with --all: also Teams users known from rosters")
    notify.add_argument("--reply-to", help="with --channel-post: answer in the thread this notification id started")
    notify.add_argument("--text", help="the message (Markdown)")
    notify.add_argument("--card", type=Path, help="a JSON file holding an Adaptive Card")
    notify.add_argument("--id", help="idempotency key (default: a new uuid)")
    notify.add_argument("--not-before", help='send no earlier than this, e.g. "2026-12-24T09:00:00+01:00"')
    notify.add_argument("--expires-at", help="recipients not reached by then are never sent")
    notify.add_argument("--priority", choices=["normal", "high"], help="high: the urgent lane whatever the audience")
    notify.add_argument("--base64", action="store_true", help="enqueue base64 text instead of plain JSON")
    notify.add_argument("--connection", help="storage connection string (default: AzureWebJobsStorage)")
    notify.add_argument("--queue", help="queue name (default: NotificationsQueue or 'notifications')")
    _front_door_arguments(notify, required=False)
    status = commands.add_parser("status", help="how a notification went (counts; --detail per recipient)")
    status.add_argument("id")
    status.add_argument("--detail", action="store_true", help="one line per recipient too")
    _front_door_arguments(status, required=True)
    resend = commands.add_parser(
        "resend", help="send once more to the recipients whose delivery is unconfirmed (a crash mid-send)"
    )
    resend.add_argument("id")
    resend.add_argument("--state", default="unconfirmed", choices=["unconfirmed"], help="which recipients")
    _front_door_arguments(resend, required=True)
    cancel = commands.add_parser(
        "cancel", aliases=["recall"], help="cancel what is not sent yet and recall (delete) what is"
    )
    cancel.add_argument("id")
    _front_door_arguments(cancel, required=True)
    edit = commands.add_parser("edit", help="edit a notification in place, where it was sent and where it is not yet")
    edit.add_argument("id")
    edit.add_argument("--text", help="the new message (Markdown)")
    edit.add_argument("--card", type=Path, help="a JSON file holding the new Adaptive Card")
    _front_door_arguments(edit, required=True)
    return parser


def _front_door_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--url",
        required=required,
        help="the app's base URL, e.g. https://NAME.azurewebsites.net or http://localhost:7071",
    )
    parser.add_argument(
        "--key", default=os.environ.get("FUNCTION_KEY", ""), help="function key (default: $FUNCTION_KEY)"
    )


def build_notification(args: argparse.Namespace) -> dict[str, Any]:
    if args.all:
        to: dict[str, Any] = {"all": True}
        if args.channel:
            to["channelId"] = args.channel
        if args.tenant:
            to["tenantId"] = args.tenant
        if args.include_roster:
            to["includeRoster"] = True
    elif args.team:
        to = {"teamId": args.team}
    elif args.aad_list:
        to = {"aadObjectIds": [line.strip() for line in args.aad_list.read_text("utf-8").splitlines() if line.strip()]}
        if args.tenant:
            to["tenantId"] = args.tenant
    elif args.channel_post:
        to = {"teamChannel": {"teamId": args.channel_post[0], "channelId": args.channel_post[1]}}
        if args.reply_to:
            to["teamChannel"]["replyTo"] = args.reply_to
    elif args.aad:
        to = {"aadObjectId": args.aad}
    elif args.user:
        to = {"userId": args.user, "channelId": args.channel}
    else:
        to = {"conversationId": args.conversation, "channelId": args.channel}
    document: dict[str, Any] = {"id": args.id or uuid.uuid4().hex, "to": to}
    document.update(_content(args))
    if args.not_before:
        document["notBefore"] = args.not_before
    if args.expires_at:
        document["expiresAt"] = args.expires_at
    if args.priority:
        document["priority"] = args.priority
    return document


def _content(args: argparse.Namespace) -> dict[str, Any]:
    """`text` and/or `attachments` from --text and --card: a notification's, or an edit's."""
    content: dict[str, Any] = {}
    if args.text:
        content["text"] = args.text
    if args.card:
        content["attachments"] = [adaptive_card(json.loads(args.card.read_text("utf-8")))]
    return content


def _setting(name: str, default: str = "") -> str:
    """An app setting from the environment, else from local.settings.json(.example) here."""
    if os.environ.get(name):
        return os.environ[name]
    for candidate in ("local.settings.json", "local.settings.json.example"):
        path = Path(candidate)
        if path.exists():
            return json.loads(path.read_text("utf-8")).get("Values", {}).get(name) or default
    return default


async def enqueue(document: dict[str, Any], connection: str, queue: str, *, base64: bool = False) -> None:
    policy = TextBase64EncodePolicy() if base64 else None
    async with QueueClient.from_connection_string(connection, queue, message_encode_policy=policy) as client:
        with contextlib.suppress(ResourceExistsError):
            await client.create_queue()
        await client.send_message(json.dumps(document))


class FrontDoorUnreachable(RuntimeError):
    """The app's HTTP front door did not answer."""


async def _call_front_door(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = {"x-functions-key": key} if key else {}
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, json=body, headers=headers) as resp,
        ):
            try:
                answer = await resp.json(content_type=None)
            except ValueError:  # not JSON: a proxy's error page, say
                answer = {"error": {"message": f"HTTP {resp.status}, not a JSON answer"}}
            return resp.status, answer
    except (aiohttp.ClientError, TimeoutError) as error:
        raise FrontDoorUnreachable(f"{method} {url}: {type(error).__name__}: {error}") from None


def _ask(method: str, url: str, key: str, body: dict[str, Any] | None = None, *, expect: int = 202) -> int:
    """One request to the front door, its JSON answer printed; exit code 0 if it said `expect`."""
    status, answer = asyncio.run(_call_front_door(method, url, key, body))
    print(json.dumps(answer))
    return 0 if status == expect else 1


def _status(args: argparse.Namespace) -> int:
    """The status JSON on stdout (for programs), its summary on stderr (for people). Edits or
    recalls that did not take are named with the channel's reason, read from the rows."""
    url = _notification_url(args)
    status, answer = asyncio.run(_call_front_door("GET", url + ("?detail=true" if args.detail else ""), args.key))
    if status == 200:
        rows = answer.get("recipients")
        if rows is None and _changes_not_taken_counted(answer):
            _, detailed = asyncio.run(_call_front_door("GET", url + "?detail=true", args.key))
            rows = detailed.get("recipients") if isinstance(detailed, dict) else None
        print(summary(answer, rows), file=sys.stderr)
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


def _notification_url(args: argparse.Namespace) -> str:
    return f"{args.url.rstrip('/')}/api/notifications/{quote(args.id, safe='')}"


# Status counts of rows whose last edit or recall did not take (`changeFailed`: the i19 status).
_NOT_TAKEN_COUNTS = ("unsupported", "changeFailed")
# A row's `change`, as the summary words it.
_NOT_TAKEN = {"unsupported": "unsupported by the channel", "failed": "failed"}


def summary(body: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> str:
    """One line: the state and every non-zero count; then, from `rows` (the detailed status),
    each edit or recall that did not take, with the channel's reason and how many it hit."""
    counts = ", ".join(f"{name} {n}" for name, n in body.get("counts", {}).items() if n and name != "recipients")
    recipients = body.get("counts", {}).get("recipients", 0)
    lane = f" ({body['class']})" if body.get("class") else ""
    line = f"{body.get('id')}{lane}: {body.get('state')}, {recipients} recipient(s)" + (f": {counts}" if counts else "")
    return "; ".join([line, *_not_taken(rows or [])])


def _changes_not_taken_counted(body: dict[str, Any]) -> bool:
    counts = body.get("counts", {}) if isinstance(body, dict) else {}
    return any(counts.get(name) for name in _NOT_TAKEN_COUNTS)


def _not_taken(rows: list[dict[str, Any]]) -> list[str]:
    """ "recall unsupported by the channel for 6: 501 DeleteActivityAPINotImplemented" and the like,
    one per kind of change, outcome and reason (a row's detail reads "<kind>: <reason>")."""
    groups: dict[tuple[str, str, str], int] = {}
    for row in rows:
        change = row.get("change") or ""
        if change not in _NOT_TAKEN:
            continue
        kind, _, reason = str(row.get("detail") or "").partition(": ")
        if not reason:
            kind, reason = "change", kind
        groups[(kind, change, reason)] = groups.get((kind, change, reason), 0) + 1
    return [f"{kind} {_NOT_TAKEN[change]} for {n}: {reason}" for (kind, change, reason), n in groups.items()]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(_keys_joined(sys.argv[1:] if argv is None else argv))
    try:
        return _run(args)
    except FrontDoorUnreachable as error:
        print(f"no answer from the front door: {error}", file=sys.stderr)
        return 2


def _keys_joined(argv: list[str]) -> list[str]:
    """`--key VALUE` as `--key=VALUE`: function keys are URL-safe base64 and may start with "-",
    which argparse would otherwise take for an option."""
    joined: list[str] = []
    values = iter(argv)
    for arg in values:
        value = next(values, None) if arg == "--key" else None
        joined.append(arg if value is None else f"--key={value}")
    return joined


def _run(args: argparse.Namespace) -> int:
    if args.command == "status":
        return _status(args)
    if args.command == "resend":
        return _ask("POST", f"{_notification_url(args)}/resend?state={args.state}", args.key)
    if args.command in ("cancel", "recall"):
        return _ask("DELETE", _notification_url(args), args.key)
    if args.command == "edit":
        patch = _content(args)
        if not patch:
            print("not edited: give --text and/or --card", file=sys.stderr)
            return 2
        return _ask("PATCH", _notification_url(args), args.key, patch)
    document = build_notification(args)
    try:
        validate(document)
    except InvalidNotification as error:
        print(f"not sent: {error}", file=sys.stderr)
        return 2
    if args.url:
        return _ask("POST", f"{args.url.rstrip('/')}/api/notifications", args.key, document)
    connection = args.connection or _setting("AzureWebJobsStorage")
    queue = args.queue or _setting("NotificationsQueue", "notifications")
    if not connection:
        # A keyless deploy has no connection string to give: its producers use the front door.
        print(
            "not sent: no storage connection (set AzureWebJobsStorage or pass --connection; "
            "for a keyless deploy use --url and --key, the HTTP front door)",
            file=sys.stderr,
        )
        return 2
    asyncio.run(enqueue(document, connection, queue, base64=args.base64))
    print(json.dumps({"id": document["id"], "queue": queue}))
    return 0
