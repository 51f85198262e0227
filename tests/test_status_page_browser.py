"""The status page in a real browser (headless Debian Chromium, driven by Playwright): a broadcast
to a few hundred stub users watched live to its end, its failed row with the reason, the CSV
download, and an edit and a recall made from the page's buttons reaching the channel.

The whole app runs on the local host in this process, the channel is the Connector-API stub, and
the browser stays offline (any request off this machine is refused and fails the test).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from azure.data.tables.aio import TableClient
from playwright.async_api import Browser, Dialog, Page, Route, async_playwright, expect

from devtools.connector_stub import ConnectorStub
from devtools.funchost import FunctionHost
from proactive_bot.channel.activity import conversation_reference, parse_activity
from proactive_bot.references import ReferenceStore
from tests import activities
from tests.conftest import unique
from tests.functions.invoke import APP_ROOT
from tests.test_webchat_browser import CHROMIUM, CHROMIUM_FLAGS

USERS = 200
WAIT_MS = 60_000  # a broadcast, its edit and its recall each take a few seconds at 50 sends/s
DOCS = Path(__file__).resolve().parent.parent / "docs"

expect.set_options(timeout=WAIT_MS)


@pytest.fixture
async def channel() -> AsyncIterator[ConnectorStub]:
    async with ConnectorStub() as stub:
        yield stub


@pytest.fixture
async def host(storage_connection: str, channel: ConnectorStub) -> AsyncIterator[FunctionHost]:
    settings = {
        "AzureWebJobsStorage": storage_connection,
        "MicrosoftAppId": "",
        "MicrosoftAppPassword": "",
        # Tables and queues of its own: "everyone" is just this test's users.
        "ReferencesTable": unique("refs"),
        "NotificationsTable": unique("notes"),
        "NotificationsQueue": unique("status-notifications-"),
        "WorkQueue": unique("status-work-"),
        "TimerSchedule": "0 0 0 1 1 *",
    }
    async with TableClient.from_connection_string(storage_connection, settings["ReferencesTable"]) as table:
        await table.create_table()
        references = ReferenceStore(table)
        for n in range(USERS):
            message = activities.teams_message("hi", channel.url)
            await references.save(conversation_reference(parse_activity(message)))
            if n == 0:  # this one's conversation refuses the message for good: a failed row, with its reason
                channel.block(message["conversation"]["id"], status=400, code="BadArgument")
    function_host = FunctionHost(APP_ROOT, settings)
    await function_host.start(0)
    yield function_host
    await function_host.stop()


@pytest.fixture
async def page() -> AsyncIterator[tuple[Page, list[str]]]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        context = await browser.new_context(locale="en-US", viewport={"width": 1000, "height": 820})
        problems: list[str] = []

        async def local_only(route: Route) -> None:
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                await route.continue_()
            else:
                problems.append(f"offsite: {route.request.url}")
                await route.abort()

        await context.route("**/*", local_only)
        tab = await context.new_page()
        tab.on("pageerror", lambda error: problems.append(str(error)))
        yield tab, problems
        await context.close()
        await browser.close()


def shows(channel: ConnectorStub, conversation_id: str) -> list[str]:
    """The texts a conversation shows now (edits applied, deleted ones gone)."""
    return [shown.activity.get("text") or "" for shown in channel.shown(conversation_id)]


async def until(tab: Page, condition: Callable[[], bool]) -> None:
    for _ in range(WAIT_MS // 100):
        if condition():
            return
        await tab.wait_for_timeout(100)
    pytest.fail("the channel never showed it")


class Api:
    def __init__(self, http: aiohttp.ClientSession, host: FunctionHost) -> None:
        self.http, self.host = http, host

    async def __call__(self, method: str, path: str = "", *, params: dict[str, str] | None = None, **kwargs) -> dict:
        url = f"{self.host.url}/api/notifications{path}"
        query = {"code": self.host.host_key, **(params or {})}
        async with self.http.request(method, url, params=query, **kwargs) as response:
            assert response.status < 300, await response.text()
            return await response.json()


def answer_dialogs(tab: Page, text: str) -> list[str]:
    """Accept every confirm() and answer every prompt() with `text`; returns what they asked."""
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await (dialog.accept(text) if dialog.type == "prompt" else dialog.accept())

    tab.on("dialog", accept)
    return asked


async def test_a_broadcast_watched_to_its_end_then_edited_and_recalled_from_the_page(host, channel, page):
    tab, problems = page
    key = host.host_key
    async with aiohttp.ClientSession() as http:
        api = Api(http, host)
        accepted = await api("POST", json={"id": "town-hall", "to": {"all": True}, "text": "Town hall at 16:00"})

        # Watched live: the page polls while the broadcast runs, and ends at 100 %.
        await tab.goto(f"{host.url}/api/status/n/{accepted['id']}?code={key}")
        await expect(tab.locator("#state")).to_have_text("done")
        await expect(tab.locator("#percent")).to_contain_text("100 %")
        status = await api("GET", "/town-hall")
        assert status["counts"]["recipients"] == USERS and status["counts"]["failed"] == 1
        await expect(tab.locator('[data-count="sent"] b')).to_have_text(str(status["counts"]["sent"]))
        for name in ("recipients", "failed", "gone", "pending"):
            assert await tab.locator(f'[data-count="{name}"] b').text_content() == str(status["counts"][name])

        # The failed row, with its reason, under the filter.
        await tab.select_option("#filter", "failed")
        failed_row = tab.locator('#rows tr[data-state="failed"]')
        await expect(failed_row).to_have_count(1)
        await expect(failed_row).to_contain_text("BadArgument")
        await tab.select_option("#filter", "")
        await expect(tab.locator("#rows tr")).to_have_count(100)  # a page, not every row
        if os.environ.get("STATUS_SCREENSHOTS"):
            await tab.screenshot(path=str(DOCS / "status-notification.png"))

        # The CSV download parses to the rows the API lists.
        async with tab.expect_download() as downloading:
            await tab.click("#csv")
        download = await downloading.value
        lines = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text("utf-8"))))
        detail = await api("GET", "/town-hall", params={"detail": "true"})
        expected = sorted((r["conversationId"], r["state"]) for r in detail["recipients"])
        assert sorted((line["conversationId"], line["state"]) for line in lines) == expected
        assert len(lines) == USERS

        # Edit from the page: confirmed, answered, and every reached conversation shows the new text.
        asked = answer_dialogs(tab, "Town hall at 16:30 (moved)")
        await tab.click("#edit")
        await expect(tab.locator("#result")).to_contain_text("202")
        reached = [r for r in detail["recipients"] if r["state"] == "sent"]
        await until(
            tab, lambda: all(shows(channel, r["conversationId"]) == ["Town hall at 16:30 (moved)"] for r in reached)
        )

        # Recall from the page: every reached conversation shows nothing any more.
        await tab.click("#recall")
        await expect(tab.locator("#state")).to_have_text("cancelled")
        await until(tab, lambda: all(shows(channel, r["conversationId"]) == [] for r in reached))
        assert any("Edit town-hall" in q for q in asked) and any("Recall town-hall" in q for q in asked)

        # The list shows it, newest first; a wrong id and a missing key get clear pages.
        await tab.goto(f"{host.url}/api/status?code={key}")
        listed = tab.locator("#recent tr").first
        await expect(listed).to_contain_text("town-hall")
        await expect(listed.locator("td.recalled")).to_have_text(str(status["counts"]["sent"]))  # its counts came
        if os.environ.get("STATUS_SCREENSHOTS"):
            await tab.screenshot(path=str(DOCS / "status-list.png"))
        missing = await tab.goto(f"{host.url}/api/status/n/no-such-thing?code={key}")
        assert missing is not None and missing.status == 404
        await expect(tab.locator("h1")).to_have_text("No such notification")
        unauthorized = await tab.goto(f"{host.url}/api/status")
        assert unauthorized is not None and unauthorized.status == 401
    assert problems == []
