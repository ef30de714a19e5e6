"""``cron()`` triggers: the firings of six fields on the wall clock of a time zone."""

from __future__ import annotations

from bisect import bisect_left
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import tzinfo

from smartvault.core.schedules.base import CRON_HIGH
from smartvault.core.schedules.base import CRON_LOW
from smartvault.core.schedules.base import YEAR_MAX
from smartvault.core.schedules.base import YEAR_MIN
from smartvault.core.schedules.base import ScheduleError
from smartvault.core.schedules.base import Wall
from smartvault.core.schedules.base import checked_utc
from smartvault.core.schedules.base import just_before
from smartvault.core.schedules.fields import FIELD_NAMES
from smartvault.core.schedules.fields import HOURS
from smartvault.core.schedules.fields import MINUTES
from smartvault.core.schedules.fields import MONTH
from smartvault.core.schedules.fields import YEAR
from smartvault.core.schedules.fields import Days
from smartvault.core.schedules.fields import day_of_month
from smartvault.core.schedules.fields import day_of_week
from smartvault.core.schedules.fields import field_values
from smartvault.core.schedules.fields import month_days

# --- cron(): the trigger -----------------------------------------------------------


@dataclass(frozen=True)
class _CronSpec:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: Days
    months: tuple[int, ...]
    years: tuple[int, ...]


@dataclass(frozen=True)
class CronTrigger:
    """``cron(minutes hours day-of-month month day-of-week year)`` on a time zone's wall clock."""

    expression: str
    timezone: str
    _spec: _CronSpec = field(repr=False, compare=False)
    _tz: tzinfo = field(repr=False, compare=False)

    # A firing is a matching wall time, turned into an instant with fold=0; wall times that
    # do not exist (spring forward) are skipped. That map is strictly increasing, so searches
    # walk matching wall times in order and stop at the first suitable instant. They skip by
    # field (year -> month -> day -> hour -> minute) and end at YEAR_MAX, so they never loop.

    def slot(self, at: datetime) -> datetime | None:
        at_utc = checked_utc(at, "at")
        local = min(max(at_utc, CRON_LOW), CRON_HIGH).astimezone(self._tz)
        if local.fold:
            # The second pass of a repeated hour: later wall times of that hour have already
            # fired (their first pass is earlier), so start from the end of the repeat.
            first, second = local.replace(fold=0).utcoffset(), local.utcoffset()
            if first is not None and second is not None and first > second:
                local = local + (first - second)
        for wall in self._walls_down(_wall(local)):
            instant = self._instant(wall)
            if instant is not None and instant <= at_utc:
                return instant
        return None

    def next_after(self, at: datetime) -> datetime | None:
        at_utc = checked_utc(at, "at")
        local = min(max(at_utc, CRON_LOW), CRON_HIGH).astimezone(self._tz)
        for wall in self._walls_up(_wall(local)):
            instant = self._instant(wall)
            if instant is not None and instant > at_utc:
                return instant
        return None

    def previous(self, t: datetime) -> datetime | None:
        before = just_before(checked_utc(t, "t"))
        return None if before is None else self.slot(before)

    def _instant(self, wall: Wall) -> datetime | None:
        """The UTC instant of a local wall time (first one if repeated); None if skipped."""
        year, month, day, hour, minute = wall
        local = datetime(year, month, day, hour, minute, tzinfo=self._tz)
        if self._tz is UTC:
            return local
        instant = local.astimezone(UTC)
        if _wall(instant.astimezone(self._tz)) != wall:
            return None  # in the gap of a spring-forward: this wall time never happens
        return instant

    def _walls_up(self, start: Wall) -> Iterator[Wall]:
        """Matching wall times >= ``start``, ascending."""
        spec = self._spec
        y0, mo0, d0, h0, mi0 = start
        for y in spec.years[bisect_left(spec.years, y0) :]:
            at_y = y == y0
            for mo in spec.months[bisect_left(spec.months, mo0 if at_y else 1) :]:
                at_mo = at_y and mo == mo0
                days = month_days(spec.days, y, mo)
                for d in days[bisect_left(days, d0 if at_mo else 1) :]:
                    at_d = at_mo and d == d0
                    for h in spec.hours[bisect_left(spec.hours, h0 if at_d else 0) :]:
                        at_h = at_d and h == h0
                        for mi in spec.minutes[bisect_left(spec.minutes, mi0 if at_h else 0) :]:
                            yield (y, mo, d, h, mi)

    def _walls_down(self, start: Wall) -> Iterator[Wall]:
        """Matching wall times <= ``start``, descending."""
        spec = self._spec
        y0, mo0, d0, h0, mi0 = start
        for y in reversed(spec.years[: bisect_right(spec.years, y0)]):
            at_y = y == y0
            for mo in reversed(spec.months[: bisect_right(spec.months, mo0 if at_y else 12)]):
                at_mo = at_y and mo == mo0
                days = month_days(spec.days, y, mo)
                for d in reversed(days[: bisect_right(days, d0 if at_mo else 31)]):
                    at_d = at_mo and d == d0
                    for h in reversed(spec.hours[: bisect_right(spec.hours, h0 if at_d else 23)]):
                        at_h = at_d and h == h0
                        hi = mi0 if at_h else 59
                        for mi in reversed(spec.minutes[: bisect_right(spec.minutes, hi)]):
                            yield (y, mo, d, h, mi)


def _wall(local: datetime) -> Wall:
    return (local.year, local.month, local.day, local.hour, local.minute)


def cron_trigger(expression: str, spec: _CronSpec, timezone: str, tz: tzinfo) -> CronTrigger:
    trigger = CronTrigger(expression=expression, timezone=timezone, _spec=spec, _tz=tz)
    if trigger.next_after(CRON_LOW) is None:
        if next(trigger._walls_up(_wall(CRON_LOW)), None) is None:
            reason = f"no date and time in {YEAR_MIN}-{YEAR_MAX} matches all of its fields"
        else:
            reason = f"every time it names is skipped by daylight saving time in {timezone}"
        raise ScheduleError(f"{expression} never fires: {reason}")
    return trigger


def cron_spec(body: str) -> _CronSpec:
    fields = body.split()
    if len(fields) != 6:
        hint = ""
        if len(fields) == 5:
            hint = (
                "; EventBridge cron has a year field and uses ? for the unused day field, "
                "like cron(0 3 * * ? *)"
            )
        elif len(fields) == 7:
            hint = "; EventBridge cron has no seconds field"
        raise ScheduleError(f"cron(...) needs 6 fields ({FIELD_NAMES}), got {len(fields)}{hint}")
    minutes, hours, dom, month, dow, year = fields
    if dom == "?" and dow == "?":
        raise ScheduleError(
            "day-of-month and day-of-week cannot both be ?; set one of them, like * in day-of-month"
        )
    if dom != "?" and dow != "?":
        raise ScheduleError("day-of-month and day-of-week cannot both be set; use ? in one of them")
    spec_minutes = field_values(minutes, MINUTES)
    spec_hours = field_values(hours, HOURS)
    by_month = day_of_month(dom)
    by_week = day_of_week(dow)
    spec_months = field_values(month, MONTH)
    spec_years = field_values(year, YEAR)
    days = by_month if by_month is not None else by_week
    assert days is not None  # exactly one of them is "?"
    return _CronSpec(spec_minutes, spec_hours, days, spec_months, spec_years)
