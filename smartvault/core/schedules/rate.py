"""``rate(N unit)``: firings at multiples of the interval since the Unix epoch, in UTC."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from smartvault.core.schedules.base import EPOCH
from smartvault.core.schedules.base import ScheduleError
from smartvault.core.schedules.base import checked_utc
from smartvault.core.schedules.base import just_before

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
        at_utc = checked_utc(at, "at")
        periods = (at_utc - EPOCH) // self.interval
        try:
            return EPOCH + periods * self.interval
        except OverflowError:
            return None

    def next_after(self, at: datetime) -> datetime | None:
        at_utc = checked_utc(at, "at")
        periods = (at_utc - EPOCH) // self.interval
        try:
            return EPOCH + (periods + 1) * self.interval
        except OverflowError:
            return None

    def previous(self, t: datetime) -> datetime | None:
        before = just_before(checked_utc(t, "t"))
        return None if before is None else self.slot(before)


def parse_rate(expression: str, body: str, timezone: str) -> RateTrigger:
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
