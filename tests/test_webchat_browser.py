"""The bot in a real browser: Microsoft Web Chat on the local Direct Line channel, in headless
Chromium (Debian's package, driven by Playwright), against the whole app on the local host.

The host runs in this process so the test can move the app's clock (`proactive_bot.clock.now`)
past a reminder's due time; nothing in the app fast-forwards time on its own. The page and the
browser stay offline: any request off this machine is refused and fails the test.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, Route, async_playwright, expect

from devtools.funchost import FunctionHost
from devtools.webchat import Panel, WebChatChannel
from proactive_bot import cli, clock
from tests.conftest import unique
from tests.functions.invoke import APP_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# Keep Chromium off the network: no updates, sync, metrics or first-run fetches.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIME_ZONE = "Europe/Berlin"
# How the reminder's snooze button is labelled (suggested action or Adaptive Card button).
SNOOZE_BUTTON = re.compile(r"^Snooze")
WAIT_MS = 15_000

expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def app_settings(storage_connection: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": storage_connection,
        "MicrosoftAppId": "",
        "MicrosoftAppPassword": "",
        # Tables of its own: "everyone" is then just this test's users.
        "ReferencesTable": unique("refs"),
        "RemindersTable": unique("reminders"),
        "NotificationsQueue": unique("webchat-notifications-"),
        "TimerSchedule": "0 0 0 1 1 *",  # yearly: the panel runs the timer
    }


@pytest.fixture
async def host(app_settings: dict[str, str]) -> AsyncIterator[FunctionHost]:
    function_host = FunctionHost(APP_ROOT, app_settings)
    await function_host.start(0)
    yield function_host
    await function_host.stop()


@pytest.fixture
async def channel(host: FunctionHost) -> AsyncIterator[WebChatChannel]:
    async with WebChatChannel(f"{host.url}/api/messages", panel=Panel.for_host(host)) as web_chat:
        yield web_chat


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        await chromium.close()


class Tab:
    """One browser tab on the page: one user. Records what would have left the machine."""

    def __init__(self, page: Page, offsite: list[str], errors: list[str]) -> None:
        self.page = page
        self.offsite = offsite
        self.errors = errors
        self.transcript = page.locator("#webchat")

    async def say(self, text: str) -> None:
        sendbox = self.page.locator('[data-id="webchat-sendbox-input"]')
        await sendbox.fill(text)
        await sendbox.press("Enter")

    async def sees(self, text: str | re.Pattern[str]) -> None:
        await expect(self.transcript.get_by_text(text).last).to_be_visible()

    @property
    def bot_bubbles(self) -> Locator:
        return self.transcript.locator(".webchat__bubble:not(.webchat__bubble--from-user)")


@pytest.fixture
async def open_tab(browser: Browser, channel: WebChatChannel) -> AsyncIterator[Callable[[], Awaitable[Tab]]]:
    """Opens the page in a new tab (its own browser context: a fresh user) in the user's zone."""
    contexts: list[BrowserContext] = []

    async def open_one() -> Tab:
        context = await browser.new_context(
            timezone_id=TIME_ZONE, locale="en-US", viewport={"width": 1280, "height": 860}
        )
        contexts.append(context)
        offsite: list[str] = []
        errors: list[str] = []
        await context.route("**/*", _local_only(offsite))
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))

        def keep_error(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", keep_error)
        await page.goto(channel.url)
        return Tab(page, offsite, errors)

    yield open_one
    for context in contexts:
        await context.close()


def _local_only(offsite: list[str]) -> Callable:
    async def handle(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            offsite.append(route.request.url)
            await route.abort()

    return handle


async def snooze_if_offered(tab: Tab) -> bool:
    """Click the newest Snooze button, if there is one; True once the bot has answered."""
    buttons = tab.transcript.get_by_role("button", name=SNOOZE_BUTTON)
    if await buttons.count() == 0:
        return False
    before = await tab.bot_bubbles.count()
    await buttons.last.click()
    await expect(tab.bot_bubbles.nth(before)).to_be_visible()  # the bot answered
    return True


async def test_welcome_reminder_snooze_and_notification_in_the_browser(open_tab, channel, monkeypatch):
    tab = await open_tab()

    # The page opens a conversation; the bot's welcome arrives.
    await tab.sees("I can remind you of things")

    # The user asks for a reminder, in their own words, from the send box.
    await tab.say("remind me in 1 minute to stretch")
    await tab.sees(re.compile(r"OK, I.ll remind you .* to stretch"))  # Web Chat curls the apostrophe

    # Two minutes later (the app's clock), the panel runs the timer: the reminder appears live.
    later = clock.now() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    await tab.page.get_by_role("button", name="Run timer now").click()
    await expect(tab.page.locator("#log")).to_contain_text("timer run started")
    await tab.sees("⏰ Reminder: stretch")
    # The reminder came with Done / Snooze buttons; the click is routed back to that reminder.
    assert await snooze_if_offered(tab)
    await tab.sees(re.compile(r"Snoozed: I.ll remind you again"))

    # Another system notifies this user; the panel shows what came back, the chat shows it.
    await tab.page.locator("#notification-text").fill("Build 42 passed")
    await tab.page.get_by_role("button", name="Send to me").click()
    await expect(tab.page.locator("#log")).to_contain_text(
        re.compile(r"notification to me: (queued|\d{3} from the front door)")
    )
    await tab.sees("Build 42 passed")
    await expect(tab.page.locator("#log")).to_contain_text(re.compile(r"status of \S+: done: 1 sent"))

    ARTIFACTS.mkdir(exist_ok=True)
    await tab.page.screenshot(path=ARTIFACTS / "webchat.png")
    assert tab.offsite == [], "the page tried to reach off this machine"
    assert tab.errors == []
    # Web Chat's time zone reached the bot, on the welcome's conversationUpdate and on messages.
    told = [a for a in channel.forwarded if a["type"] in ("conversationUpdate", "message")]
    assert [a.get("localTimezone") for a in told] == [TIME_ZONE] * len(told)
    assert len(told) >= 2


async def test_every_tab_is_a_user_and_a_broadcast_reaches_them_all(open_tab, channel):
    first, second = await open_tab(), await open_tab()
    await first.sees("I can remind you of things")
    await second.sees("I can remind you of things")
    users = {conversation.user["id"] for conversation in channel.conversations}
    assert len(users) == 2

    await first.page.locator("#notification-text").fill("The office closes at 3 pm today")
    await first.page.get_by_role("button", name="Send to everyone").click()

    await first.sees("The office closes at 3 pm today")
    await second.sees("The office closes at 3 pm today")
    assert first.offsite == second.offsite == []


async def test_an_adaptive_card_renders_and_its_buttons_answer_the_bot(open_tab, channel, app_settings):
    tab = await open_tab()
    await tab.sees("I can remind you of things")
    [conversation] = channel.conversations
    card = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": "Stand-up starts in 5 minutes", "wrap": True}],
        "actions": [
            {"type": "Action.Submit", "title": "Done", "data": {"action": "done"}},
            {"type": "Action.Submit", "title": "Snooze 10 min", "data": {"action": "snooze", "minutes": 10}},
        ],
    }
    await cli.enqueue(
        {
            "id": unique("card-"),
            "to": {"userId": conversation.user["id"], "channelId": "directline"},
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        },
        app_settings["AzureWebJobsStorage"],
        app_settings["NotificationsQueue"],
    )
    await tab.sees("Stand-up starts in 5 minutes")

    assert await snooze_if_offered(tab)
    # The card's data reached the bot as the message's value, the way Web Chat posts a Submit.
    [submitted] = [a for a in channel.forwarded if a["type"] == "message" and "value" in a]
    assert submitted["value"] == {"action": "snooze", "minutes": 10}
    assert tab.offsite == [] and tab.errors == []


async def test_read_receipts_edit_recall_and_send_in_a_minute_from_the_panel(open_tab, channel, monkeypatch):
    tab = await open_tab()
    await tab.sees("I can remind you of things")
    log = tab.page.locator("#log")
    text = tab.page.locator("#notification-text")

    # Sent and shown: the page acknowledges it the way Teams does, and the panel sees it read.
    await text.fill("Deploy at 17:00")
    await tab.page.get_by_role("button", name="Send to me").click()
    await tab.sees("Deploy at 17:00")
    await expect(log).to_contain_text(re.compile(r"status of \S+: done: 1 sent, .*1 read"))

    # Edited in place: the new text where the old one was.
    await text.fill("Deploy at 18:00 (moved)")
    await tab.page.get_by_role("button", name="Edit last").click()
    await tab.sees("Deploy at 18:00 (moved)")
    await expect(tab.transcript.get_by_text("Deploy at 17:00")).to_have_count(0)
    await expect(log).to_contain_text(re.compile(r"1 updated"))

    # Recalled: gone from the page.
    await tab.page.get_by_role("button", name="Recall last").click()
    await expect(tab.transcript.get_by_text("Deploy at 18:00 (moved)")).to_have_count(0)
    await expect(log).to_contain_text(re.compile(r"status of \S+: cancelled: 0 sent, .*1 recalled"))

    # Sent in a minute: scheduled until the timer runs after that minute.
    await text.fill("Coffee in the kitchen")
    await tab.page.get_by_role("button", name="Send in 1 minute").click()
    await expect(log).to_contain_text(re.compile(r"status of \S+: scheduled"))
    later = clock.now() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    await tab.page.get_by_role("button", name="Run timer now").click()
    await tab.sees("Coffee in the kitchen")

    receipts = [a for a in channel.forwarded if a.get("name") == "application/vnd.microsoft.readReceipt"]
    assert receipts and all(a["type"] == "event" for a in receipts)
    assert tab.offsite == [] and tab.errors == []


async def test_the_page_switches_language_and_the_bot_answers_in_it(open_tab, channel):
    tab = await open_tab()
    await tab.sees("I can remind you of things")  # the browser's locale: en-US

    await tab.page.locator("#language").select_option("de-DE")
    await expect(tab.page.locator("html")).to_have_attribute("lang", "de-DE")
    await expect(tab.page.locator("#log")).to_contain_text("language: de-DE")
    await tab.say("hilfe")
    await tab.sees("Das kann ich:")
    await tab.say("erinnere mich in 10 Minuten ans Dehnen")
    # "morgen" when the suite runs in the ten minutes before midnight in Berlin.
    await tab.sees(re.compile(r"OK, ich erinnere dich (heute|morgen) um \d\d:\d\d \(Europe/Berlin\) an: Dehnen\."))

    await tab.page.locator("#language").select_option("zh-CN")
    await tab.say("提醒列表")
    await tab.sees("你的提醒（时间为 Europe/Berlin）：")

    await tab.page.locator("#language").select_option("fr-FR")  # no catalog: English
    before = await tab.bot_bubbles.count()
    await tab.say("help")
    await expect(tab.bot_bubbles.nth(before)).to_contain_text("Here is what I can do:")  # not the welcome's
    told = [a for a in channel.forwarded if a["type"] == "message"]
    assert [a.get("locale") for a in told] == ["de-DE", "de-DE", "zh-CN", "fr-FR"]
    await tab.page.screenshot(path=ARTIFACTS / "webchat-languages.png")
    assert tab.offsite == [] and tab.errors == []
