"""Retention rules over one lineage: keep_last, max_age and restic-style calendar buckets."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.core.model import Duration
from smartvault.core.model import Retention
from smartvault.core.retention import Point
from smartvault.core.retention import evaluate
from smartvault.core.retention import explain_not_kept
from smartvault.core.retention import newest_first
from tests.factories import utc

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
AT = utc(2026, 11, 28, 17)


def points_at(*moments: datetime) -> list[Point]:
    """One point per moment, named p0, p1, … in the order given."""
    return [Point(f"p{i}", moment, f"snap-{i:04d}") for i, moment in enumerate(moments)]


def kept_ids(result: dict[str, tuple[str, ...]]) -> set[str]:
    return {point_id for point_id, rules in result.items() if rules}


class Case(NamedTuple):
    moments: tuple[datetime, ...]
    retention: Retention
    at: datetime
    tz: ZoneInfo
    kept: set[str]


CASES = {
    "keep_last keeps the N newest": Case(
        (utc(2026, 11, 20), utc(2026, 11, 25), utc(2026, 11, 21), utc(2026, 11, 24)),
        Retention(keep_last=2),
        AT,
        UTC_ZONE,
        {"p1", "p3"},
    ),
    "keep_last below one still keeps the newest": Case(
        (utc(2026, 11, 20), utc(2026, 11, 25)), Retention(keep_last=0), AT, UTC_ZONE, {"p1"}
    ),
    "max_age keeps what is younger, strictly": Case(
        (
            AT - timedelta(days=7),  # exactly max_age old: goes
            AT - timedelta(days=7) + timedelta(seconds=1),
            AT - timedelta(days=30),
        ),
        Retention(keep_last=1, max_age=Duration.parse("7d")),
        AT,
        UTC_ZONE,
        {"p1"},
    ),
    "daily keeps the newest point of each day": Case(
        (
            utc(2026, 11, 27, 1),
            utc(2026, 11, 27, 23),
            utc(2026, 11, 26, 5),
            utc(2026, 11, 26, 4),
            utc(2026, 11, 25, 9),
        ),
        Retention(keep_last=1, daily=2),
        AT,
        UTC_ZONE,
        {"p1", "p2"},
    ),
    "daily counts only days that have points": Case(
        (utc(2026, 11, 27), utc(2026, 11, 20), utc(2026, 11, 10), utc(2026, 11, 1)),
        Retention(keep_last=1, daily=3),
        AT,
        UTC_ZONE,
        {"p0", "p1", "p2"},
    ),
    "a month with no points does not use up a monthly slot": Case(
        (utc(2026, 1, 10), utc(2026, 1, 20), utc(2026, 2, 5), utc(2026, 4, 1), utc(2026, 4, 2)),
        Retention(keep_last=1, monthly=3),
        AT,
        UTC_ZONE,
        {"p1", "p2", "p4"},
    ),
    "29 February is its own day and belongs to February": Case(
        (utc(2028, 2, 28, 12), utc(2028, 2, 29, 12), utc(2028, 3, 1, 12)),
        Retention(keep_last=1, monthly=2),
        utc(2028, 3, 2),
        UTC_ZONE,
        {"p1", "p2"},
    ),
    "29 February counted by daily": Case(
        (utc(2028, 2, 28, 12), utc(2028, 2, 29, 12), utc(2028, 2, 29, 1), utc(2028, 3, 1, 12)),
        Retention(keep_last=1, daily=3),
        utc(2028, 3, 2),
        UTC_ZONE,
        {"p0", "p1", "p3"},
    ),
    "31 December 2026 and 2 January 2027 share ISO week 2026-W53": Case(
        (utc(2026, 12, 20), utc(2026, 12, 31), utc(2027, 1, 2), utc(2027, 1, 4)),
        Retention(keep_last=1, weekly=3),
        utc(2027, 1, 5),
        UTC_ZONE,
        {"p0", "p2", "p3"},
    ),
    "yearly keeps the newest of each year": Case(
        (utc(2024, 6, 1), utc(2024, 12, 31, 23), utc(2025, 1, 1), utc(2026, 3, 1)),
        Retention(keep_last=1, yearly=3),
        AT,
        UTC_ZONE,
        {"p1", "p2", "p3"},
    ),
    "hourly keeps the newest of each hour": Case(
        (utc(2026, 11, 28, 10, 5), utc(2026, 11, 28, 10, 55), utc(2026, 11, 28, 11, 1)),
        Retention(keep_last=1, hourly=5),
        AT,
        UTC_ZONE,
        {"p1", "p2"},
    ),
    "daily buckets follow the schedule's time zone": Case(
        # In Berlin (CET, +1): p0 is 23:30 on the 28th, p1 00:30 on the 29th and
        # p2 00:30 on the 28th, so p0 and p2 share a day; in UTC p0 and p1 do.
        (utc(2026, 11, 28, 22, 30), utc(2026, 11, 28, 23, 30), utc(2026, 11, 27, 23, 30)),
        Retention(keep_last=1, daily=3),
        utc(2026, 11, 30),
        BERLIN,
        {"p0", "p1"},
    ),
    "the same points in UTC fall into fewer days": Case(
        (utc(2026, 11, 28, 22, 30), utc(2026, 11, 28, 23, 30), utc(2026, 11, 27, 23, 30)),
        Retention(keep_last=1, daily=3),
        utc(2026, 11, 30),
        UTC_ZONE,
        {"p1", "p2"},
    ),
    "a DST week in Berlin is one ISO week of local dates": Case(
        # Mon 23 Mar 00:30 CET = Sun 22 Mar 23:30Z; Sun 29 Mar (DST starts) 23:30 CEST = 21:30Z
        (utc(2026, 3, 22, 23, 30), utc(2026, 3, 29, 21, 30), utc(2026, 3, 29, 22, 30)),
        Retention(keep_last=1, weekly=2),
        utc(2026, 4, 1),
        BERLIN,
        {"p1", "p2"},
    ),
    "the repeated hour of a DST fall-back night is one hourly period, as in restic": Case(
        # 01:30 EDT (05:30Z) and 01:30 EST (06:30Z) on 1 November 2026 in New York: both
        # at 01:30 on the wall clock, so hourly keeps the newer only
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)),
        Retention(keep_last=1, hourly=2),
        utc(2026, 11, 2),
        NEW_YORK,
        {"p1"},
    ),
    "points created after at are kept (clock skew)": Case(
        (AT + timedelta(minutes=5), AT + timedelta(minutes=10), AT - timedelta(days=2)),
        Retention(keep_last=1),
        AT,
        UTC_ZONE,
        {"p0", "p1"},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_retention_keeps_exactly_the_expected_points(case: Case) -> None:
    result = evaluate(points_at(*case.moments), case.retention, case.at, case.tz)
    assert kept_ids(result) == case.kept


def test_kept_by_names_every_rule_that_keeps_a_point_in_canonical_order() -> None:
    points = points_at(utc(2026, 11, 28, 3), utc(2026, 11, 27, 3), utc(2026, 10, 1))
    retention = Retention(keep_last=1, max_age=Duration.parse("7d"), daily=2, monthly=2)
    result = evaluate(points, retention, AT, UTC_ZONE)
    assert result == {
        "p0": ("keep_last", "max_age", "daily", "monthly"),
        "p1": ("max_age", "daily"),
        "p2": ("monthly",),
    }


def test_a_future_point_not_kept_by_any_rule_is_kept_by_future() -> None:
    points = points_at(AT + timedelta(hours=2), AT + timedelta(hours=1))
    assert evaluate(points, Retention(keep_last=1), AT, UTC_ZONE) == {
        "p0": ("keep_last",),
        "p1": ("future",),
    }


def test_ties_in_creation_time_are_broken_by_the_smallest_snapshot_id() -> None:
    moment = utc(2026, 11, 27, 3)
    points = [
        Point("b", moment, "snap-2"),
        Point("a", moment, "snap-9"),
        Point("c", moment, "snap-1"),
    ]
    assert [p.id for p in newest_first(points)] == ["c", "b", "a"]
    assert kept_ids(evaluate(points, Retention(keep_last=1), AT, UTC_ZONE)) == {"c"}


def test_ties_in_time_and_snapshot_id_are_broken_by_point_id() -> None:
    moment = utc(2026, 11, 27, 3)
    points = [Point("z", moment, "snap-1"), Point("y", moment, "snap-1")]
    assert kept_ids(evaluate(points, Retention(keep_last=1), AT, UTC_ZONE)) == {"y"}


def test_a_tie_inside_a_daily_bucket_keeps_the_point_that_sorts_first() -> None:
    moment = utc(2026, 11, 27, 3)
    points = [
        Point("b", moment, "snap-2"),
        Point("a", moment, "snap-1"),
        Point("old", utc(2026, 11, 1)),
    ]
    result = evaluate(points, Retention(keep_last=1, daily=1), AT, UTC_ZONE)
    assert result["a"] == ("keep_last", "daily")
    assert result["b"] == ()


def test_no_points_keep_nothing() -> None:
    assert evaluate([], Retention(keep_last=3, daily=7), AT, UTC_ZONE) == {}


@pytest.mark.parametrize(
    ("retention", "reason"),
    [
        (Retention(keep_last=3), "not kept by keep_last 3"),
        (
            Retention(keep_last=3, max_age=Duration.parse("7d"), daily=7),
            "older than max_age 7d; not kept by keep_last 3, daily 7",
        ),
        (
            Retention(keep_last=0, hourly=24, weekly=4, monthly=12, yearly=3),
            "not kept by keep_last 1, hourly 24, weekly 4, monthly 12, yearly 3",
        ),
    ],
    ids=["keep_last only", "max_age and daily", "every bucket"],
)
def test_the_reason_for_deleting_names_the_rules_a_reviewer_can_check(
    retention: Retention, reason: str
) -> None:
    assert explain_not_kept(retention) == reason


moments = st.lists(
    # hypothesis wants naive bounds; the points themselves are aware UTC
    st.datetimes(
        min_value=utc(2024, 1, 1).replace(tzinfo=None),
        max_value=utc(2027, 12, 31).replace(tzinfo=None),
        timezones=st.just(UTC),
    ),
    max_size=40,
)
retentions = st.builds(
    Retention,
    keep_last=st.integers(0, 5),
    max_age=st.sampled_from([None, Duration.parse("36h"), Duration.parse("30d")]),
    hourly=st.integers(0, 4),
    daily=st.integers(0, 7),
    weekly=st.integers(0, 5),
    monthly=st.integers(0, 12),
    yearly=st.integers(0, 3),
)
zones = st.sampled_from([UTC_ZONE, BERLIN, NEW_YORK, ZoneInfo("Asia/Kolkata")])


@settings(max_examples=200, deadline=None)
@given(moments=moments, retention=retentions, tz=zones, seed=st.integers())
def test_retention_does_not_depend_on_the_order_of_the_points(
    moments: list[datetime], retention: Retention, tz: ZoneInfo, seed: int
) -> None:
    points = points_at(*moments)
    shuffled = list(points)
    random.Random(seed).shuffle(shuffled)
    at = utc(2026, 6, 1)
    assert evaluate(points, retention, at, tz) == evaluate(shuffled, retention, at, tz)


@settings(max_examples=200, deadline=None)
@given(moments=moments, retention=retentions, tz=zones)
def test_retention_always_keeps_the_keep_last_newest_and_each_bucket_at_most_n(
    moments: list[datetime], retention: Retention, tz: ZoneInfo
) -> None:
    points = points_at(*moments)
    result = evaluate(points, retention, utc(2026, 6, 1), tz)
    newest = [p.id for p in newest_first(points)[: max(1, retention.keep_last)]]
    assert all("keep_last" in result[i] for i in newest)
    for rule in ("hourly", "daily", "weekly", "monthly", "yearly"):
        assert sum(rule in rules for rules in result.values()) <= getattr(retention, rule)


@settings(max_examples=150, deadline=None)
@given(moments=moments, retention=retentions, tz=zones, extra=st.integers(1, 3))
def test_a_larger_daily_count_never_keeps_fewer_points(
    moments: list[datetime], retention: Retention, tz: ZoneInfo, extra: int
) -> None:
    points = points_at(*moments)
    at = utc(2026, 6, 1)
    wider = replace(retention, daily=retention.daily + extra)
    assert kept_ids(evaluate(points, retention, at, tz)) <= kept_ids(
        evaluate(points, wider, at, tz)
    )


def _oracle_periods(tz: ZoneInfo) -> dict[str, Callable[[datetime], object]]:
    """Each bucket's period of an instant, written independently of retention.py.

    Hours are wall-clock hours, as restic keys them: the hour repeated when DST ends is
    one period (the oracle reads the local date and hour and nothing else).
    """

    def local(moment: datetime) -> datetime:
        return moment.astimezone(tz)

    return {
        "hourly": lambda m: (local(m).date(), local(m).hour),
        "daily": lambda m: local(m).date(),
        "weekly": lambda m: local(m).isocalendar()[:2],
        "monthly": lambda m: (local(m).year, local(m).month),
        "yearly": lambda m: local(m).year,
    }


# Dense points where the calendar is awkward, narrow enough that the few newest periods
# the buckets look at hold them: the end of DST in New York, Berlin, Santiago (the clock
# goes back across midnight) and Lord Howe (by half an hour), and the turn of 2026/2027
# (ISO week 2026-W53 spans both years).
def _naive(*args: int) -> datetime:
    # hypothesis wants naive bounds; the points themselves are aware UTC
    return utc(*args).replace(tzinfo=None)


_AWKWARD = [
    # (zone, first, last): each ends an hour after the repeated hour, among the newest
    ("America/New_York", _naive(2026, 11, 1, 3), _naive(2026, 11, 1, 7)),
    ("Europe/Berlin", _naive(2026, 10, 24, 22), _naive(2026, 10, 25, 2)),
    ("America/Santiago", _naive(2026, 4, 5, 0), _naive(2026, 4, 5, 4)),
    ("Australia/Lord_Howe", _naive(2026, 4, 4, 12), _naive(2026, 4, 4, 16)),
    ("UTC", _naive(2026, 12, 26), _naive(2027, 1, 6)),  # 2026-W53: Dec 28 to Jan 3
    ("Europe/Berlin", _naive(2026, 12, 26), _naive(2027, 1, 6)),
]
zoned_moments = st.tuples(moments, zones) | st.sampled_from(_AWKWARD).flatmap(
    lambda awkward: st.tuples(
        st.lists(
            st.datetimes(min_value=awkward[1], max_value=awkward[2], timezones=st.just(UTC)),
            max_size=40,
        ),
        st.just(ZoneInfo(awkward[0])),
    )
)


@settings(max_examples=200, deadline=None)
@given(zoned=zoned_moments, retention=retentions)
def test_each_bucket_keeps_the_newest_point_of_its_last_n_periods_with_points(
    zoned: tuple[list[datetime], ZoneInfo], retention: Retention
) -> None:
    instants, tz = zoned
    # restic: of the periods that HAVE points, the N most recent; in each, the newest point
    points = points_at(*instants)
    result = evaluate(points, retention, utc(2026, 6, 1), tz)
    ordered = newest_first(points)
    for rule, period_of in _oracle_periods(tz).items():
        newest_of: dict[object, str] = {}
        for point in ordered:  # newest first: the first point seen in a period is its newest
            newest_of.setdefault(period_of(point.created_at), point.id)
        expected = set(list(newest_of.values())[: getattr(retention, rule)])
        assert {i for i, rules in result.items() if rule in rules} == expected, rule
