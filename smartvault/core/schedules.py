"""EventBridge schedule expressions: ``cron(...)`` and ``rate(...)``, and when they fire.

Pure: standard library only, no clock reads. :func:`parse` turns an expression and an
IANA time zone into a :class:`Trigger` that answers three questions about any aware
instant: the latest firing at or before it (:meth:`~Trigger.slot`), the earliest firing
after it (:meth:`~Trigger.next_after`) and the latest firing strictly before it
(:meth:`~Trigger.previous`). Every answer is an aware UTC datetime.

The syntax is EventBridge's (six cron fields, ``?``, 1=SUN). Cron fields are read on the
wall clock of the time zone; when daylight saving time skips a wall time, a firing at that
time is skipped, and a wall time that happens twice fires once, at its first occurrence
(what EventBridge Scheduler documents). ``rate()`` fires at multiples of its interval since
the Unix epoch in UTC, whatever the time zone, so that every run agrees on the slots.
docs/schedules.md says all of this for operators.
"""

from __future__ import annotations

import calendar
import difflib
import re
from bisect import bisect_left
from bisect import bisect_right
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from datetime import tzinfo
from functools import lru_cache
from typing import Literal
from typing import Protocol
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError
from zoneinfo import available_timezones

__all__ = ["CronTrigger", "RateTrigger", "ScheduleError", "Trigger", "parse"]


class ScheduleError(ValueError):
    """Readable reason why an expression or time zone is invalid."""

    def __init__(
        self, message: str, field: Literal["expression", "timezone"] = "expression"
    ) -> None:
        super().__init__(message)
        self.message = message
        #: which policy key the problem concerns: ``schedule.expression`` or ``schedule.timezone``
        self.field: Literal["expression", "timezone"] = field

    def __str__(self) -> str:
        return self.message


class Trigger(Protocol):
    """When a schedule fires. Inputs must be aware; outputs are aware UTC datetimes."""

    @property
    def expression(self) -> str: ...

    @property
    def timezone(self) -> str: ...

    def slot(self, at: datetime) -> datetime | None:
        """The latest firing at or before ``at``; None if it never fired by then."""
        ...

    def next_after(self, at: datetime) -> datetime | None:
        """The earliest firing strictly after ``at``; None if it never fires again."""
        ...

    def previous(self, t: datetime) -> datetime | None:
        """The latest firing strictly before ``t``; None if there is none."""
        ...


# --- shared helpers ----------------------------------------------------------------

YEAR_MIN = 1970
YEAR_MAX = 2199
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Every cron firing lies within [1970-01-01 local, 2199-12-31 23:59 local]; UTC offsets
# stay within a day, so instants outside these bounds can be clamped to them.
_CRON_LOW = datetime(1969, 12, 30, tzinfo=UTC)
_CRON_HIGH = datetime(2200, 1, 2, tzinfo=UTC)
_START_OF_TIME = datetime.min.replace(tzinfo=UTC)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_UTC_KEYS = frozenset({"UTC", "Etc/UTC"})

_Wall = tuple[int, int, int, int, int]  # year, month, day, hour, minute on the local clock


def _as_utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC; ValueError for a naive datetime (a programming error)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # within a day of datetime.min/max: keep it at the edge
        return _START_OF_TIME if value.year < 2000 else _END_OF_TIME


def _before(t: datetime) -> datetime | None:
    """The instant one microsecond before ``t`` (UTC), None at the start of time."""
    try:
        return t - timedelta(microseconds=1)
    except OverflowError:
        return None


# --- rate() ------------------------------------------------------------------------

_RATE_UNITS: Mapping[str, int] = {
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}


