"""Coverage, pure: what protects each resource, its newest points, its RPO, and exclusions."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from smartvault.core import planner
from smartvault.core.coverage import Coverage
from smartvault.core.coverage import ResourceCoverage
from smartvault.core.coverage import coverage
from smartvault.core.coverage import format_age
from smartvault.core.model import Instance
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Schedule
from smartvault.core.model import Selector
from smartvault.core.model import Snapshot
from smartvault.core.model import SnapshotSettings
from smartvault.core.model import Volume
from smartvault.core.planner.selection import exclusion_rule
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import TAG_VERIFIED
from tests.factories import REGION
from tests.factories import make_instance
from tests.factories import make_inventory
from tests.factories import make_policy
from tests.factories import make_recovery_point
from tests.factories import tag_filter
from tests.factories import utc
from tests.factories import volumes_of

AT = utc(2026, 12, 2, 12)
WEST = "us-west-2"
NIGHTLY = make_policy(
    "nightly",
    selector=Selector(
        tags=tag_filter(backup="true"),
        exclude_tags=tag_filter(**{"backup-skip": "*"}),
        instance_states=("running",),
    ),
)
OLD = make_policy("old", enabled=False, selector=Selector(tags=tag_filter(team="legacy")))
VOLUMES = make_policy("data", resource="volume", selector=Selector(tags=tag_filter(data="keep")))


def point(resource: str, day: int, **kw: Any) -> list[Snapshot]:
    return make_recovery_point("nightly", resource, utc(2026, 11, day, 3), **kw)


def _fleet() -> tuple[list[Instance], list[Volume], list[Snapshot]]:
    ok = make_instance("i-01", tags={"backup": "true", "Name": "web-1"}, volumes=2)
    late = make_instance("i-02")
    never = make_instance("i-03")
    untagged = make_instance("i-04", tags={})
    skipped = make_instance("i-05", tags={"backup": "true", "backup-skip": "yes"})
    stopped = make_instance("i-06", state="stopped")
    legacy = make_instance("i-07", tags={"team": "legacy"})
    gone = make_instance("i-08", tags={}, state="terminated")
    instances = [ok, late, never, untagged, skipped, stopped, legacy, gone]
    data = Volume("vol-data", REGION, state="available", tags={"data": "keep"})
    volumes = [*volumes_of(ok), data]
    snapshots = [
        *make_recovery_point("nightly", "i-01", utc(2026, 12, 1, 3), volume_ids=("vol-010",)),
        *point(
            "i-01", 28, volume_ids=("vol-010",), extra_tags={TAG_VERIFIED: "2026-11-29T05:00:00Z"}
        ),
        *make_recovery_point(
            "nightly",
            "i-01",
            utc(2026, 12, 1, 3),
            volume_ids=("vol-010",),
            region=WEST,
            extra_tags={TAG_SOURCE: "us-east-1/snap-x"},
            snapshot_prefix="snap-copy",
        ),
        *point("i-02", 27),
        *make_recovery_point("nightly", "i-03", utc(2026, 12, 2, 3), state="error"),
        *make_recovery_point("data", "vol-data", utc(2026, 12, 2, 3), volume_ids=("vol-data",)),
    ]
    return instances, volumes, snapshots


def _coverage(*policies: Policy, snapshots: list[Snapshot] | None = None) -> Coverage:
    instances, volumes, fleet_snapshots = _fleet()
    inventory = make_inventory(
        instances=instances,
        volumes=volumes,
        snapshots=fleet_snapshots if snapshots is None else snapshots,
        regions=(REGION, WEST),
    )
    chosen = policies or (NIGHTLY, OLD, VOLUMES)
    return coverage(PolicySet(tuple(chosen)), inventory, AT, (REGION,))


def _resource(report: Coverage, rid: str) -> ResourceCoverage:
    (found,) = [r for r in report.resources if r.resource_id == rid]
    return found


class TestProtection:
    def test_a_selected_resource_with_a_recent_point_meets_its_rpo(self) -> None:
        entry = _resource(_coverage(), "i-01").policies[0]
        assert (entry.policy, entry.relation, entry.rpo) == ("nightly", "protects", "met")
        assert entry.newest is not None
        assert entry.newest.id == "nightly/i-01/20261201T0300Z"
        assert entry.period == timedelta(days=1)
        assert entry.rpo_limit == timedelta(days=2)
        assert entry.rpo_reason == "newest is 1d 8h old: within 2 x 1d"

    def test_the_newest_verified_point_is_shown_beside_the_newest(self) -> None:
        entry = _resource(_coverage(), "i-01").policies[0]
        assert entry.newest_verified is not None
        assert entry.newest_verified.id == "nightly/i-01/20261128T0300Z"
        assert entry.newest_verified.verified == utc(2026, 11, 29, 5)

    def test_copies_are_shown_per_region_and_never_count_as_the_newest_original(self) -> None:
        entry = _resource(_coverage(), "i-01").policies[0]
        (copy,) = entry.copies
        assert copy.region == WEST
        assert copy.newest is not None
        assert copy.newest.region == WEST
        assert entry.newest is not None
        assert entry.newest.region == REGION

    def test_a_point_older_than_two_periods_misses_the_rpo(self) -> None:
        resource = _resource(_coverage(), "i-02")
        assert resource.status == "rpo-missed"
        assert resource.policies[0].rpo_reason == "newest is 5d 8h old: older than 2 x 1d"

    def test_a_protected_resource_with_only_a_failed_point_misses_the_rpo(self) -> None:
        entry = _resource(_coverage(), "i-03").policies[0]
        assert (entry.rpo, entry.newest, entry.rpo_reason) == (
            "missed",
            None,
            "no completed recovery point",
        )

    def test_a_volume_policy_protects_its_volume(self) -> None:
        resource = _resource(_coverage(), "vol-data")
        assert resource.resource_type == "volume"
        assert [(e.policy, e.relation, e.rpo) for e in resource.policies] == [
            ("data", "protects", "met")
        ]

    def test_attached_volumes_are_protected_through_their_instance(self) -> None:
        resource = _resource(_coverage(), "vol-010")
        (entry,) = resource.policies
        assert (entry.policy, entry.via, entry.rpo, resource.status) == (
            "nightly",
            "i-01",
            "met",
            "protected",
        )

    def test_a_boot_volume_the_policy_leaves_out_is_not_protected_through_it(self) -> None:
        policy = replace(NIGHTLY, snapshot=SnapshotSettings(exclude_boot_volume=True))
        report = _coverage(policy)
        boot = _resource(report, "vol-010")  # /dev/xvda
        assert (boot.status, boot.excluded) == ("unprotected", True)
        assert [(e.relation, e.rule, e.via) for e in boot.policies] == [
            ("excluded", "snapshot.exclude_boot_volume: it is the boot volume", "i-01")
        ]
        assert _resource(report, "vol-011").status == "protected"

    def test_an_excluded_instance_s_volumes_are_excluded_by_its_rule(self) -> None:
        instance = make_instance("i-05", tags={"backup": "true", "backup-skip": "yes"})
        inventory = make_inventory(instances=[instance])
        report = coverage(PolicySet((NIGHTLY,)), inventory, AT)
        volume = _resource(report, "vol-050")
        assert volume.attached_to == ("i-05",)
        assert [(e.relation, e.rule, e.via) for e in volume.policies] == [
            ("excluded", "exclude_tags backup-skip", "i-05")
        ]
        assert not report.has_gaps

    def test_a_schedule_that_fired_once_is_not_measured(self) -> None:
        once = replace(NIGHTLY, schedule=Schedule("cron(0 3 1 12 ? 2026)"))
        entry = _resource(_coverage(once), "i-01").policies[0]
        assert entry.rpo is None
        assert "has not fired twice" in entry.rpo_reason
        assert _resource(_coverage(once), "i-01").status == "protected"


class TestUnprotected:
    def test_an_untagged_instance_has_no_policy(self) -> None:
        resource = _resource(_coverage(), "i-04")
        assert (resource.status, resource.policies, resource.excluded) == ("unprotected", (), False)

    def test_an_excluded_tag_names_the_rule(self) -> None:
        resource = _resource(_coverage(), "i-05")
        assert resource.status == "unprotected"
        assert resource.excluded
        assert [(e.relation, e.rule) for e in resource.policies] == [
            ("excluded", "exclude_tags backup-skip")
        ]

    def test_an_excluded_state_names_the_rule(self) -> None:
        (entry,) = _resource(_coverage(), "i-06").policies
        assert entry.rule == "instance_states: stopped not in [running]"

    def test_a_disabled_policy_that_would_select_it_does_not_protect_it(self) -> None:
        resource = _resource(_coverage(), "i-07")
        assert resource.status == "unprotected"
        assert [(e.policy, e.relation) for e in resource.policies] == [("old", "disabled")]

    def test_terminated_instances_are_left_out(self) -> None:
        assert "i-08" not in {r.resource_id for r in _coverage().resources}

    def test_a_policy_outside_its_regions_neither_selects_nor_excludes(self) -> None:
        elsewhere = replace(NIGHTLY, regions=(WEST,))
        assert _resource(_coverage(elsewhere), "i-05").policies == ()


class TestOrder:
    def test_unprotected_come_first_then_missed_rpos_then_the_rest(self) -> None:
        report = _coverage()
        statuses = [r.status for r in report.resources]
        assert statuses == sorted(statuses, key=("unprotected", "rpo-missed", "protected").index)
        assert [r.resource_id for r in report.resources if r.status == "rpo-missed"] == [
            "i-02",
            "i-03",
        ]
        assert (report.count("unprotected"), report.excluded_count) == (4, 2)

    def test_a_missed_rpo_is_a_gap(self) -> None:
        assert _coverage().has_gaps

    @pytest.mark.parametrize(
        ("tags", "gap"),
        [({"backup": "true", "backup-skip": "yes"}, False), ({}, True)],
        ids=["excluded by a rule", "no policy at all"],
    )
    def test_an_unprotected_resource_is_a_gap_unless_a_rule_excludes_it(
        self, tags: dict[str, str], gap: bool
    ) -> None:
        inventory = make_inventory(
            instances=[make_instance("i-01", volumes=0), make_instance("i-09", tags=tags)],
            volumes=[],
            snapshots=make_recovery_point("nightly", "i-01", utc(2026, 12, 2, 3)),
        )
        report = coverage(PolicySet((NIGHTLY,)), inventory, AT)
        assert report.count("unprotected") == 1
        assert report.has_gaps is gap

    def test_nothing_unprotected_and_every_rpo_met_is_no_gap(self) -> None:
        inventory = make_inventory(
            instances=[make_instance("i-01")],
            snapshots=make_recovery_point(
                "nightly", "i-01", utc(2026, 12, 2, 3), volume_ids=("vol-010",)
            ),
        )
        report = coverage(PolicySet((NIGHTLY,)), inventory, AT)
        assert [r.status for r in report.resources] == ["protected", "protected"]
        assert not report.has_gaps


def test_an_unreadable_schedule_is_a_warning_and_its_resources_miss_their_rpo() -> None:
    broken = replace(NIGHTLY, schedule=Schedule("cron(nonsense)"))
    report = _coverage(broken)
    assert any("schedule cannot be read" in w.message for w in report.warnings)
    assert _resource(report, "i-01").policies[0].rpo is None


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (timedelta(minutes=12), "12m"),
        (timedelta(hours=5, minutes=10), "5h 10m"),
        (timedelta(hours=5), "5h"),
        (timedelta(days=3, hours=2), "3d 2h"),
        (timedelta(days=2), "2d"),
        (timedelta(seconds=-5), "0m"),
    ],
    ids=["minutes", "hours and minutes", "hours", "days and hours", "days", "negative"],
)
def test_format_age(age: timedelta, text: str) -> None:
    assert format_age(age) == text


class TestExclusionRule:
    """``selection.exclusion_rule`` explains what ``select`` left out; it never selects."""

    def test_a_volume_in_another_state_names_it(self) -> None:
        volume = Volume("vol-new", REGION, state="creating", tags={"data": "keep"})
        assert exclusion_rule(VOLUMES, volume) == (
            "volume state creating: only in-use and available volumes are backed up"
        )

    def test_an_exclude_tag_with_values_names_the_value(self) -> None:
        policy = replace(
            NIGHTLY,
            selector=Selector(tags=tag_filter(backup="true"), exclude_tags=tag_filter(env="dev")),
        )
        instance = make_instance(tags={"backup": "true", "env": "dev"})
        assert exclusion_rule(policy, instance) == "exclude_tags env: dev"

    @pytest.mark.parametrize(
        "instance",
        [make_instance(), make_instance(tags={"other": "x"})],
        ids=["selected", "tags do not match"],
    )
    def test_nothing_to_explain_is_none(self, instance: Instance) -> None:
        assert exclusion_rule(NIGHTLY, instance) is None


def test_coverage_and_the_plan_agree_on_what_each_policy_protects() -> None:
    """Every create the plan makes is for a resource coverage shows protected by that
    policy: both select with the planner's code."""
    instances, volumes, snapshots = _fleet()
    inventory = make_inventory(
        instances=instances, volumes=volumes, snapshots=snapshots, regions=(REGION, WEST)
    )
    policies = PolicySet((NIGHTLY, OLD, VOLUMES))
    the_plan = planner.plan(policies, inventory, AT)
    report = coverage(policies, inventory, AT, (REGION,))
    protects = {
        (e.policy, r.resource_id)
        for r in report.resources
        for e in r.policies
        if e.relation == "protects" and e.via is None
    }
    creates = {(a.policy, a.resource_id) for a in the_plan.actions if a.type == "create"}
    assert creates <= protects
    assert {("nightly", "i-01"), ("nightly", "i-02")} <= creates


