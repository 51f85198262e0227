"""The catalogs: every language has every English text, with the same fields; English fills gaps."""

from __future__ import annotations

import string

import pytest

from proactive_bot.i18n import SUPPORTED, catalog, text


def fields(template: str | dict[str, str]) -> set[str]:
    forms = template.values() if isinstance(template, dict) else [template]
    return {name for form in forms for _, name, _, _ in string.Formatter().parse(form) if name}


@pytest.mark.parametrize("language", [language for language in SUPPORTED if language != "en"])
def test_each_catalog_has_the_english_keys_with_the_same_fields(language):
    english, other = catalog.catalog("en"), catalog.catalog(language)

    assert set(other) == set(english)
    assert {key: fields(value) for key, value in other.items()} == {key: fields(english[key]) for key in english}


def test_a_language_without_a_catalog_gets_english():
    assert text("fr", "hint") == text("en", "hint")
    assert catalog.catalog("../../etc/passwd") == {}  # a tag names no path


def test_plural_forms_follow_the_language():
    assert text("en", "cancel.all", count=1) == "Cancelled 1 reminder."
    assert text("en", "cancel.all", count=2) == "Cancelled 2 reminders."
    assert text("de", "cancel.all", count=1) == "1 Erinnerung gelöscht."
    assert text("zh-Hans", "cancel.all", count=1) == "已取消 1 个提醒。"


def test_fields_are_data_not_templates():
    assert text("en", "answer.done", text="{count} {__class__}") == "✅ Done: {count} {__class__}."
