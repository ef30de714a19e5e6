"""The six fields of an EventBridge ``cron()`` expression, read into sorted values."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from functools import lru_cache
from typing import Literal

from smartvault.core.schedules.base import YEAR_MAX
from smartvault.core.schedules.base import YEAR_MIN
from smartvault.core.schedules.base import ScheduleError

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


MINUTES = _Field("minutes", 0, 59)
HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
MONTH = _Field("month", 1, 12, _MONTH_NAMES, "month")
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _DAY_NAMES, "day")
YEAR = _Field("year", YEAR_MIN, YEAR_MAX)

FIELD_NAMES = "minutes hours day-of-month month day-of-week year"
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
        if f is MINUTES and step > limit:
            hint = f"; a step cannot reach into the next hour: use rate({step} minutes)"
        elif f is HOURS and step > limit:
            hint = f"; a step cannot reach into the next day: use rate({step} hours)"
        raise ScheduleError(f"{f.name}: step {step} is out of range 1-{limit}{hint}")
    return step


def field_values(text: str, f: _Field) -> tuple[int, ...]:
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
class Days:
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
def month_days(days: Days, year: int, month: int) -> tuple[int, ...]:
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


def day_of_month(text: str) -> Days | None:
    f = _DAY_OF_MONTH
    upper = text.upper()
    if text == "?":
        return None
    if upper == "L":
        return Days("last")
    if upper == "LW":
        return Days("last-weekday")
    if re.fullmatch(r"L-[0-9]*", upper):
        raise ScheduleError(
            f"day-of-month: {text} (days before the last) is not supported by EventBridge; "
            "use L (last day) or LW (last weekday)"
        )
    match = re.fullmatch(r"([0-9]+)W", upper)
    if match:
        return Days("nearest-weekday", day=_value(match.group(1), f))
    if "W" in upper:
        raise ScheduleError("day-of-month: W takes a single day, like 15W or LW")
    if "L" in upper:
        raise ScheduleError("day-of-month: L stands alone (L or LW), not in a list or range")
    if "?" in text:
        raise ScheduleError("day-of-month: ? stands alone")
    return Days("days", values=field_values(text, f))


def day_of_week(text: str) -> Days | None:
    f = _DAY_OF_WEEK
    upper = text.upper()
    if text == "?":
        return None
    if upper == "L":  # the last day of the week
        return Days("weekdays", values=(7,))
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
        return Days("nth", day=_value(match.group(1), f), nth=nth)
    if re.fullmatch(r"L-[0-9]*", upper):
        raise ScheduleError(
            f"day-of-week: {text} is not supported by EventBridge; use L or a day with L, like 6L"
        )
    match = re.fullmatch(r"([0-9]+|[A-Z]{3})L", upper)
    if match:
        return Days("last-dow", day=_value(match.group(1), f))
    if re.fullmatch(r".*[0-9]W", upper):
        raise ScheduleError("day-of-week: W is only allowed in day-of-month (like 15W)")
    if any(item.upper() == "L" or item.upper().endswith("L") for item in text.split(",")):
        raise ScheduleError(
            "day-of-week: L stands alone (L, or a day with L like 6L), not in a list"
        )
    if "?" in text:
        raise ScheduleError("day-of-week: ? stands alone")
    return Days("weekdays", values=field_values(text, f))
