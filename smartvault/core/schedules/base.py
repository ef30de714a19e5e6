"""What every schedule shares: the Trigger interface, its error, and instant checks."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Literal
from typing import Protocol


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
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Every cron firing lies within [1970-01-01 local, 2199-12-31 23:59 local]; UTC offsets
# stay within a day, so instants outside these bounds can be clamped to them.
CRON_LOW = datetime(1969, 12, 30, tzinfo=UTC)
CRON_HIGH = datetime(2200, 1, 2, tzinfo=UTC)
_START_OF_TIME = datetime.min.replace(tzinfo=UTC)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
UTC_KEYS = frozenset({"UTC", "Etc/UTC"})

Wall = tuple[int, int, int, int, int]  # year, month, day, hour, minute on the local clock


def checked_utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC; ValueError for a naive datetime (a programming error)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # within a day of datetime.min/max: keep it at the edge
        return _START_OF_TIME if value.year < 2000 else _END_OF_TIME


def just_before(t: datetime) -> datetime | None:
    """The instant one microsecond before ``t`` (UTC), None at the start of time."""
    try:
        return t - timedelta(microseconds=1)
    except OverflowError:
        return None
