"""German "erinnere mich ...": the same capabilities as the English grammar, in German word order.

    erinnere mich in 10 Minuten ans Dehnen        erinnere mich an das Dehnen in 10 Minuten
    erinnere mich morgen um 9 Uhr an den Bericht  erinnere mich am Freitag um 14:30, den Raum zu buchen
    erinnere mich am 24. Dezember / am 24.12. an ...
    erinnere mich jeden Werktag um 9 ans Standup  erinnere mich montags und donnerstags um 8 an ...

The time phrase becomes the same `When` the English grammar reads, so past, impossible and
far-off times get the same answers (schedules._resolve). 24-hour clock: "um 9" is 09:00; a
period word moves it ("um 8 Uhr abends" is 20:00).
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Literal

from .phrases import HORIZON, MAX_WHEN, DayWords, LazyPattern, When, when_of

_WEEKDAYS = {
    "montag": 0,
    "dienstag": 1,
    "mittwoch": 2,
    "donnerstag": 3,
    "freitag": 4,
    "samstag": 5,
    "sonnabend": 5,
    "sonntag": 6,
    "mo": 0,
    "di": 1,
    "mi": 2,
    "do": 3,
    "fr": 4,
    "sa": 5,
    "so": 6,
}
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("januar", "jan", "jänner"),
            ("februar", "feb"),
            ("märz", "mär", "maerz"),
            ("april", "apr"),
            ("mai",),
            ("juni", "jun"),
            ("juli", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("oktober", "okt"),
            ("november", "nov"),
            ("dezember", "dez"),
        ],
        start=1,
    )
    for name in names
}
_UNITS = {
    **dict.fromkeys(("m", "min", "minute", "minuten"), timedelta(minutes=1)),
    **dict.fromkeys(("h", "std", "stunde", "stunden"), timedelta(hours=1)),
    **dict.fromkeys(("d", "tag", "tage", "tagen"), timedelta(days=1)),
    **dict.fromkeys(("woche", "wochen"), timedelta(weeks=1)),
}
# The hour a period word adds to a 12-hour reading, and the time it means alone ("heute abend").
_PERIODS = {
    "früh": (0, time(8)),
    "morgens": (0, time(8)),
    "vormittag": (0, time(10)),
    "vormittags": (0, time(10)),
    "mittag": (12, time(12)),
    "mittags": (12, time(12)),
    "nachmittag": (12, time(15)),
    "nachmittags": (12, time(15)),
    "abend": (12, time(18)),
    "abends": (12, time(18)),
    "nacht": (12, time(22)),
    "nachts": (12, time(22)),
}


def _alternatives(words: object) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))  # type: ignore[call-overload]


_DAY = _alternatives(_WEEKDAYS)
_UNIT = _alternatives(_UNITS)
_PERIOD = _alternatives(_PERIODS)
_AMOUNT = r"\d{1,6}|eine[mnr]?|ein"
_ASKS = LazyPattern(r"(?:bitte\s+)?erinnere?(?:\s+sie)?\s+mich\b[,:]?\s*", re.IGNORECASE)
_MARKER = LazyPattern(r"\s*(?:,\s*(?:dass\s+|daran,?\s*)?|\s(?:daran|dran|ans|an)\b,?\s*)", re.IGNORECASE)
_LEADING_MARKER = LazyPattern(r"(?:daran,?|dran|ans|an)\s+", re.IGNORECASE)
_DURATION = LazyPattern(
    rf"(?:(?:{_AMOUNT})\s*+(?:{_UNIT})\b\s*+(?:(?:,\s*+und|,|und)\s*+)?|(?:einer\s+)?halben?\s+stunde\s*|"
    r"anderthalb\s+stunden\s*)+",
    re.IGNORECASE,
)
_DURATION_PART = LazyPattern(
    rf"({_AMOUNT})\s*({_UNIT})\b|(?:einer\s+)?(halbe)n?\s+stunde|(anderthalb)\s+stunden", re.IGNORECASE
)
_TIME = rf"mitternacht|mittag|halb\s+\d{{1,2}}|\d{{1,2}}(?:[:.]\d{{2}})?(?:\s*uhr)?(?:\s+(?:{_PERIOD}))?"
_CLOCK = LazyPattern(
    rf"(?:(halb)\s+(\d{{1,2}})|(\d{{1,2}})(?:[:.](\d{{2}}))?(?:\s*uhr)?)(?:\s+({_PERIOD}))?", re.IGNORECASE
)
_TIME_FIRST = LazyPattern(rf"um\s+({_TIME})(?:\s+(.*))?", re.IGNORECASE)
_TIME_LAST = LazyPattern(
    rf"(.*?)\s*\b(?:um\s+({_TIME})|(\d{{1,2}}(?:[:.]\d{{2}})?\s*uhr(?:\s+(?:{_PERIOD}))?))", re.IGNORECASE
)
_DAY_LIST = rf"(?:{_DAY})s?(?:\s*(?:,\s*und|,|und|&)\s*(?:{_DAY})s?)*"
_EVERY = LazyPattern(
    rf"(?:jeden|jedem|an\s+jedem)\s+(?P<any>tag|werktag|arbeitstag|wochentag|(?P<days>{_DAY_LIST}))"
    rf"|(?P<daily>täglich|jeden\s+tag)|(?:an\s+)?(?P<weekdays>werktags|werktagen|wochentags|arbeitstagen)"
    rf"|(?P<plural>(?:{_DAY})s(?:\s*(?:,\s*und|,|und|&)\s*(?:{_DAY})s)*)",
    re.IGNORECASE,
)
_NUMERIC_DATE = LazyPattern(r"(?:am\s+)?(\d{1,2})\.(\d{1,2})\.(\d{4})?", re.IGNORECASE)
_ISO_DATE = LazyPattern(r"(?:am\s+)?(\d{4})-(\d{1,2})-(\d{1,2})", re.IGNORECASE)
_DAY_MONTH = LazyPattern(rf"(?:am\s+)?(\d{{1,2}})\.?\s+({_alternatives(_MONTHS)})\.?(?:\s+(\d{{4}}))?", re.IGNORECASE)
_WEEKDAY = LazyPattern(rf"(?:am\s+|diesen\s+|nächsten\s+|kommenden\s+|(?:am\s+)?nächsten\s+)?({_DAY})", re.IGNORECASE)
_LAST_WEEKDAY = LazyPattern(rf"(?:letzten|vergangenen)\s+({_DAY})", re.IGNORECASE)
_DAY_WITH_PERIOD = LazyPattern(rf"(.*?)\s*\b({_PERIOD})", re.IGNORECASE)
_WORD_STARTS = LazyPattern(r"\S+")
_RELATIVE_DAYS = {"heute": "today", "morgen": "tomorrow", "übermorgen": "day after tomorrow", "gestern": "yesterday"}


class _German:
    def asks(self, said: str) -> bool:
        return _ASKS.match(said) is not None

    def rest(self, said: str) -> str:
        match = _ASKS.match(said)
        return said[match.end() :].strip() if match else said

    def split(self, rest: str) -> tuple[str, When] | None:
        if lead := _LEADING_MARKER.match(rest):
            # "an <what> <when>": the longest trailing phrase that reads as a time.
            for start in [m.start() for m in _WORD_STARTS.finditer(rest)][2:]:
                if len(rest) - start > MAX_WHEN:
                    continue  # a time phrase is short: longer tails need no (quadratic) look
                when = read_when(rest[start:])
                if when is not None:
                    return rest[lead.end() : start].strip(" ,"), when
            return None
        # "<when> an <what>" / "<when>, <what> zu tun": the first marker before which a time reads.
        for match in _MARKER.finditer(rest):
            if match.start() > MAX_WHEN:
                break
            when = read_when(rest[: match.start()])
            if when is not None:
                return rest[match.end() :].strip(), when
        return None


GRAMMAR = _German()


def parse_duration(text: str) -> timedelta | None:
    """ "10 Minuten", "eine Stunde", "einer halben Stunde", "1 Std und 30 Min" -> a timedelta."""
    text = text.strip()
    if not _DURATION.fullmatch(text):
        return None
    total = timedelta()
    for amount, unit, half, one_and_half in _DURATION_PART.findall(text):
        if half:
            total += timedelta(minutes=30)
        elif one_and_half:
            total += timedelta(minutes=90)
        else:
            total += (int(amount) if amount.isdigit() else 1) * _UNITS[unit.lower()]
        if total > HORIZON:
            return HORIZON + timedelta(minutes=1)
    return total


def read_when(phrase: str) -> When | None:
    """A German time phrase as a `When`, or None if it is not one."""
    phrase = phrase.strip().rstrip(",:")
    lowered = phrase.lower()
    if not phrase:
        return None
    if lowered.startswith("in "):
        after = parse_duration(phrase[3:])
        return When(after=after) if after is not None else None
    if lowered.startswith("vor "):
        before = parse_duration(phrase[4:])
        return When(before=before) if before is not None else None
    at: time | Literal[False] | None = None
    day_part = phrase
    if match := _TIME_FIRST.fullmatch(phrase):
        at, day_part = _clock(match[1]), match[2] or ""
    elif match := _TIME_LAST.fullmatch(phrase):
        day_part, at = match[1], _clock(match[2] or match[3])
    if at is False:
        return None
    day_part = day_part.strip().rstrip(",")
    period_time = None
    if (match := _DAY_WITH_PERIOD.fullmatch(day_part)) and match[1]:
        # "morgen abend", "heute früh um 7": the period stands for its time or shifts the hour.
        day_part, (shift, period_time) = match[1].strip(), _PERIODS[match[2].lower()]
        if isinstance(at, time) and shift and 1 <= at.hour <= 11:
            at = at.replace(hour=at.hour + shift)
    return when_of(phrase, at, day_part, _DAY_WORDS, period_time)


def _clock(text: str) -> time | Literal[False] | None:
    """A time of day; None for an impossible one (25 Uhr); False if not a time."""
    text = text.strip().lower()
    if text == "mitternacht":
        return time(0, 0)
    if text == "mittag":
        return time(12, 0)
    match = _CLOCK.fullmatch(text)
    if not match:
        return False
    if match[1]:  # "halb 10" is 9:30
        hour, minute = int(match[2]) - 1, 30
    else:
        hour, minute = int(match[3]), int(match[4] or 0)
    if match[5]:
        shift = _PERIODS[match[5].lower()][0]
        if shift and 1 <= hour <= 11 and not (match[5].lower().startswith("nacht") and hour < 5):
            hour += shift
    if not 0 <= hour <= 23 or minute > 59:
        return None
    return time(hour, minute)


def _recurrence_days(match: re.Match[str]) -> frozenset[int]:
    if match["daily"] or (match["any"] or "").lower() == "tag":
        return frozenset(range(7))
    days = match["days"] or match["plural"]
    if days:
        names = re.findall(rf"\b({_DAY})s?\b", days, re.IGNORECASE)
        return frozenset(_WEEKDAYS[name.lower()] for name in names)
    return frozenset(range(5))  # Werktag(e), Arbeitstag, werktags


_DAY_WORDS = DayWords(
    relative=_RELATIVE_DAYS,
    every=_EVERY,
    recurrence_days=_recurrence_days,
    iso_date=_ISO_DATE,
    day_month=_DAY_MONTH,
    months=_MONTHS,
    weekday=_WEEKDAY,
    last_weekday=_LAST_WEEKDAY,
    weekdays=_WEEKDAYS,
    numeric_date=_NUMERIC_DATE,
)
