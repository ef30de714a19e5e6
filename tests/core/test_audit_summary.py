"""The audit report's numbers: per-day counts, failures first, RPO per policy."""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from typing import Any

from smartvault.core.audit_summary import summarise
from smartvault.core.model import AuditRecord
from smartvault.core.model import PolicySet
from smartvault.core.model import Schedule
from tests.factories import make_policy
from tests.factories import make_record
from tests.factories import utc

NOW = utc(2026, 12, 2, 6, 0)


def record(**fields: Any) -> AuditRecord:
    return make_record(NOW, **fields)


def test_each_day_of_the_window_counts_succeeded_creates_and_deletes_only():
    records = [
        record(timestamp=utc(2026, 12, 1, 3, 0)),
        record(timestamp=utc(2026, 12, 1, 23, 59)),
        record(timestamp=utc(2026, 12, 1, 4, 0), action="delete"),
        record(timestamp=utc(2026, 12, 1, 5, 0), outcome="failed"),
        record(timestamp=utc(2026, 12, 1, 5, 0), action="delete", outcome="pending"),
        record(timestamp=utc(2026, 12, 1, 5, 0), action="copy"),
        record(timestamp=utc(2026, 12, 2, 0, 0)),
    ]

    days = summarise(records, generated_at=NOW, since=timedelta(days=3)).days

    assert [(d.day, d.created, d.deleted) for d in days] == [
        (date(2026, 11, 29), 0, 0),
        (date(2026, 11, 30), 0, 0),
        (date(2026, 12, 1), 2, 1),
        (date(2026, 12, 2), 1, 0),
    ]


def test_failures_and_pending_left_over_an_hour_need_attention_newest_first():
    failed_old = record(outcome="failed", timestamp=NOW - timedelta(days=2))
    failed_new = record(outcome="failed", timestamp=NOW - timedelta(minutes=1))
    stale = record(outcome="pending", action="delete", timestamp=NOW - timedelta(minutes=61))
    fresh = record(outcome="pending", action="delete", timestamp=NOW - timedelta(minutes=59))
    fine = record()

    summary = summarise(
        [failed_old, fine, stale, fresh, failed_new], generated_at=NOW, since=timedelta(days=7)
    )

    assert summary.attention == (failed_new, stale, failed_old)
    assert summary.total == 5


def test_rpo_is_met_within_two_schedule_periods_and_missed_beyond():
    daily = make_policy("nightly")  # cron(0 3 * * ? *): a one-day period
    policies = PolicySet((daily, make_policy("weekly"), make_policy("never-ran")))
    records = [
        record(timestamp=NOW - timedelta(hours=47, minutes=59)),
        record(policy="weekly", timestamp=NOW - timedelta(hours=48)),
        record(policy="weekly", outcome="failed", timestamp=NOW - timedelta(hours=1)),
    ]

    totals = {
        p.policy: p
        for p in summarise(
            records, generated_at=NOW, since=timedelta(days=7), policies=policies
        ).policies
    }

    assert totals["nightly"].rpo == "met"
    assert "within 2 x 1d" in totals["nightly"].rpo_reason
    assert totals["weekly"].rpo == "missed"  # its failed create is no recovery point
    assert (totals["weekly"].records, totals["weekly"].created, totals["weekly"].failed) == (
        2,
        1,
        1,
    )
    assert totals["never-ran"].rpo == "missed"
    assert totals["never-ran"].rpo_reason == "no succeeded create in these records"


def test_rpo_is_unknown_without_policies_for_unknown_and_for_disabled_ones():
    two_hours_ago = NOW - timedelta(hours=2)
    records = [
        record(),
        record(policy="gone"),
        record(policy="off"),
        record(policy="hourly", timestamp=two_hours_ago),
    ]
    off = make_policy("off", enabled=False)
    hourly = make_policy("hourly", schedule=Schedule("rate(1 hour)"))

    without = summarise(records, generated_at=NOW, since=timedelta(days=1)).policies
    with_files = {
        p.policy: p
        for p in summarise(
            records,
            generated_at=NOW,
            since=timedelta(days=1),
            policies=PolicySet((make_policy(), off, hourly)),
        ).policies
    }

    assert {p.rpo for p in without} == {"unknown"}
    assert "no policy files given" in without[0].rpo_reason
    assert with_files["gone"].rpo == "unknown"
    assert with_files["gone"].rpo_reason == "no policy file defines this policy now"
    assert with_files["off"].rpo_reason == "the policy is disabled"
    assert with_files["nightly"].rpo == "met"
    # two hours since its only create: not within two one-hour periods
    assert with_files["hourly"].rpo == "missed"
    assert with_files["hourly"].rpo_reason == "newest create is 2h old: older than 2 x 1h"
