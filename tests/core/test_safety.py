"""The deletion circuit breaker (``safety``): what it holds, what it never holds, and lifting it."""

from __future__ import annotations

from collections import Counter
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Duration
from smartvault.core.model import HeldBy
from smartvault.core.model import Plan
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import Safety
from smartvault.core.model import Schedule
from smartvault.core.model import Snapshot
from smartvault.core.planner import plan
from smartvault.core.tags import TAG_SOURCE
from tests.core.test_planner_properties import Case
from tests.core.test_planner_properties import cases
from tests.factories import NO_BREAKER
from tests.factories import REGION
from tests.factories import make_instance
from tests.factories import make_inventory
from tests.factories import make_policy
from tests.factories import make_recovery_point
from tests.factories import utc

AT = utc(2026, 11, 28, 17)
I1, I2, I3 = "i-0aaa", "i-0bbb", "i-0ccc"
DAILY = Schedule("cron(0 3 * * ? *)", "UTC")
WEEK = Retention(keep_last=1, max_age=Duration.parse("7d"))
ONE_DAY = Retention(keep_last=1, max_age=Duration.parse("1d"))


def nightly(resource_id: str, days: range | list[int], **kw: object) -> list[Snapshot]:
    """One recovery point of ``resource_id`` at 03:00 on each day of November 2026."""
    return [
        s
        for day in days
        for s in make_recovery_point(
            "nightly", resource_id, utc(2026, 11, day, 3), volume_ids=(f"vol-{resource_id}",), **kw
        )
    ]


def run(policy: Policy, snapshots: list[Snapshot], *, at: datetime = AT, **kw: object) -> Plan:
    instances = [make_instance(i) for i in (I1, I2, I3)]
    return plan(
        PolicySet((policy,)),
        make_inventory(instances=instances, snapshots=snapshots),
        at,
        **kw,  # type: ignore[arg-type]
    )


def deletes(p: Plan) -> list[DeleteAction]:
    return [a for a in p.actions if isinstance(a, DeleteAction)]


class TestTrips:
    def test_a_ten_point_lineage_whose_policy_now_deletes_nine_is_held(self) -> None:
        # Ten nights of a policy that kept 30 days, now cut to one day.
        p = run(make_policy(retention=ONE_DAY), nightly(I1, range(18, 28)))

        assert deletes(p) == []
        assert len(p.held_deletes) == 9
        assert {h.held_by for h in p.held_deletes} == {
            HeldBy("max_delete_fraction", 0.5, 9, 10, I1)
        }
        assert all(h.action.reason.startswith("older than max_age 1d") for h in p.held_deletes)
        [warning] = [w for w in p.warnings if "safety held" in w.message]
        assert warning.message.startswith(
            "safety held 9 deletions, none is planned: max_delete_fraction 0.5: this run "
            f"would delete 9 of the 10 completed recovery points of {I1}"
        )
        assert "`smartvault apply --allow-deletes nightly`" in warning.message
        assert (warning.policy, warning.region) == ("nightly", REGION)

    def test_allow_deletes_plans_exactly_the_held_deletions_and_says_which_rule_was_lifted(
        self,
    ) -> None:
        policy = make_policy(retention=ONE_DAY)
        held = run(policy, nightly(I1, range(18, 28)))

        lifted = run(policy, nightly(I1, range(18, 28)), allow_deletes=["nightly"])

        assert lifted.held_deletes == ()
        assert lifted.allow_deletes == ("nightly",)
        assert [replace(d, safety_lifted=None) for d in deletes(lifted)] == [
            h.action for h in held.held_deletes
        ]
        assert {d.safety_lifted for d in deletes(lifted)} == {
            HeldBy("max_delete_fraction", 0.5, 9, 10, I1)
        }
        assert any("safety lifted by --allow-deletes" in w.message for w in lifted.warnings)

    def test_allow_deletes_of_another_policy_lifts_nothing(self) -> None:
        p = run(
            make_policy(retention=ONE_DAY),
            nightly(I1, range(18, 28)),
            allow_deletes=["weekly", "missing"],
        )

        assert len(p.held_deletes) == 9
        assert p.allow_deletes == ()

    def test_max_deletes_caps_the_policy_in_a_region_even_when_no_lineage_loses_much(
        self,
    ) -> None:
        # Three lineages, each deleting one of eight: a steady share, but three in all.
        policy = make_policy(retention=WEEK, safety=Safety(max_deletes=2))
        snapshots = [s for i in (I1, I2, I3) for s in nightly(i, range(21, 29))]

        p = run(policy, snapshots, at=utc(2026, 11, 28, 4))

        assert deletes(p) == []
        assert {h.held_by for h in p.held_deletes} == {HeldBy("max_deletes", 2, 3)}
        assert [h.action.resource_id for h in p.held_deletes] == [I1, I2, I3]

    def test_one_lineage_that_trips_holds_every_deletion_of_its_policy_in_the_region(
        self,
    ) -> None:
        # I1 loses 9 of 10 (a clock that jumped?); I2 loses its usual 1 of 8.
        snapshots = nightly(I1, range(1, 11)) + nightly(I2, range(21, 29))
        p = run(make_policy(retention=WEEK), snapshots, at=utc(2026, 11, 28, 4))

        assert deletes(p) == []
        by_resource = Counter(h.action.resource_id for h in p.held_deletes)
        assert by_resource == {I1: 9, I2: 1}
        # Each entry names the rule: I2's own share is fine, so it names I1's.
        assert {h.held_by for h in p.held_deletes} == {
            HeldBy("max_delete_fraction", 0.5, 9, 10, I1)
        }

    def test_a_tighter_share_and_a_share_of_one(self) -> None:
        snapshots = nightly(I1, range(21, 29))  # eight points, one to delete
        tight = make_policy(retention=WEEK, safety=Safety(max_delete_fraction=0.1))
        off = make_policy(retention=Retention(keep_last=1), safety=NO_BREAKER)

        assert len(run(tight, snapshots, at=utc(2026, 11, 28, 4)).held_deletes) == 1
        # 1 is no limit: all but the newest go, as keep_last says.
        assert len(deletes(run(off, snapshots))) == 7

    def test_exactly_the_share_is_not_more_than_it(self) -> None:
        # Two points, one to delete: 1 of 2 is 0.5, not more than 0.5.
        p = run(make_policy(retention=WEEK), nightly(I1, [1, 27]))

        assert len(deletes(p)) == 1
        assert p.held_deletes == ()


