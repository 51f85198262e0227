"""Simplified Chinese "提醒我 ...": the same capabilities as the English grammar.

    10分钟后提醒我喝水          提醒我10分钟后喝水          半小时后提醒我休息
    明天上午9点提醒我开会        提醒我周五下午2点半订会议室   12月24日提醒我买礼物
    每个工作日早上9点提醒我站会  每周一和周四8点提醒我健身    每天晚上10点提醒我睡觉

The time phrase comes before 提醒我 or right after it (Chinese writes no spaces, so the longest
leading phrase that reads as a time wins) and becomes the same `When` as the English grammar's.
Numbers in digits or characters (十五分钟, 两小时); 24-hour unless a period says otherwise
(下午3点 is 15:00).
"""

from __future__ import annotations

import re
from datetime import time, timedelta

from .phrases import HORIZON, LazyPattern, When

_WEEKDAY_CHARS = {
    "一": 0,
    "二": 1,
    "三": 2,
    "四": 3,
    "五": 4,
    "六": 5,
    "日": 6,
    "天": 6,
    "1": 0,
    "2": 1,
    "3": 2,
    "4": 3,
    "5": 4,
    "6": 5,
    "7": 6,
}
_UNITS = {
    **dict.fromkeys(("分钟", "分"), timedelta(minutes=1)),
    **dict.fromkeys(("小时", "个小时", "钟头", "个钟头"), timedelta(hours=1)),
    **dict.fromkeys(("天", "日"), timedelta(days=1)),
    **dict.fromkeys(("周", "星期", "个星期", "礼拜", "个礼拜"), timedelta(weeks=1)),
}
# The hours a period word adds to an hour from 1 to 11, and the time it means alone (今晚).
_PERIODS = {
    "凌晨": (0, time(6)),
    "早上": (0, time(8)),
    "早晨": (0, time(8)),
    "清晨": (0, time(7)),
    "上午": (0, time(9)),
    "中午": (12, time(12)),
    "下午": (12, time(15)),
    "傍晚": (12, time(18)),
    "晚上": (12, time(20)),
    "夜里": (12, time(22)),
}
_DAYS = {"今天": "today", "明天": "tomorrow", "后天": "day after tomorrow", "昨天": "yesterday"}
# 今晚 = 今天晚上, 明早 = 明天早上, ...
_CONTRACTIONS = {"今晚": "今天晚上", "明晚": "明天晚上", "明早": "明天早上", "昨晚": "昨天晚上", "今早": "今天早上"}
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

_ASKS = LazyPattern(r"(?:请|麻烦|帮我)?(.*?)提醒(?:一下)?我[,，:：]?\s*(.*)", re.DOTALL)
# A run of Chinese numerals, not the 一 of 周一/星期一/礼拜一 nor the 一 of 一下/一刻.
_NUMERALS = LazyPattern(
    r"(?<![周期拜])(?:[一二两三四五六七八九]?十[一二三四五六七八九]?|[零〇一二两三四五六七八九]+)(?![下刻])"
)
_UNIT = "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
_PERIOD = "|".join(_PERIODS)
_WEEKDAY = r"(?:周|星期|礼拜)[一二三四五六日天1-7]"
_DURATION = rf"(?:(?:\d{{1,6}}|半)(?:{_UNIT})半?)+|半(?:个)?小时|\d{{1,3}}个半小时"
_WHEN = LazyPattern(
    rf"在?(?:(?P<after>{_DURATION})(?:以?后|之后)"
    rf"|(?P<before>{_DURATION})(?:以?前|之前)"
    rf"|(?:(?P<every>每天|每日|天天|每个?工作日|工作日|每周(?:一到五|1-5)|每(?:个)?(?:{_WEEKDAY})(?:[和、,，及与跟](?:{_WEEKDAY}|[一二三四五六日天]))*)"
    rf"|(?P<day>今天|明天|后天|昨天)"
    rf"|(?P<rel>[这本下上](?:个)?)?(?P<weekday>{_WEEKDAY})"
    rf"|(?:(?P<year>\d{{4}})年)?(?P<month>\d{{1,2}})月(?P<date>\d{{1,2}})[日号])?"
    rf"\s*(?P<period>{_PERIOD})?\s*"
    rf"(?:(?P<hour>\d{{1,3}})(?:点|时|:|：)(?:(?P<minute>\d{{1,2}})分?|(?P<half>半)|(?P<quarter>一刻|三刻)|整)?)?)"
)
_DURATION_PART = LazyPattern(rf"(\d{{1,6}}|半)({_UNIT})(半)?|(半)(?:个)?小时|(\d{{1,3}})个半小时")
_DAY_LIST_PART = LazyPattern(r"(?:周|星期|礼拜)?([一二三四五六日天1-7])")


