"""Which recovery points of one lineage a retention keeps, and why (docs/retention.md).

Pure: the evaluation time ``at`` and the time zone of the calendar buckets are
parameters; nothing here reads the clock.

Order. The points of a lineage are ordered newest first by ``created_at``; points
created at the same instant are ordered by their smallest snapshot id, then by
their id (both ascending). :func:`order_key` is that order and everything in
SmartVault that says "newest" uses it.

Rules. A point is kept when ANY rule keeps it:

- ``keep_last`` N: the N first points in that order (at least one, whatever the
  retention says, so the newest point of a lineage is never deleted).
- ``max_age``: ``created_at > at - max_age``.
- ``hourly``/``daily``/``weekly``/``monthly``/``yearly`` N (restic's semantics):
  walking newest to oldest, the first (newest) point of each period is kept until
  N periods have been kept. Periods without points do not count. Periods are
  read in the schedule's time zone: hourly = local hour (the repeated hour at
  the end of daylight saving time is one period, as in restic), daily = local date, weekly =
  ISO year and week, monthly = year and month, yearly = year.
- ``future``: a point created after ``at`` (clock skew, or ``plan --at`` in the
  past) is always kept: nothing can be said about its age yet.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Protocol
from typing import TypeVar
from zoneinfo import ZoneInfo

from smartvault.core.model import Retention

KEEP_LAST = "keep_last"
MAX_AGE = "max_age"
HOURLY = "hourly"
DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"
YEARLY = "yearly"
FUTURE = "future"

#: the order in which ``kept_by`` names its rules
RULES = (KEEP_LAST, MAX_AGE, HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY, FUTURE)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PeriodKey = tuple[int, ...]


class PointLike(Protocol):
    """What retention reads of a recovery point; :class:`Point` is the plain one."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def snapshot_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Point:
    """A completed recovery point, as far as retention cares."""

    #: unique within the lineage (the recovery point id)
    id: str
    #: aware; the earliest start time of its snapshots
    created_at: datetime
    #: its smallest snapshot id: breaks ties between points created at the same instant
    snapshot_id: str = ""


P = TypeVar("P", bound=PointLike)


def order_key(point: PointLike) -> tuple[timedelta, str, str]:
    """Sort key putting the newest point first; ties by smallest snapshot id, then id."""
    return (_EPOCH - point.created_at, point.snapshot_id, point.id)


def newest_first(points: Iterable[P]) -> list[P]:
    """The points in retention order (see :func:`order_key`)."""
    return sorted(points, key=order_key)


def _hour(local: datetime) -> PeriodKey:
    # Wall-clock time, as restic keys it: the 01:00-02:00 that repeats on a DST fall-back
    # night is one period (``fold`` is deliberately left out).
    return (local.year, local.month, local.day, local.hour)


def _day(local: datetime) -> PeriodKey:
    return (local.year, local.month, local.day)


def _week(local: datetime) -> PeriodKey:
    iso = local.isocalendar()
    return (iso.year, iso.week)


def _month(local: datetime) -> PeriodKey:
    return (local.year, local.month)


def _year(local: datetime) -> PeriodKey:
    return (local.year,)


_BUCKETS: tuple[tuple[str, Callable[[datetime], PeriodKey]], ...] = (
    (HOURLY, _hour),
    (DAILY, _day),
    (WEEKLY, _week),
    (MONTHLY, _month),
    (YEARLY, _year),
)


def evaluate(
    points: Iterable[PointLike], retention: Retention, at: datetime, tz: ZoneInfo
) -> dict[str, tuple[str, ...]]:
    """For each point id, the rules that keep it (in :data:`RULES` order); ``()`` = not kept.

    ``points`` are the completed recovery points of ONE lineage, in any order.
    """
    return evaluate_ordered(newest_first(points), retention, at, tz)


def evaluate_ordered(
    ordered: Sequence[PointLike], retention: Retention, at: datetime, tz: ZoneInfo
) -> dict[str, tuple[str, ...]]:
    """:func:`evaluate` for points already in :func:`order_key` order (saves a sort)."""
    keep_last = max(1, retention.keep_last)
    cutoff = None if retention.max_age is None else _before(at, retention.max_age.delta)
    buckets = [
        (name, period_of, count)
        for name, period_of in _BUCKETS
        if (count := getattr(retention, name)) > 0
    ]
    remaining = [count for _, _, count in buckets]
    last: list[PeriodKey | None] = [None] * len(buckets)
    calendar = bool(buckets)

    result: dict[str, tuple[str, ...]] = {}
    for index, point in enumerate(ordered):
        rules: list[str] = []
        if index < keep_last:
            rules.append(KEEP_LAST)
        if cutoff is not None and point.created_at > cutoff:
            rules.append(MAX_AGE)
        if calendar:
            local = point.created_at.astimezone(tz)
            for i, (name, period_of, _) in enumerate(buckets):
                if remaining[i] == 0:
                    continue
                period = period_of(local)
                # newest first, so a period differing from the last kept one is a new period
                if period != last[i]:
                    last[i] = period
                    remaining[i] -= 1
                    rules.append(name)
            calendar = any(remaining)
        if not rules and point.created_at > at:
            rules.append(FUTURE)
        result[point.id] = _interned(tuple(rules))
    return result


def _before(at: datetime, delta: timedelta) -> datetime:
    """``at - delta``; the first representable instant when that lies before year 1.

    A valid duration such as ``999999d`` (a resource tag anyone who may tag an instance
    can set) reaches back past datetime's range: it means "keep everything", never an
    OverflowError that would stop the plan of every policy.
    """
    try:
        return at - delta
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


_INTERNED: dict[tuple[str, ...], tuple[str, ...]] = {}


def _interned(rules: tuple[str, ...]) -> tuple[str, ...]:
    # A plan holds one kept_by per kept point but only a few distinct ones: share them.
    # Bounded by the subsets of RULES in order (2**8).
    return _INTERNED.setdefault(rules, rules)


def explain_not_kept(retention: Retention) -> str:
    """Why no rule keeps a point: ``older than max_age 7d; not kept by keep_last 3, daily 7``."""
    counted = [f"{KEEP_LAST} {max(1, retention.keep_last)}"]
    counted.extend(
        f"{name} {count}" for name, _ in _BUCKETS if (count := getattr(retention, name)) > 0
    )
    not_kept = "not kept by " + ", ".join(counted)
    if retention.max_age is None:
        return not_kept
    return f"older than {MAX_AGE} {retention.max_age}; {not_kept}"