class TestNeverHeld:
    def test_creates_copies_and_failed_points_go_on_while_deletions_are_held(self) -> None:
        failed = nightly(I1, [5], state="error")
        p = run(make_policy(retention=ONE_DAY), nightly(I1, range(18, 28)) + failed)

        # The failed point is no backup: it is deleted, and counts toward no rule.
        assert [d.recovery_point for d in deletes(p)] == ["nightly/i-0aaa/20261105T0300Z"]
        assert {h.held_by.completed for h in p.held_deletes} == {10}
        creates = [a for a in p.actions if isinstance(a, CreateAction)]
        # Tonight's backups are made, I1's too (its newest is from the 27th).
        assert {c.resource_id for c in creates} == {I1, I2, I3}

    def test_steady_state_never_trips_it_over_a_year_of_nights(self) -> None:
        """A daily policy keeping 7 days (and one with calendar buckets) deletes one point
        a night (the one with buckets at most two, when a week and a day roll over
        together): never more than the share, for a year of nights."""
        for retention, most in (
            (WEEK, 1),
            (Retention(keep_last=3, daily=7, weekly=4, monthly=12, yearly=2), 2),
        ):
            policy = make_policy(schedule=DAILY, retention=retention)
            snapshots: list[Snapshot] = []
            start = utc(2026, 1, 1, 3)
            worst = 0
            for night in range(366):
                slot = start + timedelta(days=night)
                snapshots += make_recovery_point("nightly", I1, slot, volume_ids=(f"vol-{I1}",))
                p = plan(
                    PolicySet((policy,)),
                    make_inventory(instances=[make_instance(I1)], snapshots=snapshots),
                    slot + timedelta(hours=1),
                )
                assert p.held_deletes == (), (night, p.held_deletes[0].held_by)
                gone = {s for d in deletes(p) for s in d.snapshot_ids}
                worst = max(worst, len(deletes(p)))
                snapshots = [s for s in snapshots if s.snapshot_id not in gone]
            assert worst == most