@dataclass(frozen=True)
class RateTrigger:
    """``rate(N unit)``: fires at every multiple of the interval since 1970-01-01T00:00Z."""

    expression: str
    timezone: str
    interval: timedelta

    def slot(self, at: datetime) -> datetime | None:
        at_utc = _as_utc(at, "at")
        periods = (at_utc - _EPOCH) // self.interval
        try:
            return _EPOCH + periods * self.interval
        except OverflowError:
            return None

    def next_after(self, at: datetime) -> datetime | None:
        at_utc = _as_utc(at, "at")
        periods = (at_utc - _EPOCH) // self.interval
        try:
            return _EPOCH + (periods + 1) * self.interval
        except OverflowError:
            return None

    def previous(self, t: datetime) -> datetime | None:
        before = _before(_as_utc(t, "t"))
        return None if before is None else self.slot(before)


def _parse_rate(expression: str, body: str, timezone: str) -> RateTrigger:
    parts = body.split()
    if len(parts) != 2:
        raise ScheduleError(
            f"rate(...) takes a value and a unit, like rate(5 minutes); got {len(parts)} "
            f"word{'s' if len(parts) != 1 else ''}"
        )
    value_text, unit = parts
    if not re.fullmatch(r"[0-9]+", value_text):
        raise ScheduleError(f"rate: value {value_text!r} is not a positive whole number")
    value = int(value_text)
    if value == 0:
        raise ScheduleError("rate: value must be at least 1, got 0")
    if unit not in _RATE_UNITS:
        if unit.lower() in _RATE_UNITS:
            raise ScheduleError(f"rate: write the unit in lower case: {unit.lower()!r}")
        raise ScheduleError(
            f"rate: unit {unit!r} is not one of minute, minutes, hour, hours, day, days"
        )
    singular = not unit.endswith("s")
    if value == 1 and not singular:
        raise ScheduleError(
            f"rate: with the value 1 the unit is singular: rate(1 {unit[:-1]}), not rate(1 {unit})"
        )
    if value > 1 and singular:
        raise ScheduleError(
            f"rate: with a value above 1 the unit is plural: "
            f"rate({value} {unit}s), not rate({value} {unit})"
        )
    try:
        interval = timedelta(seconds=value * _RATE_UNITS[unit])
    except OverflowError:
        raise ScheduleError(f"rate: {value} {unit} is too long an interval") from None
    return RateTrigger(expression=expression, timezone=timezone, interval=interval)


# --- cron(): fields ----------------------------------------------------------------

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
# EventBridge numbers the days of the week 1=SUN .. 7=SAT (Unix cron: 0=SUN .. 6=SAT).
_DAY_NAMES = {
    name: number
    for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)
}


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    names: Mapping[str, int] = field(default_factory=dict)
    #: what one value is, for "is not a ..." messages
    noun: str = "number"

    @property
    def span(self) -> str:
        if self.name == "day-of-week":
            return "1-7 or SUN-SAT (1=SUN, 7=SAT)"
        if self.names:
            return f"{self.lo}-{self.hi} or JAN-DEC"
        return f"{self.lo}-{self.hi}"


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTH_NAMES, "month")
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _DAY_NAMES, "day")
_YEAR = _Field("year", YEAR_MIN, YEAR_MAX)

_FIELD_NAMES = "minutes hours day-of-month month day-of-week year"
_NUMBER = re.compile(r"[0-9]+")


def _value(text: str, f: _Field) -> int:
    if _NUMBER.fullmatch(text):
        number = int(text)
        if not f.lo <= number <= f.hi:
            hint = ""
            if f is _DAY_OF_WEEK and number == 0:
                hint = "; EventBridge counts 1=SUN to 7=SAT (Unix cron's 0 is 1 here)"
            raise ScheduleError(f"{f.name}: {text} is out of range {f.lo}-{f.hi}{hint}")
        return number
    if text.upper() in f.names:
        return f.names[text.upper()]
    if f.names and text.isalpha():
        raise ScheduleError(f"{f.name}: {text!r} is not a {f.noun}; use {f.span}")
    if text == "":
        raise ScheduleError(f"{f.name}: a number is missing")
    raise ScheduleError(f"{f.name}: {text!r} is not a number in {f.span}")


