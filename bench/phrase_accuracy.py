"""How well reminder phrases are understood: tests/data/phrases/<language>.tsv, ours against libraries.

`python -m bench.phrase_accuracy [--reader ours|dateparser|recognizers] [--show-misses]`

Each row is a phrase and what it must read as, said at NOW in ZONE (the files' header says how
the expected value is written). `ours` is the bot's own reading (reminders.dialogs.read_command
and schedules.parse_request); tests/core/reminders/test_phrases.py asserts it row by row. The
library readers are for the choice the README records: they only find a date and time in the
phrase, so they are scored on the one-off rows (`at ...`, the time alone, the text not checked);
recurrences, commands and refusals they cannot give. Run them from a venv that has the library
(it is not a dependency of the app).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

PHRASES = Path(__file__).resolve().parent.parent / "tests" / "data" / "phrases"
NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=ZoneInfo("UTC"))  # Thursday, 11:00:30 in Berlin
ZONE = ZoneInfo("Europe/Berlin")
LANGUAGES = ("en", "de", "zh-Hans")


def rows(language: str) -> Iterator[tuple[str, str]]:
    """(phrase, expected) of one language's file."""
    with open(PHRASES / f"{language}.tsv", encoding="utf-8") as source:
        lines = (line for line in source if not line.startswith("#"))
        for row in csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE):
            yield row["phrase"], row["expected"]


def _local(moment: datetime) -> str:
    return f"{moment.astimezone(ZONE):%Y-%m-%d %H:%M}"


def read_ours(phrase: str, language: str) -> str:
    """The bot's reading of a phrase, written as the files write the expected value."""
    from proactive_bot.reminders.dialogs import CommandKind, read_command
    from proactive_bot.reminders.schedules import ScheduleError, parse_request

    command = read_command(phrase)
    if command is None:
        return "none"
    if command.kind is CommandKind.REMIND:
        try:
            request = parse_request(phrase, NOW, ZONE, language)
        except ScheduleError as error:
            return f"error {error.key}"
        if request.recurrence is not None:
            return f"every {request.recurrence.encode()} | {request.text}"
        return f"at {_local(request.due_at)} | {request.text}"
    if command.kind is CommandKind.ANSWER:
        snooze = command.answer.snooze  # type: ignore[union-attr]
        return "done" if snooze is None else f"snooze {int(snooze.total_seconds() // 60)}"
    return " ".join(filter(None, (command.kind.value, command.argument)))


def read_dateparser(phrase: str, language: str) -> str:
    from dateparser.search import search_dates

    settings = {
        "RELATIVE_BASE": NOW.astimezone(ZONE).replace(tzinfo=None),
        "PREFER_DATES_FROM": "future",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    found = search_dates(phrase, languages=[language.split("-")[0]], settings=settings)
    return f"at {found[0][1]:%Y-%m-%d %H:%M}" if found else "none"


def read_recognizers(phrase: str, language: str) -> str:
    from recognizers_date_time import recognize_datetime
    from recognizers_text import Culture

    culture = {"en": Culture.English, "de": getattr(Culture, "German", None), "zh-Hans": Culture.Chinese}[language]
    if culture is None:
        return "none"
    base = NOW.astimezone(ZONE).replace(tzinfo=None)
    for result in recognize_datetime(phrase, culture, reference=base):
        for value in result.resolution.get("values", []):
            if value.get("type") == "datetime" and "value" in value:
                return f"at {value['value'][:16]}"
    return "none"


READERS: dict[str, Callable[[str, str], str]] = {
    "ours": read_ours,
    "dateparser": read_dateparser,
    "recognizers": read_recognizers,
}


def score(reader: str, language: str, show_misses: bool = False) -> tuple[int, int]:
    """(right, asked): a library is asked only the one-off rows, and only their time is compared."""
    read = READERS[reader]
    right = asked = 0
    for phrase, expected in rows(language):
        if reader != "ours":
            if not expected.startswith("at "):
                continue
            expected = expected.split(" | ")[0]
        asked += 1
        got = read(phrase, language)
        right += got == expected
        if got != expected and show_misses:
            print(f"  {language} miss: {phrase!r}: {got!r}, expected {expected!r}")
    return right, asked


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phrase_accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--reader", choices=sorted(READERS), default="ours")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    READERS[args.reader]("x", "en")  # the import, timed apart from the phrases
    loaded = time.perf_counter()
    for language in LANGUAGES:
        right, asked = score(args.reader, language, args.show_misses)
        print(f"{args.reader:12} {language:8} {right:3}/{asked:<3} {right / asked:6.1%}")
    print(
        f"{args.reader}: first use {1000 * (loaded - started):.0f} ms, the phrases {time.perf_counter() - loaded:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