def test_a_copy_lineage_is_judged_in_its_target_region() -> None:
    """Copies form lineages of their own in the target region (DESIGN §3)."""
    from smartvault.core.model import CopyRule

    west = "us-west-2"
    policy = make_policy(retention=Retention(keep_last=30), copies=(CopyRule(west, ONE_DAY),))
    copies = [
        replace(s, region=west, tags={**s.tags, TAG_SOURCE: f"{REGION}/{s.snapshot_id}"})
        for s in nightly(I1, range(18, 28))
    ]
    copies = [replace(s, snapshot_id=s.snapshot_id + "c") for s in copies]
    p = plan(
        PolicySet((policy,)),
        make_inventory(
            instances=[make_instance(I1)],
            snapshots=nightly(I1, range(18, 28)) + copies,
            regions=(REGION, west),
        ),
        AT,
    )

    assert {h.action.region for h in p.held_deletes} == {west}
    assert {h.held_by for h in p.held_deletes} == {HeldBy("max_delete_fraction", 0.5, 9, 10, I1)}
    assert not [d for d in deletes(p) if d.region == REGION]


# --- properties -------------------------------------------------------------------


def _retention_deletes(p: Plan) -> set[tuple[str, str]]:
    return {(d.region, d.recovery_point) for d in deletes(p)} | {
        (h.action.region, h.action.recovery_point) for h in p.held_deletes
    }


def _without_breaker(case: Case) -> PolicySet:
    return PolicySet(tuple(replace(p, safety=NO_BREAKER) for p in case.policies.policies))


@settings(max_examples=150, deadline=None)
@given(case=cases(), lift=st.booleans())
def test_the_breaker_never_lets_a_run_delete_more_than_its_rules_allow(
    case: Case, lift: bool
) -> None:
    """Over random lineages and rules: what a run deletes of completed points never exceeds
    ``max_delete_fraction`` of any lineage nor ``max_deletes``, unless a person lifted it."""
    allow = [p.name for p in case.policies.policies][:1] if lift else []
    p = plan(case.policies, case.inventory, AT, allow_deletes=allow)
    by_id = {s.snapshot_id: s for s in case.inventory.snapshots}
    completed: Counter[tuple[str, str, str]] = Counter()
    held_points = {(k.region, k.recovery_point) for k in p.kept if "hold" in k.kept_by}
    for entry in (*p.kept, *deletes(p), *(h.action for h in p.held_deletes)):
        if (entry.region, entry.recovery_point) in held_points:
            continue  # a hold counts toward nothing, the breaker's share included
        states = {by_id[s].state for s in entry.snapshot_ids}
        if "error" not in states and "pending" not in states:
            completed[(entry.region, entry.policy, entry.resource_id)] += 1
    per_lineage: Counter[tuple[str, str, str]] = Counter()
    per_policy: defaultdict[tuple[str, str], int] = defaultdict(int)
    for d in deletes(p):
        if any(by_id[s].state == "error" for s in d.snapshot_ids) or d.policy in allow:
            continue  # failed points are no backups; lifted policies are a person's call
        per_lineage[(d.region, d.policy, d.resource_id)] += 1
        per_policy[(d.policy, d.region)] += 1
    for (region, name, resource_id), n in per_lineage.items():
        safety = case.policies.get(name).safety  # type: ignore[union-attr]
        share = Fraction(str(safety.max_delete_fraction))
        assert n <= share * completed[(region, name, resource_id)]
    for (name, _region), n in per_policy.items():
        cap = case.policies.get(name).safety.max_deletes  # type: ignore[union-attr]
        assert cap is None or n <= cap


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_the_breaker_only_ever_moves_deletions_and_never_holds_anything_else(
    case: Case,
) -> None:
    """With or without it, retention deletes the same points and everything else is
    planned alike: it never holds a create, a copy, an archive or a restore test."""
    guarded = plan(case.policies, case.inventory, AT)
    unguarded = plan(_without_breaker(case), case.inventory, AT)

    assert _retention_deletes(guarded) == _retention_deletes(unguarded)
    assert unguarded.held_deletes == ()
    assert [a for a in guarded.actions if a.type != "delete"] == [
        a for a in unguarded.actions if a.type != "delete"
    ]
    held = {(h.action.region, h.action.recovery_point) for h in guarded.held_deletes}
    assert not held & {(d.region, d.recovery_point) for d in deletes(guarded)}
    assert guarded.kept == unguarded.kept
