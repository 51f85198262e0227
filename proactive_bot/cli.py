"""Command line for other systems and for people: `python -m proactive_bot notify ...`.

It builds the same JSON the queue contract describes, validates it against the same schema, and
enqueues it, so what works here works from any producer.
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

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from .notifications import InvalidNotification, validate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proactive_bot", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    notify = commands.add_parser("notify", help="send a notification to a user, a conversation or everyone")
    to = notify.add_mutually_exclusive_group(required=True)
    to.add_argument("--user", help="the user's channel id (with --channel)")
    to.add_argument("--conversation", help="a conversation id (with --channel)")
    to.add_argument("--aad", help="an Entra ID (AAD) object id")
    to.add_argument("--all", action="store_true", help="everyone (filter with --channel/--tenant)")
    notify.add_argument("--channel", help="channelId, e.g. msteams, webchat")
    notify.add_argument("--tenant", help="with --all: only this tenant")
    notify.add_argument("--text", help="the message (Markdown)")
    notify.add_argument("--card", type=Path, help="a JSON file holding an Adaptive Card")
    notify.add_argument("--id", help="idempotency key (default: a new uuid)")
    notify.add_argument("--base64", action="store_true", help="enqueue base64 text instead of plain JSON")
    notify.add_argument("--connection", help="storage connection string (default: AzureWebJobsStorage)")
    notify.add_argument("--queue", help="queue name (default: NotificationsQueue or 'notifications')")
    return parser


def build_notification(args: argparse.Namespace) -> dict[str, Any]:
    if args.all:
        to: dict[str, Any] = {"all": True}
        if args.channel:
            to["channelId"] = args.channel
        if args.tenant:
            to["tenantId"] = args.tenant
    elif args.aad:
        to = {"aadObjectId": args.aad}
    elif args.user:
        to = {"userId": args.user, "channelId": args.channel}
    else:
        to = {"conversationId": args.conversation, "channelId": args.channel}
    document: dict[str, Any] = {"id": args.id or uuid.uuid4().hex, "to": to}
    if args.text:
        document["text"] = args.text
    if args.card:
        card = json.loads(args.card.read_text("utf-8"))
        document["attachments"] = [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]
    return document


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    document = build_notification(args)
    try:
        validate(document)
    except InvalidNotification as error:
        print(f"not sent: {error}", file=sys.stderr)
        return 2
    connection = args.connection or _setting("AzureWebJobsStorage")
    queue = args.queue or _setting("NotificationsQueue", "notifications")
    if not connection:
        print("not sent: no storage connection (set AzureWebJobsStorage or pass --connection)", file=sys.stderr)
        return 2
    asyncio.run(enqueue(document, connection, queue, base64=args.base64))
    print(json.dumps({"id": document["id"], "queue": queue}))
    return 0
