"""The phrase sets (tests/data/phrases/<language>.tsv) read as their files say: the same rows the
README's accuracy figure counts (bench.phrase_accuracy)."""

from __future__ import annotations

import pytest

from bench.phrase_accuracy import LANGUAGES, read_ours, rows

CASES = [(language, phrase, expected) for language in LANGUAGES for phrase, expected in rows(language)]


def test_each_language_has_at_least_40_phrases():
    for language in LANGUAGES:
        assert len(list(rows(language))) >= 40, language


@pytest.mark.parametrize(("language", "phrase", "expected"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_a_phrase_reads_as_expected(language, phrase, expected):
    assert read_ours(phrase, language) == expected


@pytest.mark.parametrize(
    "said",
    [
        "erinnere mich " + "an " * 360 + "x",
        "erinnere mich an " + "x " * 500 + "morgen",
        "提醒我" + "十" * 1000,
        "十十三五提醒我喝水",
        "提醒我" + "10分钟" * 150 + "后",
        "每周一和" * 200 + "提醒我x",
    ],
    ids=["de-markers", "de-long-text", "zh-numerals", "zh-bad-numeral", "zh-long-duration", "zh-long-days"],
)
def test_hostile_phrases_get_an_answer_not_an_error(said):
    from bench.phrase_accuracy import NOW, ZONE
    from proactive_bot.reminders.schedules import ScheduleError, parse_request

    try:
        parse_request(said, NOW, ZONE, "zh-Hans")
    except ScheduleError as refused:
        assert str(refused)
