"""Held recovery points in the plan: kept by their hold alone, counted toward nothing else."""

from __future__ import annotations

from dataclasses import replace

from smartvault.core.model import ArchiveAction
from smartvault.core.model import CopyAction
from smartvault.core.model import CopyRule
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Duration
from smartvault.core.model import Plan
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import Snapshot
from smartvault.core.model import Verify
from smartvault.core.model import VerifyAction
from smartvault.core.planner import plan
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_HOLD_BY
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import copy_tags
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
HOLD = {TAG_HOLD: "INC-1234 legal", TAG_HOLD_BY: "arn:aws:iam::123456789012:user/ana"}


def points(days: list[int], *, held: tuple[int, ...] = (), **kw: object) -> list[Snapshot]:
    """One recovery point of two snapshots per day of November 2026 at 03:00:04; the
    ``held`` days carry a hold on their first snapshot only (one is enough)."""
    snaps: list[Snapshot] = []
    for day in days:
        made = make_recovery_point(
            "nightly",
            I1,
            utc(2026, 11, day, 3),
            volume_ids=VOLS,
            **kw,  # type: ignore[arg-type]
        )
        if day in held:
            made[0] = replace(made[0], tags={**made[0].tags, **HOLD})
        snaps.extend(made)
    return snaps


def rp(day: int) -> str:
    return f"nightly/{I1}/202611{day:02d}T0300Z"


def run(policy: Policy, snapshots: list[Snapshot], **kw: object) -> Plan:
    inventory = make_inventory(
        instances=[make_instance(I1, volumes=2)],
        snapshots=snapshots,
        **kw,  # type: ignore[arg-type]
    )
    return plan(PolicySet((policy,)), inventory, AT)


def kept(p: Plan) -> dict[str, tuple[str, ...]]:
    return {k.recovery_point: k.kept_by for k in p.kept}


def deleted(p: Plan) -> set[str]:
    return {a.recovery_point for a in p.actions if isinstance(a, DeleteAction)}


def archived(p: Plan) -> set[str]:
    return {a.recovery_point for a in p.actions if isinstance(a, ArchiveAction)}


class TestKeeping:
    def test_a_held_point_past_every_rule_is_kept_by_its_hold_alone(self) -> None:
        policy = make_policy(retention=Retention(keep_last=1, max_age=Duration.parse("7d")))
        p = run(policy, points([1, 2, 28], held=(1,)))
        assert kept(p)[rp(1)] == ("hold",)
        assert rp(1) not in deleted(p)
        assert deleted(p) == {rp(2)}

    def test_without_the_hold_the_same_point_is_deleted(self) -> None:
        # Two of three at once is more than the breaker's share: this is about the hold.
        policy = make_policy(
            retention=Retention(keep_last=1, max_age=Duration.parse("7d")), safety=NO_BREAKER
        )
        p = run(policy, points([1, 2, 28]))
        assert deleted(p) == {rp(1), rp(2)}

    def test_a_held_point_takes_no_keep_last_place(self) -> None:
        """keep_last 2, the 2nd newest held: the newest, the held one and the 3rd newest stay."""
        p = run(make_policy(retention=Retention(keep_last=2)), points([25, 26, 27, 28], held=(27,)))
        assert kept(p) == {rp(28): ("keep_last",), rp(27): ("hold",), rp(26): ("keep_last",)}
        assert deleted(p) == {rp(25)}

    def test_a_held_point_takes_no_calendar_bucket(self) -> None:
        """daily 2 with the newest day's point held: the two days before it are kept daily."""
        policy = make_policy(retention=Retention(keep_last=1, daily=2))
        p = run(policy, points([25, 26, 27, 28], held=(28,)))
        assert kept(p) == {
            rp(28): ("hold",),
            rp(27): ("keep_last", "daily"),
            rp(26): ("daily",),
        }
        assert deleted(p) == {rp(25)}

    def test_a_held_point_a_rule_would_keep_is_still_kept_by_hold_only(self) -> None:
        p = run(make_policy(retention=Retention(keep_last=5)), points([27, 28], held=(28,)))
        assert kept(p) == {rp(28): ("hold",), rp(27): ("keep_last",)}

    def test_an_empty_hold_value_is_no_hold(self) -> None:
        snaps = points([1, 28])
        snaps = [replace(s, tags={**s.tags, TAG_HOLD: ""}) for s in snaps]
        p = run(make_policy(retention=Retention(keep_last=1)), snaps)
        assert deleted(p) == {rp(1)}

    def test_a_held_failed_point_is_kept_not_deleted(self) -> None:
        snaps = points([20, 28], held=(20,))
        snaps[1] = replace(snaps[1], state="error")
        p = run(make_policy(retention=Retention(keep_last=1)), snaps)
        assert kept(p)[rp(20)] == ("hold",)
        assert deleted(p) == set()

    def test_a_held_failed_point_of_this_slot_is_not_made_again_and_says_why(self) -> None:
        snaps = points([28], held=(28,))
        snaps[1] = replace(snaps[1], state="error")
        p = run(make_policy(), snaps)
        assert kept(p)[rp(28)] == ("hold",)
        assert [a for a in p.actions if isinstance(a, (CreateAction, DeleteAction))] == []
        assert any(
            rp(28) in w.message and "held" in w.message and "smartvault release" in w.message
            for w in p.warnings
        )

    def test_a_held_pending_point_stays_pending(self) -> None:
        snaps = points([28], held=(28,), state="pending")
        p = run(make_policy(), snaps)
        assert kept(p)[rp(28)] == ("pending",)

    def test_a_held_point_of_a_disabled_policy_is_kept_by_its_hold(self) -> None:
        p = run(make_policy(enabled=False), points([1, 2], held=(1,)))
        assert kept(p) == {rp(1): ("hold",), rp(2): ("disabled",)}
        assert p.actions == ()


