"""The bot in Microsoft's Teams emulator: Microsoft 365 Agents Playground (npm
`@microsoft/m365agentsplayground`) serves the Teams-like web client and the Connector API the bot
sends to; its web client runs in headless Chromium (Debian's, driven by Playwright), against the
whole app on the local host.

One Playground and one host serve the module; the scenarios run in order, as a Teams developer
would try them: the welcome, a reminder card, the team install and its roster, a notification to
the team, its edit, a channel post and its reply, a recall (the Playground cannot delete: 501),
and an uninstall. The mock tenant is devtools/playground/.m365agentsplayground.yml: Alex Wilber
(the user of the page) and five colleagues, a team with General and Releases, a group chat.
The page and the browser stay offline: a request off this machine is refused and recorded.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.data.tables.aio import TableClient
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from devtools import playground
from devtools.funchost import FunctionHost
from proactive_bot import cli, clock
from proactive_bot.teams.rows import RosterState
from proactive_bot.teams.store import TeamsStore
from tests.conftest import unique
from tests.functions.invoke import APP_ROOT
from tests.test_webchat_browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, _local_only

# The mock tenant of .m365agentsplayground.yml.
TEAM, RELEASES = playground.TEAM, playground.RELEASES  # the team (and its General channel), a channel
MEMBERS = 6  # Alex Wilber and five colleagues: the schema takes five `users`, no more
MEGAN_AAD = "6c1b2f4e-0000-4000-8000-000000000002"  # Megan Bowen's Entra object id
WELCOME = "I can remind you of things"
OFFICE_CDN = "https://res-1.cdn.office.net/files/fabric-cdn-prod_"
WAIT_S = 45.0  # for the app to settle a delivery (storage and the Playground on a busy machine)
DOCS = Path(__file__).resolve().parent.parent / "docs"
# UPDATE_SCREENSHOTS=1 writes the README's screenshots (docs/playground-*.png) from this run.
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"

expect.set_options(timeout=20_000)


class Scene:
    """What the scenarios share: the app, the Playground, Alex's page, and what went off-machine."""

    def __init__(self, host: FunctionHost, emulator: playground.Playground, page: Page, store: TeamsStore) -> None:
        self.host = host
        self.playground = emulator
        self.page = page
        self.store = store
        self.offsite: list[str] = []
        self.errors: list[str] = []
        self.team_notification = ""  # the teamId notification that the edit and the recall change

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """The app's notifications API, as `python -m proactive_bot ... --url` calls it."""
        headers = {"x-functions-key": self.host.host_key}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{self.host.url}/api/notifications{path}", json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def notify(self, document: dict[str, Any]) -> str:
        status, answer = await self.api("POST", "", document)
        assert status == 202, answer
        return answer["id"]

    async def status_when(self, notification_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The detailed status once `done` says so."""
        body: dict[str, Any] = {}
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            _, body = await self.api("GET", f"/{notification_id}?detail=true")
            if done(body):
                return body
            await asyncio.sleep(0.3)
        raise AssertionError(f"status of {notification_id} never settled: {body}")

    async def open(self, name: str) -> None:
        """Select a chat or channel in the left rail."""
        await self.page.get_by_role("treeitem", name=name, exact=True).click()

    async def say(self, text: str) -> None:
        box = self.page.locator('[data-lexical-editor="true"]')
        await box.click()
        await box.type(text)
        await box.press("Enter")

    def shown(self, text: str | re.Pattern[str], *, exact: bool | None = None) -> Locator:
        """Text in the open chat or channel (not the previews in the left rail)."""
        return self.page.get_by_text(text, exact=exact).and_(self.page.locator(':not([role="region"] *)'))

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"playground-{name}.png"
        await self.page.screenshot(path=path)
        if UPDATE_SCREENSHOTS:
            DOCS.mkdir(exist_ok=True)
            shutil.copyfile(path, DOCS / path.name)
            if shutil.which("pngquant"):  # a third of the size, for the repo (Debian's `pngquant`)
                quantize = ["pngquant", "--force", "--ext", ".png", "32", str(DOCS / path.name)]
                await asyncio.to_thread(subprocess.run, quantize, check=True)


@pytest.fixture(scope="module")
async def scene(storage_connection: str) -> AsyncIterator[Scene]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    teams_table = unique("teams")
    settings = {
        "AzureWebJobsStorage": storage_connection,
        "MicrosoftAppId": "",
        "MicrosoftAppPassword": "",
        # Tables and queues of its own: "everyone" and every roster are this module's.
        "ReferencesTable": unique("refs"),
        "RemindersTable": unique("reminders"),
        "NotificationsTable": unique("notes"),
        "TeamsTable": teams_table,
        "NotificationsQueue": unique("playground-notifications-"),
        "TasksQueue": unique("playground-tasks-"),
        "TimerSchedule": "0 0 0 1 1 *",  # yearly: the test runs the timer
    }
    host = FunctionHost(APP_ROOT, settings)
    await host.start(0)
    emulator = await playground.start(f"{host.url}/api/messages")
    table = TableClient.from_connection_string(storage_connection, teams_table)
    try:
        async with async_playwright() as playwright:
            browser: Browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
            scene = Scene(host, emulator, await context.new_page(), TeamsStore(table))
            await context.route("**/*", _local_only(scene.offsite))
            scene.page.on("pageerror", lambda error: scene.errors.append(str(error)))
            yield scene
            await browser.close()
    finally:
        await table.close()
        await emulator.stop()
        await host.stop()
        print("".join(emulator.output[-30:]))  # shown when a test failed


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"never: {what}")


def rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body.get("recipients") or []


async def test_the_welcome_arrives_once_though_the_page_installs_again_on_every_load(scene):
    page = scene.page
    await page.goto(scene.playground.url)
    await page.get_by_title("Toggle Log Panel").click()  # its lines repeat the chat's texts
    # The page installs the app in Alex's personal chat: installationUpdate, then conversationUpdate.
    await expect(scene.shown(re.compile(WELCOME)).first).to_be_visible()
    await scene.screenshot("welcome")

    # Every load installs again (and the page forgets what it showed); a welcome within the day
    # is not repeated: once the bot has answered, the chat holds that answer and nothing before it.
    await page.reload()
    await page.get_by_title("Toggle Log Panel").click()
    await scene.open("Personal Chat")
    await scene.say("help")
    await expect(scene.shown(re.compile(r"Here is what I can do"))).to_be_visible()
    assert await scene.shown(re.compile(WELCOME)).count() == 0


async def test_a_reminder_arrives_as_a_card_and_its_button_answers(scene, monkeypatch):
    await scene.say("remind me in 1 minute to stretch")
    await expect(scene.shown(re.compile(r"OK, I'll remind you .* to stretch"))).to_be_visible()

    later = clock.now() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    await scene.host.run_function("timer_notify")
    await expect(scene.shown(re.compile(r"Reminder: stretch")).first).to_be_visible()
    await scene.screenshot("reminder")
    await scene.page.get_by_role("button", name="Done").last.click()
    await expect(scene.shown(re.compile(r"Done: stretch"))).to_be_visible()


async def test_the_team_install_stores_the_roster_and_a_team_notification_reaches_every_member_once(scene):
    # Opening the team's General channel installs the app in the team; the bot reads its roster.
    await scene.open("Contoso Engineering - General")

    async def roster_read() -> bool:
        team = await scene.store.team(TEAM)
        return team is not None and team.roster_state is RosterState.DONE

    await eventually(roster_read, "the roster was read")
    team = await scene.store.team(TEAM)
    assert team is not None and (team.name, team.roster_members) == ("Contoso Engineering", MEMBERS)

    # One colleague by Entra object id, known only from the roster: their chat is created.
    one = await scene.notify({"to": {"aadObjectId": MEGAN_AAD}, "text": "Your review is due"})
    body = await scene.status_when(one, lambda b: b["state"] == "done")
    [megan] = rows(body)
    assert (body["counts"]["sent"], megan["chatCreated"]) == (1, True)

    notification = await scene.notify({"id": unique("build-"), "to": {"teamId": TEAM}, "text": "Build 42 passed"})
    body = await scene.status_when(notification, lambda b: b["state"] == "done")
    reached = rows(body)
    assert body["counts"]["sent"] == MEMBERS
    assert len({r["userId"] for r in reached}) == len({r["conversationId"] for r in reached}) == MEMBERS
    # Alex has the personal chat, Megan the one just created: a chat for each of the other four.
    assert sum(r["chatCreated"] for r in reached) == MEMBERS - 2
    assert next(r for r in reached if r["userId"] == megan["userId"])["conversationId"] == megan["conversationId"]

    await scene.open("Personal Chat")
    await expect(scene.shown("Build 42 passed")).to_be_visible()
    await scene.page.get_by_title("Toggle Log Panel").click()  # the creates and sends, as the Playground saw them
    await expect(scene.page.get_by_text("createConversation 201").first).to_be_visible()
    await scene.shown("Build 42 passed").first.scroll_into_view_if_needed()  # the chat, not the log
    await scene.screenshot("team")
    await scene.page.get_by_title("Toggle Log Panel").click()
    scene.team_notification = notification


async def test_an_edit_shows_in_place(scene):
    notification = scene.team_notification
    status, _ = await scene.api("PATCH", f"/{notification}", {"text": "Build 42 passed, deployed to staging"})
    assert status == 202
    body = await scene.status_when(notification, lambda b: b["counts"]["updated"] == MEMBERS)
    assert all(r["version"] == 1 for r in rows(body))
    await expect(scene.shown("Build 42 passed, deployed to staging")).to_be_visible()
    await expect(scene.shown("Build 42 passed", exact=True)).to_have_count(0)
    await scene.screenshot("edit")


async def test_a_channel_post_and_a_reply_in_its_thread(scene):
    post = await scene.notify(
        {
            "id": unique("release-"),
            "to": {"teamChannel": {"teamId": TEAM, "channelId": RELEASES}},
            "text": "v2.3 is out",
        }
    )
    await scene.status_when(post, lambda b: b["state"] == "done" and b["counts"]["sent"] == 1)
    reply = await scene.notify(
        {
            "to": {"teamChannel": {"teamId": TEAM, "channelId": RELEASES, "replyTo": post}},
            "text": "Release notes are on the wiki",
        }
    )
    body = await scene.status_when(reply, lambda b: b["state"] == "done" and b["counts"]["sent"] == 1)
    [row] = rows(body)
    assert row["conversationId"].startswith(RELEASES + ";messageid=")  # in the post's thread

    await scene.open("Contoso Engineering - Releases")
    await expect(scene.shown("v2.3 is out")).to_be_visible()
    await expect(scene.shown("Release notes are on the wiki")).to_be_visible()
    await scene.screenshot("channel")


async def test_a_recall_the_playground_cannot_do_is_counted_unsupported_and_named(scene):
    notification = scene.team_notification
    status, _ = await scene.api("DELETE", f"/{notification}")
    assert status == 202
    body = await scene.status_when(notification, lambda b: b["counts"]["unsupported"] == MEMBERS)
    assert body["state"] == "cancelled"
    assert {r["change"] for r in rows(body)} == {"unsupported"}
    assert re.search(rf"; recall unsupported by the channel for {MEMBERS}: ", cli.summary(body, rows(body)))
    await scene.open("Personal Chat")
    await expect(scene.shown("Build 42 passed, deployed to staging")).to_be_visible()  # still there


async def test_after_an_uninstall_nothing_more_goes_through_the_team(scene):
    # "Mock an Activity" > uninstall, through the Playground's own API for it.
    async with aiohttp.ClientSession() as http:
        template = f"{scene.playground.url}/_internal/v1/customActivities/template"
        async with http.get(template, params={"conversationId": TEAM, "type": "uninstall"}) as resp:
            activity = await resp.json()
        async with http.post(f"{scene.playground.url}/_internal/v1/customActivities", json=activity) as resp:
            assert resp.status == 200

    async def uninstalled() -> bool:
        team = await scene.store.team(TEAM)
        return team is not None and not team.active

    await eventually(uninstalled, "the team was marked uninstalled")
    notification = await scene.notify({"to": {"teamId": TEAM}, "text": "Anyone there?"})
    body = await scene.status_when(notification, lambda b: b["state"] == "done")
    assert body["counts"]["sent"] == 0 and "team not installed" in body.get("note", "")
    # Only the page's web fonts and an animation script from Microsoft's CDN were asked for (and
    # refused: it falls back to local fonts); nothing the bot or the Playground sent.
    assert all(url.startswith(OFFICE_CDN) for url in scene.offsite), scene.offsite
    assert scene.errors == []  # no script error on the page
