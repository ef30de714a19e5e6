"""Restore tests in the plan: which lineage is due for a ``verify`` action, of what, and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from itertools import groupby

from smartvault.core.model import CopyRule
from smartvault.core.model import Duration
from smartvault.core.model import Plan
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import Snapshot
from smartvault.core.model import Verify
from smartvault.core.model import VerifyAction
from smartvault.core.planner import plan
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import TAG_VERIFIED
from smartvault.core.times import iso_utc
from tests.factories import NO_BREAKER
from tests.factories import make_instance
from tests.factories import make_inventory
from tests.factories import make_policy
from tests.factories import make_recovery_point
from tests.factories import utc

AT = utc(2026, 11, 28, 17)
I1 = "i-0abc"
VOLS = ("vol-0abc0", "vol-0abc1")
EAST, WEST = "us-east-1", "us-west-2"
WEEKLY = Verify(Duration.parse("7d"), timedelta(minutes=45))


def policy(name: str = "nightly", **overrides: object) -> Policy:
    fields: dict[str, object] = {"retention": Retention(keep_last=30), "verify": WEEKLY}
    fields.update(overrides)
    return make_policy(name, **fields)


def point(day: int, *, verified: str | None = None, **kw: object) -> list[Snapshot]:
    """The two snapshots of one nightly recovery point, made on ``day`` of November at 03:00:04."""
    extra = {TAG_VERIFIED: verified} if verified is not None else {}
    return make_recovery_point(
        "nightly", I1, utc(2026, 11, day, 3), volume_ids=VOLS, extra_tags=extra, **kw
    )


def rp(day: int) -> str:
    return f"nightly/{I1}/202611{day:02d}T0300Z"


def run(*policies: Policy, snapshots: list[Snapshot], at: datetime = AT, **kw: object) -> Plan:
    inventory = make_inventory(
        instances=[make_instance(I1, volumes=2)],
        snapshots=snapshots,
        **kw,  # type: ignore[arg-type]
    )
    return plan(PolicySet(policies), inventory, at)


def verifies(p: Plan) -> list[VerifyAction]:
    return [a for a in p.actions if isinstance(a, VerifyAction)]


def messages(p: Plan) -> list[str]:
    return [w.message for w in p.warnings]


class TestDue:
    def test_a_lineage_with_no_verified_point_tests_its_newest_completed_one(self) -> None:
        snaps = point(26) + point(27) + point(28)

        [test] = verifies(run(policy(), snapshots=snaps))

        newest = [s for s in snaps if s.tags[TAG_RECOVERY_POINT] == rp(28)]
        assert test == VerifyAction(
            region=EAST,
            policy="nightly",
            resource_id=I1,
            recovery_point=rp(28),
            snapshot_ids=tuple(sorted(s.snapshot_id for s in newest)),
            created_at=utc(2026, 11, 28, 3, 0, 4),
            reason="no verified recovery point yet",
            timeout=timedelta(minutes=45),
            retention="retention",
        )

    def test_a_point_verified_three_days_ago_needs_no_test_with_every_7d(self) -> None:
        snaps = point(25, verified="2026-11-25T03:20:00Z") + point(26) + point(27) + point(28)

        assert verifies(run(policy(), snapshots=snaps)) == []

    def test_a_point_verified_eight_days_ago_makes_the_newest_one_due(self) -> None:
        snaps = point(20, verified="2026-11-20T03:30:00Z") + point(27) + point(28)

        [test] = verifies(run(policy(), snapshots=snaps))

        assert test.recovery_point == rp(28)
        assert test.reason == (
            f"newest verified recovery point {rp(20)} was verified 2026-11-20T03:30:00Z, "
            "more than every 7d ago"
        )

    def test_exactly_every_ago_is_not_yet_due(self) -> None:
        """Due when verified *more* than ``every`` ago, as the reason says."""
        snaps = point(20, verified=iso_utc(AT - timedelta(days=7))) + point(28)

        assert verifies(run(policy(), snapshots=snaps)) == []
        assert len(verifies(run(policy(), snapshots=snaps, at=AT + timedelta(seconds=1)))) == 1

    def test_the_newest_verified_point_decides_even_when_an_older_one_was_verified_later(
        self,
    ) -> None:
        snaps = (
            point(10, verified="2026-11-27T09:00:00Z")
            + point(19, verified="2026-11-19T04:00:00Z")
            + point(28)
        )

        [test] = verifies(run(policy(), snapshots=snaps))

        assert f"{rp(19)} was verified 2026-11-19T04:00:00Z" in test.reason

    def test_the_timeout_is_the_policys(self) -> None:
        quick = policy(verify=Verify(Duration.parse("1d")))

        [test] = verifies(run(quick, snapshots=point(28)))

        assert test.timeout == timedelta(minutes=30)

    def test_a_verification_that_reaches_back_past_year_1_is_never_due_again(self) -> None:
        forever = policy(verify=Verify(Duration.parse("999999w")))
        snaps = point(1, verified="2026-11-01T04:00:00Z") + point(28)

        assert verifies(run(forever, snapshots=snaps)) == []


class TestWhichPoint:
    def test_a_pending_newest_point_leaves_the_newest_completed_one_to_test(self) -> None:
        snaps = point(27) + point(28, state="pending")

        [test] = verifies(run(policy(), snapshots=snaps))

        assert test.recovery_point == rp(27)

    def test_a_failed_newest_point_is_deleted_and_the_newest_completed_one_tested(self) -> None:
        snaps = point(27) + point(28, state="error")

        p = run(policy(), snapshots=snaps)

        [test] = verifies(p)
        assert test.recovery_point == rp(27)
        assert {a.recovery_point for a in p.actions if a.type == "delete"} == {rp(28)}

    def test_a_lineage_with_nothing_completed_has_nothing_to_test(self) -> None:
        snaps = point(27, state="error") + point(28, state="pending")

        assert verifies(run(policy(), snapshots=snaps)) == []

    def test_a_failed_point_with_verified_tags_proves_nothing(self) -> None:
        snaps = point(27) + point(28, state="error", verified="2026-11-28T04:00:00Z")

        [test] = verifies(run(policy(), snapshots=snaps))

        assert (test.recovery_point, test.reason) == (rp(27), "no verified recovery point yet")

    def test_the_tested_point_is_never_one_the_plan_deletes(self) -> None:
        keep_one = policy(retention=Retention(keep_last=1), safety=NO_BREAKER)
        snaps = point(1) + point(2) + point(28)

        p = run(keep_one, snapshots=snaps)

        [test] = verifies(p)
        assert test.recovery_point == rp(28)
        assert {a.recovery_point for a in p.actions if a.type == "delete"} == {rp(1), rp(2)}

    def test_an_archived_newest_point_is_not_tested_but_warned_about_once(self) -> None:
        newest = [replace(s, storage_tier="archive") for s in point(28)]
        restored = [replace(s, restore_expiry=utc(2026, 12, 5)) for s in point(28)]

        for snaps in (point(27) + newest, point(27) + newest[:1] + point(28)[1:], restored):
            p = run(policy(), snapshots=snaps)

            assert verifies(p) == []
            warned = [m for m in messages(p) if "archive tier" in m]
            assert warned == [
                f"newest completed recovery point {rp(28)} is in the archive tier: it is not "
                "restore-tested, since a test would first need an archive restore that takes "
                "hours; the next recovery point is tested once it completes"
            ]

    def test_an_archived_point_that_is_verified_recently_is_neither_tested_nor_warned(
        self,
    ) -> None:
        newest = [replace(s, storage_tier="archive") for s in point(28, verified=iso_utc(AT))]

        p = run(policy(), snapshots=point(27) + newest)

        assert verifies(p) == []
        assert not any("archive tier" in m for m in messages(p))


class TestWhichLineages:
    def test_a_copy_lineage_in_the_target_region_gets_its_own_test(self) -> None:
        copying = policy(copies=(CopyRule(WEST, Retention(keep_last=3)),))
        source = point(27) + point(28)
        copies = [
            replace(
                s,
                snapshot_id=s.snapshot_id.replace("snap-", "snap-c"),
                region=WEST,
                volume_id="vol-ffffffff",
                tags={**s.tags, TAG_SOURCE: f"{EAST}/{s.snapshot_id}"},
            )
            for s in source
        ]

        p = run(copying, snapshots=source + copies, regions=(EAST, WEST))

        tests = {(t.region, t.recovery_point): t for t in verifies(p)}
        assert set(tests) == {(EAST, rp(28)), (WEST, rp(28))}
        west = tests[(WEST, rp(28))]
        assert west.resource_id == I1
        assert all(s.startswith("snap-c") for s in west.snapshot_ids)

    def test_copies_whose_rule_was_removed_are_not_tested(self) -> None:
        copies = [
            replace(s, region=WEST, tags={**s.tags, TAG_SOURCE: f"{EAST}/{s.snapshot_id}"})
            for s in point(28)
        ]

        p = run(policy(), snapshots=copies, regions=(EAST, WEST))

        assert verifies(p) == []

    def test_a_disabled_policy_tests_nothing(self) -> None:
        assert verifies(run(policy(enabled=False), snapshots=point(28))) == []

    def test_a_policy_without_verify_tests_nothing(self) -> None:
        assert verifies(run(policy(verify=None), snapshots=point(28))) == []

    def test_orphans_are_never_tested(self) -> None:
        assert verifies(run(policy(name="other"), snapshots=point(28))) == []

    def test_a_resource_that_is_gone_still_has_its_lineage_tested(self) -> None:
        inventory = make_inventory(snapshots=point(28))

        p = plan(PolicySet((policy(),)), inventory, AT)

        assert [t.recovery_point for t in verifies(p)] == [rp(28)]

    def test_a_test_comes_after_create_and_copy_and_before_archive_and_delete(self) -> None:
        busy = policy(
            retention=Retention(keep_last=3),
            archive_after=Duration.parse("7d"),
            copies=(CopyRule(WEST),),
        )
        snaps = point(1) + point(2) + point(3) + point(4) + point(27)

        p = run(busy, snapshots=snaps, regions=(EAST, WEST))

        assert [kind for kind, _ in groupby(a.type for a in p.actions)] == [
            "create",
            "copy",
            "verify",
            "archive",
            "delete",
        ]
        assert p.has_changes
        assert p.summary["verify"] == 1

    def test_a_plan_with_only_a_restore_test_has_changes(self) -> None:
        """``plan --detailed-exitcode`` exits 2 for it."""
        snaps = point(28, created_at=AT - timedelta(hours=1))
        p = run(policy(), snapshots=snaps, at=utc(2026, 11, 28, 17))

        assert [a.type for a in p.actions] == ["verify"]
        assert p.has_changes


class TestVerifiedState:
    def test_a_point_is_verified_at_the_oldest_time_of_its_snapshots(self) -> None:
        snaps = point(28)
        snaps = [
            replace(snaps[0], tags={**snaps[0].tags, TAG_VERIFIED: "2026-11-28T05:00:00Z"}),
            replace(snaps[1], tags={**snaps[1].tags, TAG_VERIFIED: "2026-11-28T06:00:00+02:00"}),
        ]

        p = run(policy(), snapshots=snaps)

        assert [k.verified for k in p.kept] == [utc(2026, 11, 28, 4)]
        assert verifies(p) == []

    def test_a_point_with_one_snapshot_not_verified_is_not_verified(self) -> None:
        snaps = point(28, verified="2026-11-28T05:00:00Z")
        snaps = [snaps[0], replace(snaps[1], tags=point(28)[1].tags)]

        p = run(policy(), snapshots=snaps)

        assert [k.verified for k in p.kept] == [None]
        assert [t.reason for t in verifies(p)] == ["no verified recovery point yet"]

    def test_an_unreadable_verified_value_counts_as_not_verified(self) -> None:
        for value in ("yes", "", "2026-11-28", "2026-11-28T05:00:00", "0001-01-01T00:00:00+01:00"):
            p = run(policy(), snapshots=point(28, verified=value))

            assert [k.verified for k in p.kept] == [None], value
            assert [t.reason for t in verifies(p)] == ["no verified recovery point yet"], value

    def test_a_verified_time_after_at_does_not_count_yet(self) -> None:
        """A plan for an earlier ``at`` sees the lineage as it was; a far-future tag never
        postpones a test."""
        snaps = point(27, verified="2026-11-27T04:00:00Z") + point(
            28, verified="2099-01-01T00:00:00Z"
        )

        [test] = verifies(run(policy(), snapshots=snaps, at=utc(2026, 12, 5)))

        assert test.recovery_point == rp(28)
        assert f"{rp(27)} was verified 2026-11-27T04:00:00Z" in test.reason

    def test_kept_entries_carry_their_verified_time_whatever_the_policy_says(self) -> None:
        snaps = point(27, verified="2026-11-27T04:00:00Z") + point(28)

        for p in (
            run(policy(verify=None), snapshots=snaps),
            run(policy(enabled=False), snapshots=snaps),
        ):
            verified = {k.recovery_point: k.verified for k in p.kept}
            assert verified == {rp(27): utc(2026, 11, 27, 4), rp(28): None}