class TestArchiveCopiesAndTests:
    def test_a_held_point_is_never_archived_and_the_others_still_are(self) -> None:
        policy = make_policy(retention=Retention(keep_last=5), archive_after=Duration.parse("7d"))
        p = run(policy, points([1, 2, 28], held=(1,)))
        assert kept(p)[rp(1)] == ("hold",)
        assert archived(p) == {rp(2)}

    def test_a_held_newest_point_is_copied_as_before(self) -> None:
        policy = make_policy(copies=(CopyRule(WEST, Retention(keep_last=1)),))
        p = run(policy, points([27, 28], held=(28,)), regions=(EAST, WEST))
        [copy] = [a for a in p.actions if isinstance(a, CopyAction)]
        assert copy.recovery_point == rp(28)

    def test_a_held_copy_is_kept_in_its_region_whatever_the_copy_rule_says(self) -> None:
        policy = make_policy(copies=(CopyRule(WEST, Retention(keep_last=1)),))
        originals = points([26, 27, 28], held=(26,))
        copies = [
            replace(
                s,
                snapshot_id=s.snapshot_id.replace("snap-", "snap-c"),
                region=WEST,
                volume_id="vol-ffffffff",
                tags={**s.tags, TAG_SOURCE: f"{EAST}/{s.snapshot_id}"},
            )
            for s in originals
        ]
        p = run(policy, originals + copies, regions=(EAST, WEST))
        west = {k.recovery_point: k.kept_by for k in p.kept if k.region == WEST}
        assert west == {rp(26): ("hold",), rp(28): ("keep_last",)}
        assert {a.recovery_point for a in p.actions if a.region == WEST} == {rp(27)}

    def test_a_held_newest_point_is_restore_tested_as_before(self) -> None:
        policy = make_policy(retention=Retention(keep_last=3), verify=Verify(Duration.parse("7d")))
        p = run(policy, points([27, 28], held=(28,)))
        [test] = [a for a in p.actions if isinstance(a, VerifyAction)]
        assert test.recovery_point == rp(28)

    def test_a_copy_never_inherits_its_sources_hold(self) -> None:
        """A hold is a person's: the function may not write one, so a copy carries none."""
        [source, _] = points([28], held=(28,))
        tags = copy_tags(source.tags, "nightly", rp(28), f"{EAST}/{source.snapshot_id}")
        assert TAG_HOLD not in tags
        assert TAG_HOLD_BY not in tags
        assert tags[TAG_SOURCE] == f"{EAST}/{source.snapshot_id}"
