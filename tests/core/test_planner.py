"""The planner: what to create, delete, archive and copy, and why."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from datetime import datetime
from datetime import timedelta

import pytest

from smartvault.core.model import CopyAction
from smartvault.core.model import CopyRule
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Duration
from smartvault.core.model import Image
from smartvault.core.model import Instance
from smartvault.core.model import Plan
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import RetentionRule
from smartvault.core.model import Schedule
from smartvault.core.model import Selector
from smartvault.core.model import Snapshot
from smartvault.core.model import SnapshotSettings
from smartvault.core.model import Volume
from smartvault.core.planner import plan
from smartvault.core.tags import TAG_RESOURCE_TAGS
from smartvault.core.tags import TAG_SOURCE
from tests.factories import NO_BREAKER
from tests.factories import make_instance
from tests.factories import make_inventory
from tests.factories import make_policy
from tests.factories import make_recovery_point
from tests.factories import tag_filter
from tests.factories import utc

AT = utc(2026, 11, 28, 17)
I1 = "i-0abc"
VOLS = ("vol-0abc0", "vol-0abc1")
KEEP3_7D = Retention(keep_last=3, max_age=Duration.parse("7d"))
KEEP3_60D = Retention(keep_last=3, max_age=Duration.parse("60d"))


def run(*policies: Policy, at: datetime = AT, **inventory) -> Plan:
    return plan(PolicySet(tuple(policies)), make_inventory(**inventory), at)


def nightly(policy: str, resource_id: str, days, *, volume_ids=VOLS, month=11, **kw):
    """The snapshots of one recovery point per day of November 2026, made at 03:00:04."""
    return [
        s
        for day in days
        for s in make_recovery_point(
            policy, resource_id, utc(2026, month, day, 3), volume_ids=volume_ids, **kw
        )
    ]


def creates(p: Plan) -> list[CreateAction]:
    return [a for a in p.actions if isinstance(a, CreateAction)]


def deletes(p: Plan) -> dict[str, DeleteAction]:
    return {a.recovery_point: a for a in p.actions if isinstance(a, DeleteAction)}


def kept(p: Plan) -> dict[str, tuple[str, ...]]:
    return {k.recovery_point: k.kept_by for k in p.kept}


def rp(day: int, resource_id: str = I1, policy: str = "nightly", month: int = 11) -> str:
    return f"{policy}/{resource_id}/2026{month:02d}{day:02d}T0300Z"


def messages(p: Plan) -> list[str]:
    return [w.message for w in p.warnings]


class TestCreate:
    def test_a_selected_instance_without_recovery_points_is_due(self) -> None:
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)])
        [create] = creates(p)
        assert create.resource_id == I1
        assert create.resource_type == "instance"
        assert create.volume_ids == VOLS
        assert create.slot == utc(2026, 11, 28, 3)
        assert create.recovery_point == "nightly/i-0abc/20261128T0300Z"
        assert create.reason == "due: no recovery point yet"
        assert create.tags["smartvault:recovery-point"] == create.recovery_point
        assert create.tags["InstanceId"] == I1

    def test_the_reason_names_the_newest_point_and_the_slot(self) -> None:
        policy = make_policy(schedule=Schedule("cron(0 2 * * ? *)"))
        snaps = make_recovery_point(
            "nightly",
            I1,
            utc(2026, 11, 27, 2),
            volume_ids=VOLS,
            created_at=utc(2026, 11, 27, 2, 0, 4),
        )
        [create] = creates(run(policy, instances=[make_instance(I1, volumes=2)], snapshots=snaps))
        assert create.reason == (
            "due: newest recovery point 2026-11-27T02:00:04Z is before slot 2026-11-28T02:00:00Z"
        )

    @pytest.mark.parametrize("state", ["completed", "pending"])
    def test_a_point_at_or_after_the_slot_means_not_due(self, state: str) -> None:
        snaps = nightly("nightly", I1, [28], state=state)
        assert (
            creates(run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps))
            == []
        )

    def test_a_point_created_exactly_at_the_slot_counts(self) -> None:
        snaps = make_recovery_point(
            "nightly", I1, utc(2026, 11, 27, 3), created_at=utc(2026, 11, 28, 3), volume_ids=VOLS
        )
        assert (
            creates(run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps))
            == []
        )

    def test_a_failed_point_of_an_earlier_slot_does_not_stop_a_create(self) -> None:
        snaps = nightly("nightly", I1, [27], state="error")
        [create] = creates(
            run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        )
        assert create.reason == "due: no recovery point yet"

    def test_a_failed_point_of_this_slot_is_deleted_and_made_again_in_the_same_run(
        self,
    ) -> None:
        # Apply deletes a failed point whose slot a create makes again before the creates.
        snaps = nightly("nightly", I1, [28], state="error")
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        [create] = creates(p)
        assert create.recovery_point == rp(28) in deletes(p)
        assert "failed: its snapshots are deleted first, then it is made again" in create.reason
        assert not any("attempted again by the next run" in m for m in messages(p))

    def test_a_failed_point_an_ami_uses_waits_and_its_slot_is_not_made_again(self) -> None:
        snaps = nightly("nightly", I1, [28], state="error")
        image = Image("ami-0123", "us-east-1", snapshot_ids=(snaps[0].snapshot_id,))
        p = run(
            make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps, images=[image]
        )
        assert creates(p) == []
        assert deletes(p) == {}
        assert any("attempted again by the next run" in m for m in messages(p))

    def test_slots_follow_the_schedule_time_zone(self) -> None:
        policy = make_policy(schedule=Schedule("cron(0 3 * * ? *)", "Europe/Berlin"))
        instance = make_instance(I1)
        winter = creates(run(policy, instances=[instance]))[0]
        assert winter.slot == utc(2026, 11, 28, 2)
        assert winter.recovery_point == "nightly/i-0abc/20261128T0200Z"
        summer = creates(run(policy, instances=[instance], at=utc(2026, 7, 1, 12)))[0]
        assert summer.slot == utc(2026, 7, 1, 1)

    def test_a_rate_schedule_slots_at_multiples_of_its_interval(self) -> None:
        policy = make_policy(schedule=Schedule("rate(6 hours)"))
        [create] = creates(run(policy, instances=[make_instance(I1)]))
        assert create.slot == utc(2026, 11, 28, 12)

    def test_a_schedule_that_has_not_fired_yet_creates_nothing_and_says_so(self) -> None:
        policy = make_policy(schedule=Schedule("cron(0 3 * * ? 2030)"))
        p = run(policy, instances=[make_instance(I1)])
        assert creates(p) == []
        assert p.policies[0].slot is None
        assert any("has not fired" in m for m in messages(p))

    @pytest.mark.parametrize(
        ("state", "selected"),
        [("running", True), ("stopped", True), ("terminated", False), ("pending", False)],
    )
    def test_instances_are_selected_by_state(self, state: str, selected: bool) -> None:
        p = run(make_policy(), instances=[make_instance(I1, state=state)])
        assert bool(creates(p)) is selected

    @pytest.mark.parametrize(
        ("tags", "selected"),
        [
            ({"backup": "true"}, True),
            ({"backup": "yes"}, False),
            ({}, False),
            ({"backup": "true", "backup-skip": ""}, False),
        ],
        ids=["match", "other value", "no tag", "excluded"],
    )
    def test_instances_are_selected_by_tags(self, tags: dict[str, str], selected: bool) -> None:
        policy = make_policy(
            selector=Selector(
                tags=tag_filter(backup="true"), exclude_tags=tag_filter(**{"backup-skip": "*"})
            )
        )
        assert bool(creates(run(policy, instances=[make_instance(I1, tags=tags)]))) is selected

    def test_a_policy_only_works_in_its_regions(self) -> None:
        policy = make_policy(regions=("eu-west-1",))
        p = run(policy, instances=[make_instance(I1)])
        assert creates(p) == []
        assert any("not among the regions read" in m for m in messages(p))

    def test_a_volume_policy_snapshots_each_selected_volume(self) -> None:
        policy = make_policy("vols", resource="volume")
        volumes = [
            Volume("vol-b", "us-east-1", tags={"backup": "true"}),
            Volume("vol-a", "us-east-1", tags={"backup": "true"}, state="available"),
            Volume("vol-c", "us-east-1", tags={"backup": "no"}),
        ]
        p = run(policy, volumes=volumes)
        assert [(c.resource_id, c.resource_type, c.volume_ids) for c in creates(p)] == [
            ("vol-a", "volume", ("vol-a",)),
            ("vol-b", "volume", ("vol-b",)),
        ]
        assert "InstanceId" not in creates(p)[0].tags

    def test_exclude_boot_volume_leaves_out_the_root_volume(self) -> None:
        policy = make_policy(snapshot=SnapshotSettings(exclude_boot_volume=True))
        [create] = creates(run(policy, instances=[make_instance(I1, volumes=2)]))
        assert create.volume_ids == ("vol-0abc1",)
        assert create.exclude_boot_volume is True

    @pytest.mark.parametrize(
        ("volumes", "exclude_boot"), [(0, False), (1, True)], ids=["no volumes", "root only"]
    )
    def test_an_instance_with_nothing_to_snapshot_is_a_warning_not_a_create(
        self, volumes: int, exclude_boot: bool
    ) -> None:
        policy = make_policy(snapshot=SnapshotSettings(exclude_boot_volume=exclude_boot))
        p = run(policy, instances=[make_instance(I1, volumes=volumes)])
        assert creates(p) == []
        assert [(w.resource_id, "no volumes" in w.message) for w in p.warnings] == [(I1, True)]

    def test_tag_problems_become_warnings_and_full_values_reach_the_action(self) -> None:
        policy = make_policy(snapshot=SnapshotSettings(tags={"Note": "x" * 300}))
        p = run(policy, instances=[make_instance(I1)])
        [create] = creates(p)
        assert create.full_tag_values == {"Note": "x" * 300}
        assert any("Note cut to 256" in m for m in messages(p))

    def test_a_resource_selected_by_several_policies_gets_one_warning_and_two_creates(self) -> None:
        daily, monthly = (
            make_policy("daily"),
            make_policy("monthly", schedule=Schedule("cron(0 4 1 * ? *)")),
        )
        weekly = make_policy("weekly", schedule=Schedule("cron(0 5 ? * 1 *)"))
        p = run(daily, monthly, weekly, instances=[make_instance(I1)])
        assert sorted(c.policy for c in creates(p)) == ["daily", "monthly", "weekly"]
        [warning] = p.warnings
        assert warning.resource_id == I1
        assert "selected by 3 policies (daily, monthly, weekly)" in warning.message


class TestRetention:
    def test_points_no_rule_keeps_are_deleted_with_a_reason(self) -> None:
        policy = make_policy(retention=KEEP3_7D, safety=NO_BREAKER)
        snaps = nightly("nightly", I1, range(1, 29))
        p = run(policy, instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert set(deletes(p)) == {rp(d) for d in range(1, 22)}
        assert deletes(p)[rp(1)].reason == "older than max_age 7d; not kept by keep_last 3"
        assert deletes(p)[rp(1)].snapshot_ids == tuple(sorted(s.snapshot_id for s in snaps[:2]))
        assert kept(p)[rp(28)] == ("keep_last", "max_age")
        assert kept(p)[rp(22)] == ("max_age",)

    def test_a_policy_without_retention_keeps_seven_days(self) -> None:
        snaps = nightly("nightly", I1, range(15, 29))
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert set(deletes(p)) == {rp(d) for d in range(15, 22)}

    def test_keep_last_alone_keeps_exactly_that_many(self) -> None:
        snaps = nightly("nightly", I1, range(20, 29))
        p = run(
            make_policy(retention=Retention(keep_last=3)),
            instances=[make_instance(I1, volumes=2)],
            snapshots=snaps,
        )
        assert set(kept(p)) == {rp(26), rp(27), rp(28)}

    def test_pending_points_are_kept_and_never_deleted(self) -> None:
        snaps = nightly("nightly", I1, [1], state="pending") + nightly("nightly", I1, [27, 28])
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert kept(p)[rp(1)] == ("pending",)
        assert rp(1) not in deletes(p)

    def test_failed_points_are_deleted_even_when_newest(self) -> None:
        good = nightly("nightly", I1, [1])
        bad = nightly("nightly", I1, [27])
        bad = [replace(bad[0], state="error"), bad[1]]
        p = run(
            make_policy(retention=Retention(keep_last=5)),
            instances=[make_instance(I1, volumes=2)],
            snapshots=good + bad,
        )
        action = deletes(p)[rp(27)]
        assert action.reason == f"failed: {bad[0].snapshot_id} is in state error"
        # the error snapshot goes last, so a half-done delete still reads as failed
        assert action.snapshot_ids == (bad[1].snapshot_id, bad[0].snapshot_id)
        assert kept(p)[rp(1)] == ("keep_last",)

    def test_a_failed_point_with_pending_snapshots_waits_for_them(self) -> None:
        snaps = nightly("nightly", I1, [20])
        snaps = [replace(snaps[0], state="error"), replace(snaps[1], state="pending")]
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert deletes(p) == {}
        [skipped] = p.skipped
        assert skipped.reason.startswith("failed:")
        assert "finish pending" in skipped.reason

    def test_a_point_an_ami_uses_is_skipped_not_deleted(self) -> None:
        snaps = nightly("nightly", I1, [1, 28])
        image = Image("ami-0123", "us-east-1", snapshot_ids=(snaps[1].snapshot_id,))
        p = run(
            make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps, images=[image]
        )
        assert deletes(p) == {}
        [skipped] = p.skipped
        assert (skipped.recovery_point, skipped.reason) == (rp(1), "in use by AMI ami-0123")

    def test_a_partly_deleted_point_is_deleted_again_with_what_is_left(self) -> None:
        snaps = nightly("nightly", I1, [1, 28])
        left = [s for s in snaps if s.snapshot_id != snaps[0].snapshot_id]
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=left)
        assert deletes(p)[rp(1)].snapshot_ids == (snaps[1].snapshot_id,)

    def test_ties_in_creation_time_keep_the_point_with_the_smallest_snapshot_id(self) -> None:
        same = utc(2026, 11, 27, 3, 0, 4)
        a = make_recovery_point(
            "nightly", I1, utc(2026, 11, 27, 3), created_at=same, snapshot_prefix="snap-b"
        )
        b = make_recovery_point(
            "nightly", I1, utc(2026, 11, 27, 4), created_at=same, snapshot_prefix="snap-a"
        )
        p = run(
            make_policy(retention=Retention(keep_last=1)),
            instances=[make_instance(I1)],
            snapshots=a + b,
        )
        assert set(kept(p)) == {b[0].tags["smartvault:recovery-point"]}

    def test_calendar_buckets_use_the_schedule_time_zone(self) -> None:
        policy = make_policy(
            schedule=Schedule("cron(0 0 * * ? *)", "Europe/Berlin"),
            retention=Retention(keep_last=1, daily=2),
        )
        # 23:30Z on the 26th is 00:30 on the 27th in Berlin: the same day as the 27th 22:00Z
        snaps = (
            make_recovery_point("nightly", I1, utc(2026, 11, 26, 23, 30))
            + make_recovery_point("nightly", I1, utc(2026, 11, 27, 22))
            + make_recovery_point("nightly", I1, utc(2026, 11, 26, 12))
        )
        p = run(policy, instances=[make_instance(I1)], snapshots=snaps)
        assert set(kept(p)) == {"nightly/i-0abc/20261127T2200Z", "nightly/i-0abc/20261126T1200Z"}

    def test_a_resource_retagged_from_gold_to_bronze_follows_bronze(self) -> None:
        policy = make_policy(
            safety=NO_BREAKER,
            retention=KEEP3_7D,
            retention_by_tag=(
                RetentionRule(
                    tag_filter(tier="gold"), Retention(keep_last=1, max_age=Duration.parse("30d"))
                ),
                RetentionRule(
                    tag_filter(tier="bronze"), Retention(keep_last=1, max_age=Duration.parse("3d"))
                ),
            ),
        )
        snaps = nightly("nightly", I1, range(1, 29))
        gold = run(
            policy,
            instances=[make_instance(I1, volumes=2, tags={"backup": "true", "tier": "gold"})],
            snapshots=snaps,
        )
        assert deletes(gold) == {}
        bronze = run(
            policy,
            instances=[make_instance(I1, volumes=2, tags={"backup": "true", "tier": "bronze"})],
            snapshots=snaps,
        )
        assert set(deletes(bronze)) == {rp(d) for d in range(1, 26)}
        assert deletes(bronze)[rp(1)].reason == (
            "older than max_age 3d; not kept by keep_last 1 (retention_by_tag 2: tier=bronze)"
        )

    def test_a_vanished_instance_follows_the_tags_recorded_at_creation(self) -> None:
        policy = make_policy(
            retention=KEEP3_7D,
            retention_by_tag=(
                RetentionRule(tag_filter(tier="gold"), Retention(max_age=Duration.parse("30d"))),
            ),
        )
        recorded = {TAG_RESOURCE_TAGS: json.dumps({"tier": "gold"})}
        snaps = nightly("nightly", I1, range(1, 29), extra_tags=recorded)
        p = run(policy, snapshots=snaps)
        assert deletes(p) == {}
        assert creates(p) == []

    def test_a_vanished_instance_keeps_its_keep_last_newest_forever(self) -> None:
        snaps = nightly("nightly", I1, [1, 2, 3, 4])
        p = run(make_policy(retention=KEEP3_7D), snapshots=snaps, at=utc(2027, 6, 1))
        assert set(deletes(p)) == {rp(1)}
        assert set(kept(p)) == {rp(2), rp(3), rp(4)}

    def test_a_resource_that_no_longer_matches_keeps_following_retention(self) -> None:
        snaps = nightly("nightly", I1, range(1, 29))
        p = run(
            make_policy(retention=KEEP3_7D, safety=NO_BREAKER),
            instances=[make_instance(I1, volumes=2, tags={})],
            snapshots=snaps,
        )
        assert creates(p) == []
        assert len(deletes(p)) == 21

    @pytest.mark.parametrize(
        "recorded",
        ['{"tier": "go', '{"smartvault:cut":"true","backup":"true"}'],
        ids=["unreadable", "cut-to-fit"],
    )
    def test_a_vanished_resource_with_untrustworthy_recorded_tags_keeps_everything(
        self, recorded: str
    ) -> None:
        """A lost `tier: gold` must not fall back to a shorter rule: never widen deletion."""
        snaps = nightly("nightly", I1, range(1, 29), extra_tags={TAG_RESOURCE_TAGS: recorded})
        p = run(make_policy(retention=KEEP3_7D, safety=NO_BREAKER), snapshots=snaps)
        assert deletes(p) == {}
        assert len(kept(p)) == 28
        assert any("cannot be read whole" in m for m in messages(p))

    @pytest.mark.parametrize(
        ("value", "deleted_days", "warned"),
        [
            ("2d", set(range(1, 26)), False),  # keep_last 3 still keeps the 26th
            ("60d", set(), False),
            ("forever", set(range(1, 22)), True),
            ("", set(range(1, 22)), True),
        ],
        ids=["narrower", "wider", "invalid", "empty"],
    )
    def test_retention_tag_replaces_max_age_and_an_invalid_value_changes_nothing(
        self, value: str, deleted_days: set[int], warned: bool
    ) -> None:
        policy = make_policy(
            retention=KEEP3_7D, safety=NO_BREAKER, retention_tag="backup-retention"
        )
        instance = make_instance(I1, volumes=2, tags={"backup": "true", "backup-retention": value})
        p = run(policy, instances=[instance], snapshots=nightly("nightly", I1, range(1, 29)))
        assert set(deletes(p)) == {rp(d) for d in deleted_days}
        assert any("is not a duration" in m for m in messages(p)) is warned

    @pytest.mark.parametrize(
        ("overrides", "tags", "deleted_days"),
        [
            # A resource tag anyone allowed to tag an instance can set must never stop
            # the plan of every policy. 999999d is a valid duration, but at minus it lies
            # before year 1: "keep longer than time has existed" keeps everything.
            ({"retention_tag": "backup-retention"}, {"backup-retention": "999999d"}, set()),
            ({"retention_tag": "backup-retention"}, {"backup-retention": "1d"}, range(1, 26)),
            ({"retention": Retention(keep_last=1, max_age=Duration.parse("999999w"))}, {}, set()),
            ({"archive_after": Duration.parse("999999d")}, {}, set()),
            ({"schedule": Schedule("rate(700000 days)", "UTC")}, {}, set()),
        ],
        ids=["retention_tag", "short_tag_control", "max_age", "archive_after", "rate_period"],
    )
    def test_durations_reaching_before_year_one_plan_and_widen_nothing(
        self, overrides: dict[str, object], tags: dict[str, str], deleted_days: range | set[int]
    ) -> None:
        policy = make_policy(**{"retention": KEEP3_60D, "safety": NO_BREAKER, **overrides})
        instance = make_instance(I1, volumes=2, tags={"backup": "true", **tags})
        p = run(policy, instances=[instance], snapshots=nightly("nightly", I1, range(1, 29)))
        assert set(deletes(p)) == {rp(d) for d in deleted_days}
        assert not [a for a in p.actions if a.type == "archive"]

    def test_a_stale_lineage_warns_that_backups_are_failing(self) -> None:
        snaps = nightly("nightly", I1, [20])
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert any(m.startswith("backups are failing") for m in messages(p))

    def test_a_lineage_within_two_periods_does_not_warn(self) -> None:
        snaps = nightly("nightly", I1, [27])
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert p.warnings == ()

    def test_a_lineage_with_only_failed_points_warns(self) -> None:
        snaps = nightly("nightly", I1, [27], state="error")
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert any(m.startswith("backups are failing: none has completed") for m in messages(p))


class TestOwnership:
    def test_a_disabled_policy_neither_creates_nor_deletes(self) -> None:
        policy = make_policy(enabled=False)
        snaps = nightly("nightly", I1, [1, 2])
        p = run(policy, instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert p.actions == ()
        assert kept(p) == {rp(1): ("disabled",), rp(2): ("disabled",)}
        assert p.orphans == ()
        assert p.policies[0].slot is None

    def test_snapshots_of_an_unknown_policy_are_orphans(self) -> None:
        snaps = nightly("old-policy", I1, [1])
        p = run(make_policy(), snapshots=snaps)
        assert p.actions == ()
        [orphan] = p.orphans
        assert orphan.policy == "old-policy"
        assert orphan.snapshot_ids == tuple(sorted(s.snapshot_id for s in snaps))

    def test_unmanaged_snapshots_are_ignored(self) -> None:
        stranger = Snapshot(
            "snap-x",
            "us-east-1",
            "vol-1",
            "completed",
            utc(2020, 1, 1),
            tags={"smartvault:policy": "nightly"},
        )
        p = run(make_policy(), snapshots=[stranger])
        assert p.actions == ()
        assert p.kept == ()
        assert p.orphans == ()

    def test_snapshots_in_the_recycle_bin_are_ignored(self) -> None:
        snaps = [replace(s, state="recoverable") for s in nightly("nightly", I1, [1])]
        p = run(make_policy(), snapshots=snaps)
        assert p.actions == ()
        assert p.kept == ()

    def test_the_plan_lists_every_policy_with_its_file_and_slot(self) -> None:
        p = run(make_policy("a"), make_policy("b", enabled=False, file="policies/b.yaml"))
        assert [(s.name, s.file, s.slot) for s in p.policies] == [
            ("a", "policies/test.yaml", utc(2026, 11, 28, 3)),
            ("b", "policies/b.yaml", None),
        ]
        assert p.at == p.generated_at == AT
        assert p.regions == ("us-east-1",)


class TestArchive:
    def test_kept_points_older_than_archive_after_are_archived_but_not_the_newest(self) -> None:
        policy = make_policy(
            retention=Retention(keep_last=1, monthly=12),
            archive_after=Duration.parse("90d"),
        )
        snaps = [
            s
            for month in (3, 6, 8, 9)
            for s in make_recovery_point("nightly", I1, utc(2026, month, 1, 3))
        ]
        instance = make_instance(I1)
        p = run(policy, instances=[instance], snapshots=snaps)
        archived = {a.recovery_point: a for a in p.actions if a.type == "archive"}
        assert set(archived) == {rp(1, month=3), rp(1, month=6), rp(1, month=8)}
        assert archived[rp(1, month=3)].reason == "older than archive after 90d; kept by monthly"
        # the newest is never archived, however old
        assert rp(1, month=9) not in archived

    def test_archived_snapshots_are_not_archived_again(self) -> None:
        policy = make_policy(retention=Retention(keep_last=5), archive_after=Duration.parse("7d"))
        old = [replace(s, storage_tier="archive") for s in nightly("nightly", I1, [1])]
        half = nightly("nightly", I1, [2])
        half = [replace(half[0], storage_tier="archive"), half[1]]
        p = run(
            policy,
            instances=[make_instance(I1, volumes=2)],
            snapshots=old + half + nightly("nightly", I1, [28]),
        )
        [archive] = [a for a in p.actions if a.type == "archive"]
        assert (archive.recovery_point, archive.snapshot_ids) == (rp(2), (half[1].snapshot_id,))

    def test_a_temporarily_restored_snapshot_is_not_archived_again(self) -> None:
        """EC2 re-archives it when its restore period ends; archiving it now would fail."""
        policy = make_policy(retention=Retention(keep_last=5), archive_after=Duration.parse("7d"))
        restored = [
            replace(s, restore_expiry=utc(2026, 12, 5)) for s in nightly("nightly", I1, [1])
        ]
        p = run(
            policy,
            instances=[make_instance(I1, volumes=2)],
            snapshots=restored + nightly("nightly", I1, [2, 28]),
        )
        archived = {a.recovery_point: a.snapshot_ids for a in p.actions if a.type == "archive"}
        assert archived == {rp(2): tuple(s.snapshot_id for s in nightly("nightly", I1, [2]))}


class TestCopies:
    WEST = "us-west-2"

    def policy(self, **kw) -> Policy:
        return make_policy(copies=(CopyRule(self.WEST, Retention(keep_last=2), "alias/b"),), **kw)

    def copies_of(self, snaps: list[Snapshot], region: str = WEST) -> list[Snapshot]:
        return [
            replace(
                s,
                snapshot_id=s.snapshot_id.replace("snap-", "snap-c"),
                region=region,
                volume_id="vol-ffffffff",
                tags={**s.tags, TAG_SOURCE: f"us-east-1/{s.snapshot_id}"},
            )
            for s in snaps
        ]

    def test_the_newest_completed_point_is_copied_once(self) -> None:
        snaps = nightly("nightly", I1, [26, 27]) + nightly("nightly", I1, [28], state="pending")
        p = run(
            self.policy(),
            instances=[make_instance(I1, volumes=2)],
            snapshots=snaps,
            regions=("us-east-1", self.WEST),
        )
        [copy] = [a for a in p.actions if isinstance(a, CopyAction)]
        assert (copy.recovery_point, copy.target_region, copy.kms_key_id) == (
            rp(27),
            self.WEST,
            "alias/b",
        )
        assert copy.reason == "newest recovery point has no copy in us-west-2"

    def test_a_point_with_a_copy_is_not_copied_again(self) -> None:
        snaps = nightly("nightly", I1, [27, 28])
        copies = self.copies_of(nightly("nightly", I1, [28]))
        p = run(
            self.policy(),
            instances=[make_instance(I1, volumes=2)],
            snapshots=snaps + copies,
            regions=("us-east-1", self.WEST),
        )
        assert [a for a in p.actions if isinstance(a, CopyAction)] == []

    def test_a_partial_copy_is_completed_with_the_missing_snapshots_only(self) -> None:
        snaps = nightly("nightly", I1, [27, 28])
        newest = [s for s in snaps if s.tags["smartvault:recovery-point"] == rp(28)]
        copies = self.copies_of(newest[:1])
        p = run(
            self.policy(),
            instances=[make_instance(I1, volumes=2)],
            snapshots=snaps + copies,
            regions=("us-east-1", self.WEST),
        )
        copy = next(a for a in p.actions if isinstance(a, CopyAction))
        assert (copy.recovery_point, copy.snapshot_ids) == (rp(28), (newest[1].snapshot_id,))
        assert copy.reason == "completes the copy to us-west-2: 1 of 2 snapshots missing"

    def test_copies_of_an_older_point_do_not_count_for_the_newest(self) -> None:
        snaps = nightly("nightly", I1, [27, 28])
        older = [s for s in snaps if s.tags["smartvault:recovery-point"] == rp(27)]
        p = run(
            self.policy(),
            instances=[make_instance(I1, volumes=2)],
            snapshots=snaps + self.copies_of(older),
            regions=("us-east-1", self.WEST),
        )
        copy = next(a for a in p.actions if isinstance(a, CopyAction))
        assert copy.recovery_point == rp(28)
        assert len(copy.snapshot_ids) == 2
        assert copy.reason == "newest recovery point has no copy in us-west-2"

    def test_a_copy_in_the_recycle_bin_does_not_count(self) -> None:
        snaps = nightly("nightly", I1, [28])
        binned = [replace(c, state="recoverable") for c in self.copies_of(snaps)]
        p = run(
            self.policy(),
            instances=[make_instance(I1, volumes=2)],
            snapshots=snaps + binned,
            regions=("us-east-1", self.WEST),
        )
        assert len(next(a for a in p.actions if isinstance(a, CopyAction)).snapshot_ids) == 2

    def test_a_missing_snapshot_that_is_archived_is_not_copied_but_warned(self) -> None:
        snaps = nightly("nightly", I1, [28])
        snaps = [snaps[0], replace(snaps[1], storage_tier="archive")]
        p = run(
            self.policy(),
            instances=[make_instance(I1, volumes=2)],
            snapshots=snaps + self.copies_of(snaps[:1]),
            regions=("us-east-1", self.WEST),
        )
        assert [a for a in p.actions if isinstance(a, CopyAction)] == []
        assert any("is archived: not copied to us-west-2" in m for m in messages(p))

    def test_copies_form_their_own_lineage_with_the_copy_rule_retention(self) -> None:
        copies = self.copies_of(nightly("nightly", I1, [1, 2, 3, 4]))
        p = run(self.policy(), snapshots=copies, regions=("us-east-1", self.WEST))
        west = {a.recovery_point: a for a in p.actions if isinstance(a, DeleteAction)}
        assert set(west) == {rp(1), rp(2)}
        assert all(a.region == self.WEST for a in west.values())
        assert west[rp(1)].reason == "not kept by keep_last 2 (copy rule for us-west-2)"

    def test_copies_whose_rule_was_removed_are_kept_with_a_warning(self) -> None:
        copies = self.copies_of(nightly("nightly", I1, [1, 2, 3, 4]))
        p = run(make_policy(), snapshots=copies, regions=("us-east-1", self.WEST))
        assert p.actions == ()
        assert set(kept(p).values()) == {("no_copy_rule",)}
        assert any("no copy rule any more" in m for m in messages(p))

    def test_copies_to_a_region_not_read_are_not_planned(self) -> None:
        snaps = nightly("nightly", I1, [28])
        p = run(self.policy(), instances=[make_instance(I1, volumes=2)], snapshots=snaps)
        assert [a for a in p.actions if isinstance(a, CopyAction)] == []
        assert any("that region was not read" in m for m in messages(p))


def test_actions_are_ordered_by_policy_region_resource_and_type() -> None:
    policies = (
        make_policy("b", retention=Retention(keep_last=1)),
        make_policy("a", retention=Retention(keep_last=1)),
    )
    instances = [make_instance("i-2"), make_instance("i-1")]
    snaps = [
        s
        for pol in ("a", "b")
        for i in ("i-1", "i-2")
        for s in nightly(pol, i, [1, 2], volume_ids=("vol-1",))
    ]
    p = plan(PolicySet(policies), make_inventory(instances=instances, snapshots=snaps), AT)
    assert [(a.policy, a.resource_id, a.type) for a in p.actions] == [
        ("a", "i-1", "create"),
        ("a", "i-1", "delete"),
        ("a", "i-2", "create"),
        ("a", "i-2", "delete"),
        ("b", "i-1", "create"),
        ("b", "i-1", "delete"),
        ("b", "i-2", "create"),
        ("b", "i-2", "delete"),
    ]


def test_a_policy_applies_only_to_instances_in_its_regions_within_the_inventory() -> None:
    east, west = make_instance("i-e"), make_instance("i-w", region="us-west-2")
    policy = make_policy(regions=("us-west-2",))
    p = run(policy, instances=[east, west], regions=("us-east-1", "us-west-2"))
    assert [c.resource_id for c in creates(p)] == ["i-w"]
    assert p.warnings == ()


def test_plan_does_not_mutate_or_depend_on_anything_but_its_arguments() -> None:
    snaps = nightly("nightly", I1, range(1, 29))
    inventory = make_inventory(instances=[make_instance(I1, volumes=2)], snapshots=snaps)
    policies = PolicySet((make_policy(retention=KEEP3_7D),))
    assert plan(policies, inventory, AT) == plan(policies, inventory, AT + timedelta(0))
    assert isinstance(inventory.instances[0], Instance)


def test_an_unreadable_schedule_creates_nothing_but_retention_still_applies() -> None:
    policy = make_policy(schedule=Schedule("cron(bad)"), retention=KEEP3_7D, safety=NO_BREAKER)
    snaps = nightly("nightly", I1, range(1, 29))
    p = run(policy, instances=[make_instance(I1, volumes=2)], snapshots=snaps)
    assert creates(p) == []
    assert len(deletes(p)) == 21
    assert any(m.startswith("schedule cannot be read") for m in messages(p))


@pytest.mark.parametrize("enabled_before", [True, False])
def test_planning_leaves_the_garbage_collector_as_it_found_it(enabled_before: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled_before else gc.disable)()
        run(make_policy(), instances=[make_instance(I1)])
        assert gc.isenabled() is enabled_before
    finally:
        (gc.enable if was else gc.disable)()


# --- malformed managed snapshots ------------------------------------------------------

TODAY = utc(2026, 11, 28, 3)


def managed(
    snapshot_id: str,
    tags: dict[str, str],
    *,
    volume_id: str = "vol-0abc0",
    created: datetime | None = None,
    region: str = "us-east-1",
    state: str = "completed",
) -> Snapshot:
    """A snapshot carrying valid CreatedBy and smartvault:policy tags plus ``tags``."""
    base = {"CreatedBy": "SmartVault", "smartvault:policy": "nightly"}
    when = created or TODAY.replace(minute=5)
    return Snapshot(snapshot_id, region, volume_id, state, when, tags={**base, **tags})


def well_formed_tags(
    resource_id: str = I1, slot: datetime = TODAY, policy: str = "nightly"
) -> dict[str, str]:
    return {
        "smartvault:policy": policy,
        "smartvault:recovery-point": f"{policy}/{resource_id}/{slot:%Y%m%dT%H%MZ}",
        "smartvault:slot": f"{slot:%Y-%m-%dT%H:%M:%SZ}",
        "InstanceId": resource_id,
    }


def without(tags: dict[str, str], *keys: str) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k not in keys}


# (tags, what the warning must say): each is a managed snapshot of I1's first volume,
# made today, that is not part of any recovery point.
MALFORMED = {
    "no recovery-point tag": (
        without(well_formed_tags(), "smartvault:recovery-point"),
        "has no smartvault:recovery-point tag",
    ),
    "empty recovery-point tag": (
        {**well_formed_tags(), "smartvault:recovery-point": ""},
        "has no smartvault:recovery-point tag",
    ),
    "unparsable": (
        {**well_formed_tags(), "smartvault:recovery-point": "nightly/i-0abc"},
        "does not read as <policy>/<resource-id>/<slot>",
    ),
    "extra part": (
        {**well_formed_tags(), "smartvault:recovery-point": "nightly/i-0abc/20261128T0300Z/x"},
        "does not read as <policy>/<resource-id>/<slot>",
    ),
    "slot not as SmartVault writes it": (
        {**well_formed_tags(), "smartvault:recovery-point": "nightly/i-0abc/2026-11-28T03:00Z"},
        "does not read as <policy>/<resource-id>/<slot>",
    ),
    "impossible slot": (
        {**well_formed_tags(), "smartvault:recovery-point": "nightly/i-0abc/20261131T0300Z"},
        "does not read as <policy>/<resource-id>/<slot>",
    ),
    "another policy in the id": (
        {**well_formed_tags(), "smartvault:recovery-point": "weekly/i-0abc/20261128T0300Z"},
        "names policy 'weekly', but its smartvault:policy tag is 'nightly'",
    ),
    "another resource in the id": (
        {**well_formed_tags(), "smartvault:recovery-point": "nightly/i-0other/20261128T0300Z"},
        "names resource 'i-0other', but its InstanceId tag is 'i-0abc'",
    ),
    "no InstanceId tag": (
        without(well_formed_tags(), "InstanceId"),
        "names resource 'i-0abc', but it has no InstanceId tag",
    ),
    "another slot tag": (
        {**well_formed_tags(), "smartvault:slot": "2026-11-27T03:00:00Z"},
        "names slot 2026-11-28T03:00:00Z, but its smartvault:slot tag is '2026-11-27T03:00:00Z'",
    ),
    "no slot tag": (
        without(well_formed_tags(), "smartvault:slot"),
        "names slot 2026-11-28T03:00:00Z, but it has no smartvault:slot tag",
    ),
    "unreadable slot tag": (
        {**well_formed_tags(), "smartvault:slot": "yesterday"},
        "names slot 2026-11-28T03:00:00Z, but its smartvault:slot tag is 'yesterday'",
    ),
}


def snapshot_ids(p: Plan) -> set[str]:
    """Every snapshot the plan acts on or lists as kept, skipped or orphaned."""
    return {
        s
        for entry in (*p.actions, *p.kept, *p.skipped, *p.orphans)
        for s in getattr(entry, "snapshot_ids", ())
    }


class TestMalformed:
    """Managed snapshots whose recovery-point tag disagrees with their own tags."""

    @pytest.mark.parametrize(("tags", "why"), list(MALFORMED.values()), ids=list(MALFORMED))
    def test_a_malformed_snapshot_is_left_alone_and_warned_about(
        self, tags: dict[str, str], why: str
    ) -> None:
        policy = make_policy(retention=Retention(keep_last=1))
        snaps = nightly("nightly", I1, [26, 27])
        p = run(
            policy,
            instances=[make_instance(I1, volumes=2)],
            snapshots=[*snaps, managed("snap-bad", tags)],
        )
        assert "snap-bad" not in snapshot_ids(p)
        [create] = creates(p)
        assert create.recovery_point == rp(28)
        assert set(deletes(p)) == {rp(26)}
        assert set(kept(p)) == {rp(27)}
        [warning] = [w for w in p.warnings if "snap-bad" in w.message]
        assert why in warning.message
        assert "SmartVault leaves it alone" in warning.message
        # the resource it is of: its InstanceId, else its own volume
        resource_id = I1 if "InstanceId" in tags else "vol-0abc0"
        assert (warning.policy, warning.resource_id, warning.region) == (
            "nightly",
            resource_id,
            "us-east-1",
        )

    def test_two_malformed_snapshots_today_neither_suppress_the_backup_nor_push_points_out(
        self,
    ) -> None:
        """keep_last 2 over 3 real points: the malformed ones must not be the 2 newest."""
        policy = make_policy(retention=Retention(keep_last=2))
        real = nightly("nightly", I1, [25, 26, 27])
        bad = [
            managed("snap-bad1", without(well_formed_tags(), "smartvault:recovery-point")),
            managed("snap-bad2", {**well_formed_tags(), "smartvault:recovery-point": "x"}),
        ]
        p = run(policy, instances=[make_instance(I1, volumes=2)], snapshots=real + bad)
        assert [c.recovery_point for c in creates(p)] == [rp(28)]
        assert set(deletes(p)) == {rp(25)}
        assert set(kept(p)) == {rp(26), rp(27)}
        assert "snap-bad1" not in snapshot_ids(p)
        assert "snap-bad2" not in snapshot_ids(p)
        assert len([w for w in p.warnings if "snap-bad" in w.message]) == 2

    def test_a_squatter_on_another_volume_suppresses_neither_the_backup_nor_the_copy(
        self,
    ) -> None:
        """Today's recovery-point id on a snapshot of another instance's volume."""
        west = "us-west-2"
        policy = make_policy(copies=(CopyRule(west, Retention(keep_last=2)),))
        real = nightly("nightly", I1, [27])
        squatter = managed(
            "snap-squat",
            {**well_formed_tags("i-0other"), "smartvault:recovery-point": rp(28)},
            volume_id="vol-0other0",
        )
        p = run(
            policy,
            instances=[make_instance(I1, volumes=2), make_instance("i-0other", tags={})],
            snapshots=[*real, squatter],
            regions=("us-east-1", west),
        )
        assert [c.recovery_point for c in creates(p)] == [rp(28)]
        [copy] = [a for a in p.actions if isinstance(a, CopyAction)]
        assert copy.recovery_point == rp(27)
        assert set(copy.snapshot_ids) == {s.snapshot_id for s in real}
        assert "snap-squat" not in snapshot_ids(p)
        [warning] = [w for w in p.warnings if "snap-squat" in w.message]
        assert "names resource 'i-0abc', but its InstanceId tag is 'i-0other'" in warning.message
        assert warning.resource_id == "i-0other"

    def test_a_snapshot_without_a_recovery_point_is_never_planned_for_deletion(self) -> None:
        """Plan and apply agree: the executor refuses anything whose tag is not the action's."""
        old = managed(
            "snap-old",
            without(well_formed_tags(), "smartvault:recovery-point"),
            created=utc(2026, 1, 1),
        )
        real = nightly("nightly", I1, [27])
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=[old, *real])
        assert deletes(p) == {}
        assert [c.recovery_point for c in creates(p)] == [rp(28)]

    def test_a_malformed_snapshot_in_state_error_is_not_deleted(self) -> None:
        bad = managed("snap-err", {**well_formed_tags(), "smartvault:slot": "x"}, state="error")
        p = run(make_policy(), instances=[make_instance(I1, volumes=2)], snapshots=[bad])
        assert deletes(p) == {}
        assert any("snap-err" in m for m in messages(p))

    def test_a_malformed_snapshot_is_never_archived(self) -> None:
        policy = make_policy(retention=Retention(keep_last=5), archive_after=Duration.parse("7d"))
        bad = managed(
            "snap-old",
            {**well_formed_tags(slot=utc(2026, 10, 1, 3)), "smartvault:slot": "x"},
            created=utc(2026, 10, 1, 3),
        )
        real = nightly("nightly", I1, [1, 28], month=11)
        p = run(policy, instances=[make_instance(I1, volumes=2)], snapshots=[bad, *real])
        archived = [a for a in p.actions if a.type == "archive"]
        assert [a.recovery_point for a in archived] == [rp(1)]

    def test_a_volume_snapshot_must_be_of_the_volume_its_id_names(self) -> None:
        policy = make_policy("vols", resource="volume", retention=Retention(keep_last=1))
        volume = Volume("vol-a", "us-east-1", tags={"backup": "true"})
        tags = without(well_formed_tags("vol-a", policy="vols"), "InstanceId")
        yesterday = utc(2026, 11, 27, 3)
        good_tags = without(well_formed_tags("vol-a", yesterday, policy="vols"), "InstanceId")
        good = managed("snap-good", good_tags, volume_id="vol-a", created=yesterday)
        bad = managed("snap-bad", tags, volume_id="vol-b")
        p = run(policy, volumes=[volume], snapshots=[good, bad])
        assert [c.resource_id for c in creates(p)] == ["vol-a"]
        assert "snap-bad" not in snapshot_ids(p)
        assert kept(p) == {"vols/vol-a/20261127T0300Z": ("keep_last",)}
        [warning] = [w for w in p.warnings if "snap-bad" in w.message]
        assert "names resource 'vol-a', but it is a snapshot of volume vol-b" in warning.message
        assert (warning.policy, warning.resource_id) == ("vols", "vol-b")

    def test_a_copy_of_a_volume_snapshot_may_have_any_volume_id(self) -> None:
        west = "us-west-2"
        policy = make_policy("vols", resource="volume", copies=(CopyRule(west),))
        tags = {
            **without(well_formed_tags("vol-a", policy="vols"), "InstanceId"),
            "smartvault:source": "us-east-1/snap-good",
        }
        copy = managed("snap-copy", tags, volume_id="vol-ffffffff", region=west)
        p = run(
            policy, snapshots=[copy], regions=("us-east-1", west), resource_regions=("us-east-1",)
        )
        assert kept(p) == {"vols/vol-a/20261128T0300Z": ("keep_last", "max_age")}
        # Only that the source volume is gone; nothing about the copy.
        assert messages(p) == [
            'selector.tags {backup: "true"} matches no volume in us-east-1: '
            "nothing is backed up there"
        ]

    def test_a_malformed_copy_neither_counts_as_a_copy_nor_is_kept_by_copy_retention(
        self,
    ) -> None:
        west = "us-west-2"
        policy = make_policy(copies=(CopyRule(west, Retention(keep_last=1)),))
        real = nightly("nightly", I1, [28])
        fake_copies = [
            managed(
                f"snap-fake{n}",
                {
                    **well_formed_tags(),
                    "smartvault:source": f"us-east-1/{s.snapshot_id}",
                    "InstanceId": "i-0other",
                },
                volume_id="vol-ffffffff",
                region=west,
            )
            for n, s in enumerate(real)
        ]
        p = run(
            policy,
            instances=[make_instance(I1, volumes=2)],
            snapshots=real + fake_copies,
            regions=("us-east-1", west),
        )
        [copy] = [a for a in p.actions if isinstance(a, CopyAction)]
        assert set(copy.snapshot_ids) == {s.snapshot_id for s in real}
        assert not {"snap-fake0", "snap-fake1"} & snapshot_ids(p)
        # the same reason twice: one warning that names both
        [warning] = [w for w in p.warnings if "snap-fake" in w.message]
        assert warning.message.startswith("2 snapshots (snap-fake0, snap-fake1) are managed")
        assert "names resource 'i-0abc', but its InstanceId tag is 'i-0other'" in warning.message
        assert (warning.resource_id, warning.region) == ("i-0other", west)

    def test_a_copy_of_another_recovery_point_does_not_count_as_a_copy_of_this_one(
        self,
    ) -> None:
        """A well-formed copy that names a source of another recovery point is no copy of it."""
        west = "us-west-2"
        policy = make_policy(copies=(CopyRule(west, Retention(keep_last=3)),))
        real = nightly("nightly", I1, [28])
        claims = [
            managed(
                f"snap-claim{n}",
                {
                    **well_formed_tags(slot=utc(2026, 11, 20, 3)),
                    "smartvault:source": f"us-east-1/{s.snapshot_id}",
                },
                region=west,
            )
            for n, s in enumerate(real)
        ]
        p = run(
            policy,
            instances=[make_instance(I1, volumes=2)],
            snapshots=real + claims,
            regions=("us-east-1", west),
        )
        [copy] = [a for a in p.actions if isinstance(a, CopyAction)]
        assert set(copy.snapshot_ids) == {s.snapshot_id for s in real}

    def test_a_malformed_snapshot_of_an_unknown_policy_is_listed_as_malformed(self) -> None:
        tags = {**well_formed_tags(policy="old"), "InstanceId": "i-0other"}
        good = managed("snap-orphan", well_formed_tags(policy="old"))
        bad = managed("snap-bad", tags)
        p = run(make_policy(), snapshots=[good, bad])
        assert [o.snapshot_ids for o in p.orphans] == [("snap-orphan",)]
        [warning] = [w for w in p.warnings if "snap-bad" in w.message]
        assert "its InstanceId tag is 'i-0other'" in warning.message
        assert warning.policy == "old"

    @pytest.mark.parametrize(
        ("volume_id", "orphaned"), [("vol-a", True), ("vol-b", False)], ids=["same", "other"]
    )
    def test_an_orphan_without_instance_id_must_be_of_the_volume_its_id_names(
        self, volume_id: str, orphaned: bool
    ) -> None:
        tags = without(well_formed_tags("vol-a", policy="old"), "InstanceId")
        p = run(make_policy(), snapshots=[managed("snap-x", tags, volume_id=volume_id)])
        assert bool(p.orphans) is orphaned
        assert any("snap-x" in m for m in messages(p)) is not orphaned

    def test_an_orphan_copy_without_instance_id_is_an_orphan(self) -> None:
        tags = {
            **without(well_formed_tags("vol-a", policy="old"), "InstanceId"),
            "smartvault:source": "us-east-1/snap-1",
        }
        p = run(make_policy(), snapshots=[managed("snap-x", tags, volume_id="vol-ffffffff")])
        assert [o.snapshot_ids for o in p.orphans] == [("snap-x",)]

    def test_a_disabled_policy_lists_its_malformed_snapshots_as_malformed(self) -> None:
        tags = {**well_formed_tags(), "smartvault:slot": "x"}
        p = run(make_policy(enabled=False), snapshots=[managed("snap-bad", tags)])
        assert p.kept == ()
        assert any("snap-bad" in m for m in messages(p))

    def test_many_malformed_snapshots_give_a_bounded_deterministic_list_of_warnings(
        self,
    ) -> None:
        bad = [
            managed(f"snap-{n:05d}", {**well_formed_tags(), "smartvault:recovery-point": f"x{n}"})
            for n in range(3000)
        ] + [
            managed(f"snap-s{n:04d}", without(well_formed_tags(), "smartvault:slot"))
            for n in range(40)
        ]
        instance = make_instance(I1, volumes=2)
        p = run(make_policy(), instances=[instance], snapshots=bad)
        again = run(make_policy(), instances=[instance], snapshots=list(reversed(bad)))
        assert p.warnings == again.warnings
        assert len(p.warnings) <= 60
        assert sum(len(w.message) for w in p.warnings) < 60_000
        text = "\n".join(messages(p))
        # identical reasons are grouped: the 40 missing slot tags are one warning
        [grouped] = [m for m in messages(p) if "has no smartvault:slot tag" in m]
        assert "40 snapshots" in grouped
        assert "3040 malformed" in text or "more malformed" in text
        assert [c.recovery_point for c in creates(p)] == [rp(28)]
