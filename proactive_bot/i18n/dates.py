"""Days, weekdays, months and lists as each language writes them.

English keeps the bot's own short form ("Fri 28 Nov"), which costs no import; other languages use
Babel's CLDR data ("Sa., 28. Nov.", "11月28日周六"). Babel is imported on the first date written in
another language: its import and first locale load cost a few hundred ms (README "Languages"), which
English turns and the functions that write no dates never pay.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache

from .catalog import text
from .locales import DEFAULT

_ENGLISH_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _babel(language: str) -> str:
    return language.replace("-", "_")


def day(moment: datetime, language: str, *, with_year: bool) -> str:
    """A calendar day with its weekday: "Fri 28 Nov" ("Fri 28 Nov 2027" with the year)."""
    if language == DEFAULT:
        return f"{moment:%a} {moment.day} {moment:%b}" + (f" {moment.year}" if with_year else "")
    from babel.dates import format_skeleton

    return format_skeleton("yMMMEd" if with_year else "MMMEd", moment, locale=_babel(language))


def clock(moment: datetime) -> str:
    """A time of day: 24-hour hh:mm, as all our languages write it."""
    return f"{moment:%H:%M}"


@cache
def weekday_names(language: str) -> tuple[str, ...]:
    """Monday first. The width is the catalog's `weekday.width` (German "Montag", Chinese "周一")."""
    if language == DEFAULT:
        return _ENGLISH_WEEKDAYS
    from babel.dates import get_day_names

    names = get_day_names(text(language, "weekday.width"), locale=_babel(language))  # type: ignore[arg-type]
    return tuple(names[number] for number in range(7))


def month_name(month: int, language: str) -> str:
    if language == DEFAULT:
        return date(2000, month, 1).strftime("%B")
    from babel.dates import format_date

    return format_date(date(2000, month, 1), "MMMM", locale=_babel(language))


def join(items: list[str], language: str) -> str:
    """ "A, B and C" in the language."""
    if language == DEFAULT or len(items) < 2:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    from babel.lists import format_list

    return format_list(items, locale=_babel(language))
