"""`make run`: Azurite, the local Functions host and two channels, in one Ctrl-C-able process.

Azurite keeps its data under .azurite/ (git-ignored), so stored users and reminders survive a
restart. The Web Chat channel serves a page with Microsoft Web Chat (one user per browser tab)
and a panel that plays another system; the console channel (the Connector-API stub) is for
curl. Each is the serviceUrl of its users: what the bot sends them, replies and proactive
messages alike, shows up on the page or in this terminal.

`--teams` adds Microsoft 365 Agents Playground (devtools/playground/), Microsoft's Teams
emulator: its page is a Teams client for a mock tenant with a team, two channels and a group chat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from pathlib import Path

from devtools import azurite, playground
from devtools.connector_stub import ConnectorStub
from devtools.funchost import FunctionHost
from devtools.funchost.__main__ import configure_logging
from devtools.funchost.instances import start_siblings, stop_siblings
from devtools.webchat import DEFAULT_PORT as WEBCHAT_PORT
from devtools.webchat import Panel, WebChatChannel
from proactive_bot import clients

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_STORAGE_PORTS = (10000, 10001, 10002)  # what UseDevelopmentStorage=true means
TEAMS_PORT = 56150  # the Playground's own default (it takes a free one if this is taken)


def _settings_file() -> dict[str, str]:
    for name in ("local.settings.json", "local.settings.json.example"):
        path = REPO_ROOT / name
        if path.exists():
            return json.loads(path.read_text("utf-8")).get("Values", {})
    return {}


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _instructions(host_url: str, channel_url: str, webchat_url: str, host_key: str = "") -> str:
    activity = {
        "type": "message",
        "channelId": "console",
        "serviceUrl": channel_url,
        "conversation": {"id": "console-you"},
        "from": {"id": "you", "name": "You"},
        "recipient": {"id": "bot", "name": "Bot"},
        "text": "remind me in 1 minute to stretch",
    }
    return f"""
The bot is running.

  Chat with it in your browser:  {webchat_url}
  (each tab is another user; the panel beside the chat sends notifications and runs the timer)

  Watch the notifications:       {host_url}/api/status?code={host_key}

  bot endpoint     {host_url}/api/messages
  console channel  {channel_url}  (what the bot sends appears below)

Talk to it (the first message stores your address; the reply shows up here):
  curl -s -X POST {host_url}/api/messages -H 'Content-Type: application/json' \\
    -d '{json.dumps(activity)}'

Send yourself a notification through the queue, as another system would:
  .venv/bin/python -m proactive_bot notify --user you --channel console --text 'Build 42 passed'

Run the reminder timer now instead of waiting for the minute:
  curl -s -X POST {host_url}/admin/functions/timer_notify -H 'Content-Type: application/json' -d '{{"input": ""}}'

Ctrl-C stops everything.
"""


def _teams_instructions(host_url: str, host_key: str, playground_url: str) -> str:
    """The Playground's part of the banner: CLI lines for its mock tenant."""
    cli = ".venv/bin/python -m proactive_bot"
    return f"""
Teams (Microsoft 365 Agents Playground): {playground_url}
  Open it: the app is installed in your personal chat (a welcome comes). Open the team's
  General channel: the app is installed in the team and its roster is read.

  export FUNCTION_KEY={host_key}
  {cli} notify --team {playground.TEAM} --id build-42 --text 'Build 42 passed' --url {host_url}
  {cli} status build-42 --url {host_url}
  {cli} edit build-42 --text 'Build 42 passed, deployed to staging' --url {host_url}
  {cli} notify --channel-post {playground.TEAM} {playground.RELEASES} --id v2.3 --text 'v2.3 is out' --url {host_url}
  {cli} notify --channel-post {playground.TEAM} {playground.RELEASES} --reply-to v2.3 --text 'Notes on the wiki' --url {host_url}
  {cli} recall build-42 --url {host_url}   (the Playground cannot delete: unsupported, 501)
"""


async def main(port: int, channel_port: int, webchat_port: int, hosts: int = 1, teams_port: int | None = None) -> None:
    settings = _settings_file()
    emulator = None
    if settings.get("AzureWebJobsStorage", "").strip().lower().startswith("usedevelopmentstorage=true"):
        if any(_listening(p) for p in DEV_STORAGE_PORTS):
            print("Ports 10000-10002 are taken: using the Azurite (or storage emulator) already there.")
        else:
            emulator = azurite.start(REPO_ROOT / ".azurite", ports=DEV_STORAGE_PORTS)
            print(f"Azurite started, data in {REPO_ROOT / '.azurite'}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    channel = ConnectorStub(console=sys.stdout)
    host = FunctionHost(REPO_ROOT)
    webchat: WebChatChannel | None = None
    teams: playground.Playground | None = None
    siblings: list = []
    try:
        await channel.start(port=channel_port)
        await host.start(port)
        # More instances of the app, each its own process on the same storage, as Azure scales out.
        siblings = start_siblings(REPO_ROOT, host.port, hosts - 1)
        # Build the app's clients now rather than in the first invocation: the first thing a
        # user tries should not wait for tables and queues to be created (the host runs the
        # app's functions on this loop, so they find these clients).
        await clients.get()
        webchat = WebChatChannel(f"{host.url}/api/messages", panel=Panel.for_host(host), console=sys.stdout)
        await webchat.start(port=webchat_port)
        page = f"http://localhost:{webchat.port}"
        if teams_port is not None:
            teams = await playground.start(f"{host.url}/api/messages", teams_port)
        print(_instructions(host.url, channel.url, page, host.host_key), flush=True)
        if teams is not None:
            print(_teams_instructions(host.url, host.host_key, teams.url), flush=True)
        await stop.wait()
    finally:
        print("\nStopping...", flush=True)
        if teams is not None:
            await teams.stop()
        if webchat is not None:
            await webchat.stop()
        await asyncio.gather(host.stop(), asyncio.to_thread(stop_siblings, siblings))
        await clients.close()  # the app's clients live in this process; the real worker just exits
        await channel.stop()
        if emulator is not None:
            emulator.stop()


def cli() -> None:
    parser = argparse.ArgumentParser(description="Run the bot locally.")
    parser.add_argument("--port", type=int, default=7071, help="the Functions host (default 7071)")
    parser.add_argument("--channel-port", type=int, default=3980, help="the console channel (default 3980)")
    parser.add_argument(
        "--webchat-port",
        type=int,
        default=WEBCHAT_PORT,
        help=f"the Web Chat page and its channel (default {WEBCHAT_PORT})",
    )
    parser.add_argument(
        "--hosts",
        type=int,
        default=1,
        metavar="K",
        help="K instances of the app (K-1 more host processes on the ports after --port), "
        "on the same storage, as Azure scales out (default 1)",
    )
    parser.add_argument(
        "--teams",
        nargs="?",
        type=int,
        const=TEAMS_PORT,
        metavar="PORT",
        help=f"also Microsoft 365 Agents Playground, Microsoft's Teams emulator (default port {TEAMS_PORT}; 0: a free one)",
    )
    args = parser.parse_args()
    if args.hosts < 1:
        parser.error("--hosts must be at least 1")
    configure_logging(verbose=False)
    asyncio.run(main(args.port, args.channel_port, args.webchat_port, args.hosts, args.teams))


if __name__ == "__main__":
    cli()
