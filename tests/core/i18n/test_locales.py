"""From what channels and users say to the language the bot speaks."""

from __future__ import annotations

import pytest

from proactive_bot.i18n import language_named, negotiate


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("en-US", "en"),
        ("de-de", "de"),  # Teams writes tags in lower case
        ("de-AT", "de"),
        ("zh-cn", "zh-Hans"),
        ("zh-Hans-CN", "zh-Hans"),
        ("zh_SG", "zh-Hans"),
        ("zh-TW", "en"),  # Traditional Chinese: no catalog, so English
        ("zh-Hant-HK", "en"),
        ("fr-FR", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_a_locale_tag_maps_to_a_language_we_speak(tag, language):
    assert negotiate(tag) == language


def test_the_first_tag_we_speak_wins():
    assert negotiate("", "fr-FR", "de-DE", "en-US") == "de"


@pytest.mark.parametrize(
    ("name", "language"),
    [("de", "de"), ("Deutsch", "de"), ("german", "de"), ("中文", "zh-Hans"), ("zh-CN", "zh-Hans"), ("EN", "en")],
)
def test_names_users_type_for_a_language(name, language):
    assert language_named(name) == language


def test_a_language_we_do_not_speak_is_none():
    assert language_named("klingon") is None
    assert language_named("fr") is None
