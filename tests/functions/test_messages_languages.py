"""messages/ (and the timer and long tasks behind it) in the user's language: German, Chinese, English."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from proactive_bot import bot, clock
from tests import activities
from tests.functions import invoke
from tests.functions.test_long_tasks import enqueued_task

NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)  # Thursday, 11:00:30 in Berlin


class Conversation:
    """One Teams user in their personal chat, whose client reports `locale`."""

    def __init__(self, channel, locale: str) -> None:
        self.channel, self.locale = channel, locale
        self.user = activities.teams_user()
        self.id = "a:1" + uuid.uuid4().hex
        self.conversation = {"conversationType": "personal", "tenantId": activities.TENANT, "id": self.id}

    def message(self, text: str) -> dict:
        message = activities.teams_message(text, self.channel.url, user=self.user, conversation=self.conversation)
        message["locale"] = self.locale
        return message

    async def say(self, text: str) -> str:
        before = len(self.channel.texts(self.id))
        await invoke.http("messages", self.message(text))
        return self.channel.texts(self.id)[before]


async def test_a_german_user_sets_lists_and_cancels_in_german(app, channel, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    anna = Conversation(channel, "de-DE")

    assert (await anna.say("hilfe")).startswith("Das kann ich:")
    assert await anna.say("erinnere mich morgen um 10 Uhr an den Bericht") == (
        "OK, ich erinnere dich morgen um 10:00 (Europe/Berlin) an: den Bericht."
    )
    assert await anna.say("erinnere mich jeden Werktag um 9 ans Standup") == (
        "OK, ich erinnere dich jeden Werktag um 09:00 (Europe/Berlin) an: Standup. Das erste Mal morgen um 09:00."
    )
    listing = await anna.say("erinnerungen")
    assert listing.startswith("Deine Erinnerungen (Zeiten in Europe/Berlin):")
    assert "1. morgen um 09:00, dann jeden Werktag um 09:00: Standup\n2. morgen um 10:00: den Bericht" in listing
    assert await anna.say("lösche 2") == "Erinnerung 2 gelöscht: den Bericht (morgen um 10:00)."
    assert await anna.say("erinnere mich gestern um 17 Uhr an x") == (
        "Diese Zeit liegt in der Vergangenheit: gestern um 17:00 (jetzt ist es 11:00 in Europe/Berlin)."
    )
    assert await anna.say("erinnere mich irgendwann an x") == (
        "Ich habe nicht verstanden, wann. Versuch: `erinnere mich in 10 Minuten ans Dehnen`, "
        "`erinnere mich morgen um 9 Uhr an den Bericht`, `erinnere mich jeden Werktag um 9 ans Standup`."
    )
    assert (
        await anna.say("wie ist das Wetter")
        == "Das habe ich nicht verstanden. Sag **hilfe**, um zu sehen, was ich kann."
    )


async def test_a_chinese_users_reminder_arrives_as_a_chinese_card_and_is_snoozed_in_chinese(app, channel, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    li = Conversation(channel, "zh-cn")  # as Teams sends it

    assert await li.say("10分钟后提醒我喝水") == "好的，我会在今天 11:10（Europe/Berlin）提醒你：喝水。"
    assert await li.say("下周五下午2点半提醒我订会议室") == (
        "好的，我会在12月4日周五 14:30（Europe/Berlin）提醒你：订会议室。"
    )
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(minutes=11))
    await invoke.timer("timer_notify")

    card = channel.activities(li.id)[-1]
    assert card["text"] == "⏰ 提醒：喝水"
    content = card["attachments"][0]["content"]
    assert content["body"][0]["text"] == "完成了，还是稍后再提醒你？"
    assert [action["title"] for action in content["actions"]] == ["完成", "10分钟后", "1小时后"]
    assert await li.say("稍后 1小时") == "😴 已推迟：我会在今天 12:11再次提醒你：喝水。"
    assert (await li.say("提醒列表")).startswith("你的提醒（时间为 Europe/Berlin）：")
    assert await li.say("取消 5") == "没有第 5 个提醒。说 `提醒列表` 查看列表。"


async def test_the_report_comes_back_in_the_language_it_was_asked_in(app, channel, storage_connection, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    li = Conversation(channel, "zh-CN")
    await li.say("明天上午9点提醒我开会")

    assert await li.say("报告") == "正在生成你的报告，完成后我会发在这里。"
    await invoke.queue("long_tasks", await enqueued_task(storage_connection, li.id))

    report = channel.texts(li.id)[-1]
    assert report.startswith("📋 **你的提醒**（时间为 Europe/Berlin）")
    assert "- 待办：1 个。下一个：明天 09:00：开会" in report


async def test_language_chosen_explicitly_wins_over_the_clients_locale(app, channel, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    bob = Conversation(channel, "en-US")

    assert await bob.say("language") == (
        "I speak English with you (as your app reports it). "
        "Choose with `language de`, `language zh-Hans` or `language en`."
    )
    assert await bob.say("language Deutsch") == "OK, ich spreche Deutsch mit dir."
    assert await bob.say("remind me in 10 minutes to stretch") == (
        "OK, ich erinnere dich heute um 11:10 (Europe/Berlin) an: stretch."  # English words, German answer
    )
    assert await bob.say("sprache") == (
        "Ich spreche Deutsch mit dir (wie du es eingestellt hast). "
        "Wähle mit `sprache de`, `sprache zh-Hans` oder `sprache en`."
    )
    assert (await bob.say("language klingon")).startswith("`klingon` spreche ich noch nicht.")
    assert await bob.say("语言 zh-Hans") == "好的，我会用简体中文和你说话。"
    assert await bob.say("language en") == "OK, I'll speak English with you."
    assert await bob.say("help") == bot.HELP


async def test_a_locale_without_a_catalog_gets_english(app, channel):
    pierre = Conversation(channel, "fr-FR")

    assert await pierre.say("aide") == bot.HINT
    assert await pierre.say("help") == bot.HELP
    traditional = Conversation(channel, "zh-TW")  # Traditional Chinese: no catalog yet
    assert await traditional.say("help") == bot.HELP


async def test_the_welcome_is_in_the_locale_of_the_install(app, channel):
    update = activities.teams_members_added(channel.url, user=activities.teams_user())
    update["locale"] = "de-de"

    await invoke.http("messages", update)

    [welcome] = channel.activities(update["conversation"]["id"])
    assert welcome["text"].startswith("Hallo! Ich kann dich an Dinge erinnern")
