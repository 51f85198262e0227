"""Days, weekdays and lists in each language (English by hand, the others from CLDR via Babel)."""

from __future__ import annotations

from datetime import datetime

from proactive_bot.i18n import dates

FRIDAY = datetime(2026, 11, 27, 14, 30)


def test_a_day_in_each_language():
    assert dates.day(FRIDAY, "en", with_year=False) == "Fri 27 Nov"
    assert dates.day(FRIDAY, "de", with_year=False) == "Fr., 27. Nov."
    assert dates.day(FRIDAY, "zh-Hans", with_year=False) == "11月27日周五"
    assert dates.day(FRIDAY, "de", with_year=True) == "Fr., 27. Nov. 2026"
    assert dates.day(FRIDAY, "zh-Hans", with_year=True) == "2026年11月27日周五"


def test_weekdays_and_lists():
    assert dates.join([dates.weekday_names("de")[0], dates.weekday_names("de")[3]], "de") == "Montag und Donnerstag"
    assert dates.join([dates.weekday_names("zh-Hans")[0], dates.weekday_names("zh-Hans")[3]], "zh-Hans") == "周一和周四"
    assert dates.join(["Monday", "Tuesday", "Thursday"], "en") == "Monday, Tuesday and Thursday"
    assert dates.month_name(2, "de") == "Februar"
