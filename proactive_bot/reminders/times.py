"""Wall-clock time in the user's zone: zones by name, local instants, recurrences and how a moment
is said. The timer and the report need only this, not the phrase readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .. import i18n
from ..i18n import DEFAULT, dates

UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Recurrence:
    """A local time on some days of the week (0 = Monday), in the reminder's own zone."""

    days: frozenset[int]
    at: time

    def describe(self, language: str = DEFAULT) -> str:
        return i18n.text(language, "every.at", days=self.describe_days(language), time=f"{self.at:%H:%M}")

    def describe_days(self, language: str = DEFAULT) -> str:
        if len(self.days) == 7:
            return i18n.text(language, "every.day")
        if self.days == frozenset(range(5)):
            return i18n.text(language, "every.weekday")
        names = dates.weekday_names(language)
        return i18n.text(language, "every.days", days=dates.join([names[day] for day in sorted(self.days)], language))

    def encode(self) -> str:
        return ",".join(map(str, sorted(self.days))) + f"@{self.at:%H:%M}"

    @classmethod
    def decode(cls, text: str) -> Recurrence:
        """The stored form back (`encode`); ValueError if it is not one (a row edited by hand)."""
        days, _, at = text.partition("@")
        weekdays = frozenset(int(day) for day in days.split(","))
        if not weekdays <= frozenset(range(7)):
            raise ValueError(f"weekdays are 0 to 6: {text!r}")  # next_after would find no day
        return cls(weekdays, time.fromisoformat(at))

    def next_after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first occurrence strictly after `moment` (UTC)."""
        local_day = moment.astimezone(zone).date()
        for offset in range(8):
            day = local_day + timedelta(days=offset)
            if day.weekday() in self.days:
                candidate = local_instant(day, self.at, zone)
                if candidate > moment:
                    return candidate
        raise AssertionError("a recurrence has at least one weekday")  # pragma: no cover


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in `zone` (gaps move forward, overlaps take the first)."""
    local = datetime.combine(day, at, tzinfo=zone)
    return local.astimezone(UTC)


def zone_named(name: str | None) -> ZoneInfo | None:
    """The IANA zone for a name as users and channels write it ("europe/berlin", "UTC"), or None."""
    name = (name or "").strip()
    if not name or len(name) > 64 or ".." in name or name.startswith("/"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        pass
    canonical = _zones_by_lower_name().get(name.lower())
    return ZoneInfo(canonical) if canonical else None


@cache
def _zones_by_lower_name() -> dict[str, str]:
    # Only on a miss: listing every zone reads the whole database, which cold starts can skip.
    return {key.lower(): key for key in available_timezones()}


def describe_moment(moment: datetime, zone: ZoneInfo, now: datetime, language: str = DEFAULT) -> str:
    """ "today at 17:00", "tomorrow at 09:00", "on Fri 28 Nov at 14:30" (2027: with the year)."""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    at = dates.clock(local)
    if local.date() == today:
        return i18n.text(language, "moment.today", time=at)
    if local.date() == today + timedelta(days=1):
        return i18n.text(language, "moment.tomorrow", time=at)
    if local.date() == today - timedelta(days=1):
        return i18n.text(language, "moment.yesterday", time=at)
    day = dates.day(local, language, with_year=local.year != today.year)
    return i18n.text(language, "moment.day", day=day, time=at)
