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