def _misplaced(item: str, f: _Field) -> None:
    """Reject a wildcard that EventBridge allows in other fields only, with a precise reason."""
    upper = item.upper()
    if upper in f.names:
        return
    if "?" in item:
        raise ScheduleError(f"{f.name}: ? is only allowed in day-of-month or day-of-week")
    if "#" in item:
        raise ScheduleError(f"{f.name}: # is only allowed in day-of-week (like 6#3)")
    if f is not _DAY_OF_WEEK and re.fullmatch(r"L|[0-9A-Z]+L|L-[0-9]*", upper):
        raise ScheduleError(f"{f.name}: L is only allowed in day-of-month or day-of-week")
    if re.fullmatch(r"[0-9]*W|LW", upper):
        raise ScheduleError(f"{f.name}: W is only allowed in day-of-month (like 15W)")


def _step(text: str, f: _Field) -> int:
    if not _NUMBER.fullmatch(text):
        raise ScheduleError(f"{f.name}: step {text!r} is not a whole number")
    step = int(text)
    limit = f.hi - f.lo
    if not 1 <= step <= limit:
        hint = ""
        if f is _MINUTES and step > limit:
            hint = f"; a step cannot reach into the next hour: use rate({step} minutes)"
        elif f is _HOURS and step > limit:
            hint = f"; a step cannot reach into the next day: use rate({step} hours)"
        raise ScheduleError(f"{f.name}: step {step} is out of range 1-{limit}{hint}")
    return step


def _values(text: str, f: _Field) -> tuple[int, ...]:
    """``*``, ``5``, ``1-5``, ``MON-FRI``, ``*/5``, ``0/15``, ``10-50/10`` and lists of them."""
    chosen: set[int] = set()
    for item in text.split(","):
        if item == "":
            raise ScheduleError(f"{f.name}: empty item in {text!r}")
        _misplaced(item, f)
        base, slash, step_text = item.partition("/")
        if slash and f is _DAY_OF_WEEK:
            raise ScheduleError(
                "day-of-week: EventBridge allows no step (/) here; list the days, like 2,4,6"
            )
        step = _step(step_text, f) if slash else 1
        if base == "*":
            lo, hi = f.lo, f.hi
            if not slash and text != "*":
                raise ScheduleError(f"{f.name}: * cannot be part of a list")
        elif "-" in base:
            first, _, last = base.partition("-")
            if first == "" or last == "" or "-" in last:
                raise ScheduleError(f"{f.name}: {base!r} is not a range; write it like 1-5")
            lo, hi = _value(first, f), _value(last, f)
            if lo > hi:
                top, bottom = str(f.hi), str(f.lo)
                if first.isalpha():
                    names = list(f.names)
                    top, bottom = names[-1], names[0]
                raise ScheduleError(
                    f"{f.name}: range {base} runs backwards; "
                    f"write it as two parts, like {first}-{top},{bottom}-{last}"
                )
        else:
            lo = _value(base, f)
            hi = f.hi if slash else lo  # 0/15: from 0, every 15 to the end of the field
        chosen.update(range(lo, hi + 1, step))
    return tuple(sorted(chosen))


# --- cron(): days ------------------------------------------------------------------

_DayKind = Literal["days", "last", "last-weekday", "nearest-weekday", "weekdays", "last-dow", "nth"]


@dataclass(frozen=True)
class _Days:
    """Which days of a month fire: from day-of-month or from day-of-week (never both)."""

    kind: _DayKind
    #: days of the month (``days``) or days of the week 1=SUN..7=SAT (``weekdays``)
    values: tuple[int, ...] = ()
    #: the day of ``15W``, the weekday of ``6L`` and ``6#3``
    day: int = 0
    #: the 3 of ``6#3``
    nth: int = 0


def _eb_weekday(d: date) -> int:
    """EventBridge's day of the week of ``d``: 1=SUN .. 7=SAT."""
    return (d.weekday() + 1) % 7 + 1


