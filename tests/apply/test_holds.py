"""Holding and releasing, audited, against in-memory tag calls (the audit table is moto's).

The fake sees every tag call, so each rule is shown on its own: the record comes first,
a failed record stops every change, a refused call is recorded as failed, and a release
touches only snapshots that carry a hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import timedelta

import boto3
import pytest

from smartvault.apply.holds import change
from smartvault.apply.holds import find
from smartvault.apply.run import Executor
from smartvault.aws.audit import AuditLog
from smartvault.core.model import ResourceType
from smartvault.core.model import Snapshot
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_HOLD_BY
from smartvault.errors import Ec2CallFailed
from tests.apply.fakes import FakeEc2
from tests.factories import Clock
from tests.factories import make_recovery_point
from tests.factories import utc

NOW = utc(2026, 12, 2, 9)
EAST, WEST = "us-east-1", "us-west-2"
RP = "nightly/i-0abc/20261120T0300Z"


@dataclass
class FakeHoldTags:
    """The point's snapshots by region, and every tag call made; ``refuse`` makes the tag
    calls in those regions fail as EC2 would."""

    snapshots: dict[str, list[Snapshot]]
    refuse: frozenset[str] = frozenset()
    calls: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def point_snapshots(
        self, region: str, recovery_point: str, resource_type: ResourceType | None
    ) -> list[Snapshot]:
        return list(self.snapshots.get(region, []))

    def hold(self, region: str, snapshot_ids: Sequence[str], reason: str, by: str) -> None:
        self._call("hold", region, snapshot_ids)

    def release(self, region: str, snapshot_ids: Sequence[str]) -> None:
        self._call("release", region, snapshot_ids)

    def _call(self, verb: str, region: str, ids: Sequence[str]) -> None:
        if region in self.refuse:
            raise Ec2CallFailed(f"could not {verb} in {region}: denied", "UnauthorizedOperation")
        self.calls.append((verb, region, tuple(ids)))


def point(region: str, *, held: bool = False) -> list[Snapshot]:
    extra = {TAG_HOLD: "INC-1", TAG_HOLD_BY: "arn:aws:iam::1:user/ana"} if held else {}
    snaps = make_recovery_point(
        "nightly",
        "i-0abc",
        utc(2026, 11, 20, 3),
        volume_ids=("vol-1", "vol-2"),
        region=region,
        snapshot_prefix=f"snap-{region[-6:-2]}",
    )
    # only the first snapshot carries the hold: a release must find it, and only it
    return [replace(snaps[0], tags={**snaps[0].tags, **extra}), snaps[1]]


def audit_log(create: bool = True) -> AuditLog:
    log = AuditLog(
        boto3.client("dynamodb", region_name=EAST),
        "smartvault-audit",
        clock=Clock(NOW),
        sleep=lambda _s: None,
    )
    if create:
        log.ensure_table()
    return log


def context(log: AuditLog):  # type: ignore[no-untyped-def]
    ec2 = FakeEc2(now=Clock(NOW))
    return Executor(
        ec2, log, volumes=ec2, run_id="run-h", actor="cli:ana@desk", clock=Clock(NOW)
    ).context()


def records(log: AuditLog) -> list:  # type: ignore[type-arg]
    return sorted(
        log.records.query(NOW - timedelta(hours=1), NOW + timedelta(hours=1)),
        key=lambda r: r.region,
    )


def test_a_hold_writes_one_record_per_region_before_its_tag_call(aws):
    log = audit_log()
    tags = FakeHoldTags({EAST: point(EAST), WEST: point(WEST)})
    found = find(tags, [EAST, WEST, "eu-west-1"], RP, "instance")

    done = change(context(log), tags, "hold", found, RP, reason="INC-9", by="arn:me")

    assert [(c.region, c.outcome) for c in done] == [(EAST, "succeeded"), (WEST, "succeeded")]
    assert [(verb, region, len(ids)) for verb, region, ids in tags.calls] == [
        ("hold", EAST, 2),
        ("hold", WEST, 2),
    ]
    written = records(log)
    assert [(r.action, r.region, r.outcome) for r in written] == [
        ("hold", EAST, "succeeded"),
        ("hold", WEST, "succeeded"),
    ]
    assert all(r.reason == "INC-9" and r.actor == "cli:ana@desk" for r in written)
    assert all(r.details["hold_by"] == "arn:me" and len(r.snapshot_ids) == 2 for r in written)
    assert all(r.policy == "nightly" and r.resource_id == "i-0abc" for r in written)


def test_without_an_audit_record_nothing_is_tagged_in_any_region(aws):
    log = audit_log(create=False)  # every write fails
    tags = FakeHoldTags({EAST: point(EAST), WEST: point(WEST)})

    done = change(context(log), tags, "hold", find(tags, [EAST, WEST], RP, None), RP, reason="x")

    assert tags.calls == []
    assert [(c.region, c.outcome) for c in done] == [(EAST, "failed"), (WEST, "skipped")]
    assert done[0].error.startswith("nothing changed:")
    assert "audit record could not be written" in done[1].error


def test_a_refused_tag_call_is_recorded_failed_and_the_other_regions_go_on(aws):
    log = audit_log()
    tags = FakeHoldTags({EAST: point(EAST), WEST: point(WEST)}, refuse=frozenset({EAST}))

    done = change(context(log), tags, "hold", find(tags, [EAST, WEST], RP, None), RP, reason="x")

    assert [(c.region, c.outcome) for c in done] == [(EAST, "failed"), (WEST, "succeeded")]
    assert "denied" in done[0].error
    assert [(r.region, r.outcome) for r in records(log)] == [(EAST, "failed"), (WEST, "succeeded")]


def test_a_release_untags_only_the_held_snapshots_and_skips_regions_without_a_hold(aws):
    log = audit_log()
    tags = FakeHoldTags({EAST: point(EAST, held=True), WEST: point(WEST)})
    found = find(tags, [EAST, WEST], RP, None)

    done = change(context(log), tags, "release", found, RP)

    assert found.held
    assert found.reasons() == ("INC-1",)
    held_id = found.snapshots[0][1][0].snapshot_id
    assert tags.calls == [("release", EAST, (held_id,))]
    assert [(c.region, c.outcome) for c in done] == [(EAST, "succeeded")]
    (record,) = records(log)
    assert (record.action, record.reason) == ("release", "released: INC-1")
    assert record.details == {"held_by": "arn:aws:iam::1:user/ana", "released": "INC-1"}


def test_a_region_that_cannot_be_read_is_said_not_hidden():
    class Unreadable(FakeHoldTags):
        def point_snapshots(self, region, recovery_point, resource_type):  # type: ignore[no-untyped-def]
            if region == WEST:
                raise Ec2CallFailed("could not read snapshots: throttled", "Throttling")
            return super().point_snapshots(region, recovery_point, resource_type)

    found = find(Unreadable({EAST: point(EAST)}), [EAST, WEST], RP, None)

    assert [region for region, _ in found.snapshots] == [EAST]
    assert found.unreadable == ((WEST, "could not read snapshots: throttled"),)


@pytest.mark.parametrize("held", [True, False], ids=["held", "not-held"])
def test_found_says_whether_any_snapshot_carries_a_hold(held):
    found = find(FakeHoldTags({EAST: point(EAST, held=held)}), [EAST], RP, None)
    assert found.held is held