class TestHeld:
    def test_held_points_are_counted_once_per_recovery_point_with_their_copies(self) -> None:
        """The 1 December point is held in both regions (one point); 28 November only in
        the original region: two held recovery points."""
        hold = {TAG_HOLD: "INC-1"}
        snapshots = [
            *make_recovery_point(
                "nightly", "i-01", utc(2026, 12, 1, 3), volume_ids=("vol-010",), extra_tags=hold
            ),
            *point("i-01", 28, volume_ids=("vol-010",), extra_tags=hold),
            *point("i-01", 27, volume_ids=("vol-010",)),
            *make_recovery_point(
                "nightly",
                "i-01",
                utc(2026, 12, 1, 3),
                volume_ids=("vol-010",),
                region=WEST,
                extra_tags={TAG_SOURCE: "us-east-1/snap-x", **hold},
                snapshot_prefix="snap-copy",
            ),
        ]
        report = _coverage(snapshots=snapshots)
        instance = _resource(report, "i-01")
        assert instance.policies[0].held == 2
        assert instance.held == 2
        # an attached volume is covered through the instance, whose points they are
        volume = _resource(report, "vol-010")
        assert [e.held for e in volume.policies if e.via == "i-01"] == [2]
        assert volume.held == 0

    def test_a_resource_without_holds_counts_none(self) -> None:
        assert _resource(_coverage(), "i-01").held == 0