@lru_cache(maxsize=8192)
def _month_days(days: _Days, year: int, month: int) -> tuple[int, ...]:
    """The days of ``year``-``month`` that ``days`` selects, ascending."""
    last = calendar.monthrange(year, month)[1]
    first_weekday = _eb_weekday(date(year, month, 1))  # 1=SUN..7=SAT

    def weekday(day: int) -> int:
        return (first_weekday - 1 + day - 1) % 7 + 1

    if days.kind == "days":
        return tuple(d for d in days.values if d <= last)
    if days.kind == "last":
        return (last,)
    if days.kind in ("last-weekday", "nearest-weekday"):
        target = last if days.kind == "last-weekday" else days.day
        if target > last:
            return ()  # 31W in a 30-day month: like plain 31, no firing that month
        wd = weekday(target)
        if wd == 7:  # Saturday: the Friday before, or Monday the 3rd for the 1st
            target = target + 2 if target == 1 else target - 1
        elif wd == 1:  # Sunday: the Monday after, or the Friday before for the last day
            target = target - 2 if target == last else target + 1
        return (target,)
    if days.kind == "weekdays":
        return tuple(d for d in range(1, last + 1) if weekday(d) in days.values)
    first = 1 + (days.day - first_weekday) % 7  # first such weekday in the month
    if days.kind == "last-dow":
        return (first + 7 * ((last - first) // 7),)
    nth = first + 7 * (days.nth - 1)  # "nth"
    return (nth,) if nth <= last else ()


def _day_of_month(text: str) -> _Days | None:
    f = _DAY_OF_MONTH
    upper = text.upper()
    if text == "?":
        return None
    if upper == "L":
        return _Days("last")
    if upper == "LW":
        return _Days("last-weekday")
    if re.fullmatch(r"L-[0-9]*", upper):
        raise ScheduleError(
            f"day-of-month: {text} (days before the last) is not supported by EventBridge; "
            "use L (last day) or LW (last weekday)"
        )
    match = re.fullmatch(r"([0-9]+)W", upper)
    if match:
        return _Days("nearest-weekday", day=_value(match.group(1), f))
    if "W" in upper:
        raise ScheduleError("day-of-month: W takes a single day, like 15W or LW")
    if "L" in upper:
        raise ScheduleError("day-of-month: L stands alone (L or LW), not in a list or range")
    if "?" in text:
        raise ScheduleError("day-of-month: ? stands alone")
    return _Days("days", values=_values(text, f))


def _day_of_week(text: str) -> _Days | None:
    f = _DAY_OF_WEEK
    upper = text.upper()
    if text == "?":
        return None
    if upper == "L":  # the last day of the week
        return _Days("weekdays", values=(7,))
    if "#" in text:
        match = re.fullmatch(r"([^#,\-/]+)#([0-9]+)", text)
        if not match:
            raise ScheduleError(
                f"day-of-week: {text!r}: # takes one day and a week number, like 6#3; "
                "EventBridge allows only one # expression in the field"
            )
        nth = int(match.group(2))
        if not 1 <= nth <= 5:
            raise ScheduleError(f"day-of-week: {text}: the week number after # must be 1-5")
        return _Days("nth", day=_value(match.group(1), f), nth=nth)
    if re.fullmatch(r"L-[0-9]*", upper):
        raise ScheduleError(
            f"day-of-week: {text} is not supported by EventBridge; use L or a day with L, like 6L"
        )
    match = re.fullmatch(r"([0-9]+|[A-Z]{3})L", upper)
    if match:
        return _Days("last-dow", day=_value(match.group(1), f))
    if re.fullmatch(r".*[0-9]W", upper):
        raise ScheduleError("day-of-week: W is only allowed in day-of-month (like 15W)")
    if any(item.upper() == "L" or item.upper().endswith("L") for item in text.split(",")):
        raise ScheduleError(
            "day-of-week: L stands alone (L, or a day with L like 6L), not in a list"
        )
    if "?" in text:
        raise ScheduleError("day-of-week: ? stands alone")
    return _Days("weekdays", values=_values(text, f))


# --- cron(): the trigger -----------------------------------------------------------


@dataclass(frozen=True)
class _CronSpec:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: _Days
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
        at_utc = _as_utc(at, "at")
        local = min(max(at_utc, _CRON_LOW), _CRON_HIGH).astimezone(self._tz)
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
        at_utc = _as_utc(at, "at")
        local = min(max(at_utc, _CRON_LOW), _CRON_HIGH).astimezone(self._tz)
        for wall in self._walls_up(_wall(local)):
            instant = self._instant(wall)
            if instant is not None and instant > at_utc:
                return instant
        return None

    def previous(self, t: datetime) -> datetime | None:
        before = _before(_as_utc(t, "t"))
        return None if before is None else self.slot(before)

    def _instant(self, wall: _Wall) -> datetime | None:
        """The UTC instant of a local wall time (first one if repeated); None if skipped."""
        year, month, day, hour, minute = wall
        local = datetime(year, month, day, hour, minute, tzinfo=self._tz)
        if self._tz is UTC:
            return local
        instant = local.astimezone(UTC)
        if _wall(instant.astimezone(self._tz)) != wall:
            return None  # in the gap of a spring-forward: this wall time never happens
        return instant

    def _walls_up(self, start: _Wall) -> Iterator[_Wall]:
        """Matching wall times >= ``start``, ascending."""
        spec = self._spec
        y0, mo0, d0, h0, mi0 = start
        for y in spec.years[bisect_left(spec.years, y0) :]:
            at_y = y == y0
            for mo in spec.months[bisect_left(spec.months, mo0 if at_y else 1) :]:
                at_mo = at_y and mo == mo0
                days = _month_days(spec.days, y, mo)
                for d in days[bisect_left(days, d0 if at_mo else 1) :]:
                    at_d = at_mo and d == d0
                    for h in spec.hours[bisect_left(spec.hours, h0 if at_d else 0) :]:
                        at_h = at_d and h == h0
                        for mi in spec.minutes[bisect_left(spec.minutes, mi0 if at_h else 0) :]:
                            yield (y, mo, d, h, mi)

    def _walls_down(self, start: _Wall) -> Iterator[_Wall]:
        """Matching wall times <= ``start``, descending."""
        spec = self._spec
        y0, mo0, d0, h0, mi0 = start
        for y in reversed(spec.years[: bisect_right(spec.years, y0)]):
            at_y = y == y0
            for mo in reversed(spec.months[: bisect_right(spec.months, mo0 if at_y else 12)]):
                at_mo = at_y and mo == mo0
                days = _month_days(spec.days, y, mo)
                for d in reversed(days[: bisect_right(days, d0 if at_mo else 31)]):
                    at_d = at_mo and d == d0
                    for h in reversed(spec.hours[: bisect_right(spec.hours, h0 if at_d else 23)]):
                        at_h = at_d and h == h0
                        hi = mi0 if at_h else 59
                        for mi in reversed(spec.minutes[: bisect_right(spec.minutes, hi)]):
                            yield (y, mo, d, h, mi)


def _wall(local: datetime) -> _Wall:
    return (local.year, local.month, local.day, local.hour, local.minute)


def _cron_trigger(expression: str, spec: _CronSpec, timezone: str, tz: tzinfo) -> CronTrigger:
    trigger = CronTrigger(expression=expression, timezone=timezone, _spec=spec, _tz=tz)
    if trigger.next_after(_CRON_LOW) is None:
        if next(trigger._walls_up(_wall(_CRON_LOW)), None) is None:
            reason = f"no date and time in {YEAR_MIN}-{YEAR_MAX} matches all of its fields"
        else:
            reason = f"every time it names is skipped by daylight saving time in {timezone}"
        raise ScheduleError(f"{expression} never fires: {reason}")
    return trigger


def _cron_spec(body: str) -> _CronSpec:
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
        raise ScheduleError(f"cron(...) needs 6 fields ({_FIELD_NAMES}), got {len(fields)}{hint}")
    minutes, hours, dom, month, dow, year = fields
    if dom == "?" and dow == "?":
        raise ScheduleError(
            "day-of-month and day-of-week cannot both be ?; set one of them, like * in day-of-month"
        )
    if dom != "?" and dow != "?":
        raise ScheduleError("day-of-month and day-of-week cannot both be set; use ? in one of them")
    spec_minutes = _values(minutes, _MINUTES)
    spec_hours = _values(hours, _HOURS)
    by_month = _day_of_month(dom)
    by_week = _day_of_week(dow)
    spec_months = _values(month, _MONTH)
    spec_years = _values(year, _YEAR)
    days = by_month if by_month is not None else by_week
    assert days is not None  # exactly one of them is "?"
    return _CronSpec(spec_minutes, spec_hours, days, spec_months, spec_years)


# --- parse -------------------------------------------------------------------------


def _zone(timezone: str) -> tzinfo:
    if timezone in _UTC_KEYS:
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = sorted(available_timezones() | _UTC_KEYS)
    close = [key for key in known if key.lower() == timezone.lower()] or difflib.get_close_matches(
        timezone, known, n=1, cutoff=0.8
    )
    hint = f"did you mean {close[0]}?" if close else "use an IANA name such as Europe/Berlin or UTC"
    raise ScheduleError(f"unknown time zone {timezone!r}; {hint}", field="timezone")


_FORM = re.compile(r"(cron|rate|at)\((.*)\)", re.DOTALL)
_LOOSE_FORM = re.compile(r"([A-Za-z]+)\s*\(", re.DOTALL)


def parse(expression: str, timezone: str = "UTC") -> Trigger:
    """Parse an EventBridge ``cron(...)`` or ``rate(...)`` expression for ``timezone``.

    Raises :class:`ScheduleError` with ``field="timezone"`` for an unknown IANA zone and
    ``field="expression"`` for anything wrong with the expression, including a cron that
    never fires. Results are cached: a trigger is immutable.
    """
    if not isinstance(expression, str):
        raise ScheduleError(f"the schedule expression must be text, got {expression!r}")
    if not isinstance(timezone, str):
        raise ScheduleError(f"the time zone must be text, got {timezone!r}", field="timezone")
    return _parse(expression.strip(), timezone.strip())


@lru_cache(maxsize=512)
def _parse(expression: str, timezone: str) -> Trigger:
    match = _FORM.fullmatch(expression)
    if match is None:
        _explain_form(expression)
    assert match is not None  # _explain_form always raises
    kind, body = match.groups()
    if "(" in body or ")" in body:
        raise ScheduleError(f"{kind}(...): unbalanced parentheses in {expression!r}")
    if kind == "at":
        raise ScheduleError(
            "at(...) one-time schedules are not supported; use cron(...) or rate(...)"
        )
    if kind == "rate":
        rate = _parse_rate(expression, body, timezone)
        _zone(timezone)
        return rate
    spec = _cron_spec(body)  # syntax first, then the zone, then "does it ever fire"
    return _cron_trigger(expression, spec, timezone, _zone(timezone))


def _explain_form(expression: str) -> None:
    if expression == "":
        raise ScheduleError("the schedule expression is empty; write cron(...) or rate(...)")
    loose = _LOOSE_FORM.match(expression)
    if loose is not None and loose.group(1).lower() in ("cron", "rate", "at"):
        word = loose.group(1)
        if word != word.lower():
            raise ScheduleError(f"write {word.lower()}(...) in lower case, not {word}(...)")
        if loose.group(0) != f"{word}(":
            raise ScheduleError(f"no space is allowed between {word} and (")
        raise ScheduleError(f"{word}(...) must end with a closing parenthesis")
    raise ScheduleError(
        f"{expression!r} is not a schedule expression; write "
        "cron(minutes hours day-of-month month day-of-week year) or rate(value unit)"
    )