class _Chinese:
    def asks(self, said: str) -> bool:
        return "提醒" in said and _ASKS.fullmatch(said) is not None

    def rest(self, said: str) -> str:
        match = _ASKS.fullmatch(said)
        # The time before 提醒我 is kept in front, where split reads it.
        return (match[1].strip() + match[2].strip()) if match else said

    def split(self, rest: str) -> tuple[str, When] | None:
        said = _digits(rest)
        match = _WHEN.match(said)
        if match is None or match.end() == 0:
            return None
        when = _from_match(match)
        if when is None:
            return None
        # The text as the user wrote it (十个 stays 十个): after the shortest prefix that reads the same.
        phrase = said[: match.end()]
        longest = min(len(rest), 2 * len(phrase) + 8)  # spelled-out numerals are longer than digits, not more
        end = next((n for n in range(1, longest + 1) if _digits(rest[:n]) == phrase), len(phrase))
        return rest[end:].strip(" ,，:：。"), when


GRAMMAR = _Chinese()


def _digits(text: str) -> str:
    """Contractions spelled out (今晚 -> 今天晚上) and numerals as digits (十五 -> 15)."""
    for short, long in _CONTRACTIONS.items():
        text = text.replace(short, long)
    return _NUMERALS.sub(lambda m: str(_numeral(m[0])), text)


def _numeral(text: str) -> int:
    """一 .. 九十九 (and digit-by-digit runs like 二〇二七) -> int; `_NUMERALS` matches only those."""
    if "十" not in text:
        return int("".join(str(_DIGITS[c]) for c in text))
    tens, _, ones = text.partition("十")
    return (_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0)


def parse_duration(text: str) -> timedelta | None:
    """ "10分钟", "两小时", "半小时", "1小时30分钟" -> a timedelta; None if it is not one."""
    text = _digits(text.strip().replace(" ", ""))
    if not re.fullmatch(_DURATION, text):
        return None
    total = timedelta()
    for amount, unit, and_half, half_hour, hours_and_half in _DURATION_PART.findall(text):
        if half_hour:
            total += timedelta(minutes=30)
        elif hours_and_half:
            total += timedelta(hours=int(hours_and_half), minutes=30)
        else:
            step = _UNITS[unit]
            total += step / 2 if amount == "半" else int(amount) * step
            if and_half:
                total += step / 2
        if total > HORIZON:
            return HORIZON + timedelta(minutes=1)
    return total


def _from_match(match: re.Match[str]) -> When | None:
    if match["after"]:
        return When(after=parse_duration(match["after"]))
    if match["before"]:
        return When(before=parse_duration(match["before"]))
    fields: dict[str, object] = {}
    if match["every"]:
        fields["recurrence_days"] = _recurrence_days(match["every"])
    elif match["day"]:
        fields["day"] = _DAYS[match["day"]]
    elif match["weekday"]:
        weekday = _WEEKDAY_CHARS[match["weekday"][-1]]
        if (match["rel"] or "").startswith("上"):
            fields.update(day="last weekday", weekday=weekday)
        elif (match["rel"] or "").startswith("下"):
            fields.update(day="next week", weekday=weekday)
        else:
            fields.update(day="weekday", weekday=weekday)
    elif match["month"]:
        year = int(match["year"]) if match["year"] else None
        fields.update(day="date", date=(year, int(match["month"]), int(match["date"])))
    period = match["period"]
    if match["hour"]:
        at = _clock(int(match["hour"]), match, period)
        if at is None:
            return When(bad_time=True)
        fields["at"] = at
    elif period:
        fields["at"] = _PERIODS[period][1]
    return When(**fields) if fields else None  # type: ignore[arg-type]


def _clock(hour: int, match: re.Match[str], period: str | None) -> time | None:
    minute = 30 if match["half"] else int(match["minute"] or 0)
    if match["quarter"]:
        minute = 15 if match["quarter"] == "一刻" else 45
    if period and _PERIODS[period][0] and 1 <= hour <= 11:
        hour += _PERIODS[period][0]
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _recurrence_days(every: str) -> frozenset[int]:
    if every in ("每天", "每日", "天天"):
        return frozenset(range(7))
    if "工作日" in every or "一到五" in every or "1-5" in every:
        return frozenset(range(5))
    return frozenset(_WEEKDAY_CHARS[m] for m in _DAY_LIST_PART.findall(every.removeprefix("每个").removeprefix("每")))
