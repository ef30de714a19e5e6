"""The apply steps against an in-memory EC2 (the audit table is moto's DynamoDB).

The fake answers exactly what a test needs (a lost answer, a snapshot an AMI took after
planning) and sees every call, so each safety rule of a step is shown on its own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import boto3
import pytest

from smartvault.apply.run import Executor
from smartvault.aws.audit import AuditLog
from smartvault.core.model import ArchiveAction
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Plan
from smartvault.core.model import Snapshot
from smartvault.core.model import Volume
from smartvault.core.model import VolumeSpec
from smartvault.core.model import decode_volume_specs
from smartvault.core.model import recovery_point_id
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_DEVICE
from smartvault.core.tags import TAG_DEVICES
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_HOLD_BY
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_SLOT
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import TAG_VOLUMES
from smartvault.core.times import iso_utc
from smartvault.errors import Ec2CallFailed
from tests.apply.fakes import FakeEc2
from tests.factories import ACCOUNT
from tests.factories import REGION
from tests.factories import Clock
from tests.factories import utc

NOW = utc(2026, 11, 28, 3, 5)
SLOT = utc(2026, 11, 28, 3)
VOLUME = "vol-0123456789abcdef0"
RP = recovery_point_id("nightly", VOLUME, SLOT)


@pytest.fixture
def audit(aws):
    log = AuditLog(
        boto3.client("dynamodb", region_name=REGION),
        "smartvault-audit",
        clock=Clock(NOW),
        sleep=lambda _s: None,
    )
    log.ensure_table()
    return log


def create_action() -> CreateAction:
    tags = {
        TAG_CREATED_BY: CREATED_BY_VALUE,
        TAG_POLICY: "nightly",
        TAG_RECOVERY_POINT: RP,
        TAG_SLOT: iso_utc(SLOT),
    }
    return CreateAction(
        region=REGION,
        policy="nightly",
        resource_id=VOLUME,
        resource_type="volume",
        recovery_point=RP,
        slot=SLOT,
        volume_ids=(VOLUME,),
        reason="due",
        tags=tags,
    )


def managed(sid: str, rp: str = RP, **fields) -> Snapshot:
    tags = {TAG_CREATED_BY: CREATED_BY_VALUE, TAG_POLICY: "nightly", TAG_RECOVERY_POINT: rp}
    return Snapshot(sid, REGION, VOLUME, "completed", NOW - timedelta(days=9), tags, **fields)


def apply(ec2: FakeEc2, audit: AuditLog, *actions, run: str = "run-1"):
    executor = Executor(
        ec2, audit, volumes=ec2, run_id=run, actor="tester", clock=Clock(NOW), sleep=lambda _s: None
    )
    return executor.apply(Plan(NOW, NOW, ACCOUNT, (REGION,), actions=tuple(actions)))


def test_a_create_is_made_once_and_a_second_run_finds_it(audit):
    ec2 = FakeEc2(now=Clock(NOW))
    first = apply(ec2, audit, create_action())
    second = apply(ec2, audit, create_action(), run="run-2")
    assert [r.outcome for r in first.results] == ["succeeded"]
    assert [r.outcome for r in second.results] == ["skipped"]
    assert [c for c in ec2.changes() if c[0] == "CreateSnapshot"] == [("CreateSnapshot", VOLUME)]


def test_a_create_records_its_volumes_type_performance_and_tags(audit):
    ec2 = FakeEc2(now=Clock(NOW))
    ec2.add_volume(
        Volume(
            VOLUME,
            REGION,
            f"{REGION}a",
            100,
            "gp3",
            tags={"Name": "db", "aws:x": "y"},
            iops=6000,
            throughput=250,
        )
    )
    result = apply(ec2, audit, create_action())
    (made,) = result.results[0].snapshot_ids
    tags = ec2.snapshots[REGION, made].tags
    assert decode_volume_specs(tags[TAG_VOLUMES]) == {
        VOLUME: VolumeSpec("gp3", 6000, 250, {"Name": "db"})
    }
    (record,) = audit.records.query(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert record.details == {}


def test_a_create_goes_ahead_when_its_volumes_cannot_be_read_and_says_so(audit):
    ec2 = FakeEc2(now=Clock(NOW))
    ec2.fail["DescribeVolumes", REGION] = Ec2CallFailed(
        "could not read volumes (DescribeVolumes): UnauthorizedOperation", "UnauthorizedOperation"
    )
    result = apply(ec2, audit, create_action())
    assert result.results[0].outcome == "succeeded"
    (made,) = result.results[0].snapshot_ids
    assert TAG_VOLUMES not in ec2.snapshots[REGION, made].tags
    (record,) = audit.records.query(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert "UnauthorizedOperation" in record.details["volumes_not_recorded"]


def test_a_volumes_record_too_long_for_a_tag_is_whole_in_the_audit_record(audit):
    ec2 = FakeEc2(now=Clock(NOW))
    ec2.add_volume(Volume(VOLUME, REGION, tags={f"k{i}": "v" * 40 for i in range(8)}))
    result = apply(ec2, audit, create_action())
    (made,) = result.results[0].snapshot_ids
    text = ec2.snapshots[REGION, made].tags[TAG_VOLUMES]
    assert len(text) <= 256
    assert decode_volume_specs(text) == {}  # the one entry did not fit: none is guessed
    (record,) = audit.records.query(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert decode_volume_specs(record.details[TAG_VOLUMES])[VOLUME].tags["k7"] == "v" * 40


def test_a_create_whose_answer_is_lost_keeps_its_claim_and_is_not_sent_again(audit):
    ec2 = FakeEc2(now=Clock(NOW), lose_answer={VOLUME})
    first = apply(ec2, audit, create_action())
    again = apply(ec2, audit, create_action(), run="run-2")  # inside the lease
    assert first.results[0].outcome == "failed"
    assert "EC2 may still have made it" in first.results[0].error
    assert audit.claims.get(RP).run_id == "run-1"  # kept for its lease, not handed back
    assert again.results[0].outcome == "skipped"
    assert "holds its claim" in again.results[0].reason
    assert ec2.changes() == [("CreateSnapshot", VOLUME)]


def test_a_delete_is_recorded_pending_before_its_call(audit):
    ec2 = FakeEc2(now=Clock(NOW))
    ec2.add(managed("snap-old", "nightly/vol-0123456789abcdef0/20261119T0300Z"))
    seen: list[list[str]] = []

    def before(call: str, _target: str) -> None:
        records = audit.records.query(NOW - timedelta(days=1), NOW + timedelta(days=1))
        seen.append([f"{r.action} {r.outcome}" for r in records])

    ec2.before_change = before
    action = DeleteAction(
        REGION,
        "nightly",
        VOLUME,
        "nightly/vol-0123456789abcdef0/20261119T0300Z",
        ("snap-old",),
        NOW - timedelta(days=9),
        "older than max_age 7d",
    )
    result = apply(ec2, audit, action)
    assert seen == [["delete pending"]]
    assert result.results[0].outcome == "succeeded"
    assert ("us-east-1", "snap-old") not in ec2.snapshots


def test_a_snapshot_an_ami_took_after_planning_is_kept_and_said_so(audit):
    ec2 = FakeEc2(now=Clock(NOW))
    rp = "nightly/vol-0123456789abcdef0/20261119T0300Z"
    ec2.add(managed("snap-ami", rp))
    ec2.fail["DeleteSnapshot", "snap-ami"] = Ec2CallFailed(
        "could not delete snap-ami: InvalidSnapshot.InUse: in use by ami-1",
        "InvalidSnapshot.InUse",
        "snap-ami is in use by ami-1",
    )
    action = DeleteAction(REGION, "nightly", VOLUME, rp, ("snap-ami",), NOW, "expired")
    [result] = apply(ec2, audit, action).results
    assert result.outcome == "skipped"
    assert result.reason == (
        "in use by an AMI registered after planning, so kept: snap-ami is in use by ami-1"
    )


def test_a_delete_the_deadline_kept_from_being_sent_is_skipped_not_failed(audit):
    # Throttled until too little time was left: the call was never sent, nothing failed,
    # and the next run deletes what is left (a failure would fail the Lambda's run).
    ec2 = FakeEc2(now=Clock(NOW))
    rp = "nightly/vol-0123456789abcdef0/20261119T0300Z"
    ec2.add(managed("snap-a", rp))
    ec2.add(managed("snap-b", rp))
    ec2.fail["DeleteSnapshot", "snap-b"] = Ec2CallFailed(
        "could not delete snap-b: ec2:DeleteSnapshot not sent: 3.0 s left", "DeadlineReached"
    )
    action = DeleteAction(REGION, "nightly", VOLUME, rp, ("snap-a", "snap-b"), NOW, "expired")
    [result] = apply(ec2, audit, action).results
    assert result.outcome == "skipped"
    assert "next run deletes them" in result.reason
    (record,) = audit.records.query(NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert record.outcome == "skipped"
    assert record.details["deleted"] == "snap-a"
    assert record.details["not_sent"] == "snap-b"
    assert (REGION, "snap-b") in ec2.snapshots


def test_a_snapshot_that_lost_its_tags_since_planning_is_never_touched(audit):
    ec2 = FakeEc2(now=Clock(NOW))
    rp = "nightly/vol-0123456789abcdef0/20260801T0300Z"
    ec2.add(managed("snap-theirs", "someone-else/vol-1/20260801T0300Z"))
    actions = (
        DeleteAction(REGION, "nightly", VOLUME, rp, ("snap-theirs",), NOW, "expired"),
        ArchiveAction(REGION, "nightly", VOLUME, rp, ("snap-theirs",), NOW, "old"),
    )
    results = apply(ec2, audit, *actions).results
    assert [r.outcome for r in results] == ["skipped", "skipped"]
    assert all("not SmartVault's to" in r.reason for r in results)
    assert ec2.changes() == []


def test_a_hold_set_after_planning_makes_delete_and_archive_skip_and_touch_nothing(audit):
    """The plan was made before a person held the point: the steps read the snapshots
    again, see the hold, and leave the whole point (and say who held it, and why)."""
    ec2 = FakeEc2(now=Clock(NOW))
    rp = "nightly/vol-0123456789abcdef0/20260801T0300Z"
    free = ec2.add(managed("snap-a", rp))
    held = managed("snap-b", rp)
    ec2.add(replace(held, tags={**held.tags, TAG_HOLD: "INC-7", TAG_HOLD_BY: "cli:ana@desk"}))
    ids = (free.snapshot_id, "snap-b")
    actions = (
        DeleteAction(REGION, "nightly", VOLUME, rp, ids, NOW, "expired"),
        ArchiveAction(REGION, "nightly", VOLUME, rp, ids, NOW, "old"),
    )
    results = apply(ec2, audit, *actions).results
    assert [r.outcome for r in results] == ["skipped", "skipped"]
    for result in results:
        assert "held since planning: snap-b carry smartvault:hold='INC-7'" in result.reason
        assert "(set by cli:ana@desk)" in result.reason
        assert f"smartvault release {rp}" in result.reason
    assert ec2.changes() == []
    records = audit.records.query(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert sorted((r.action, r.outcome) for r in records) == [
        ("archive", "skipped"),
        ("delete", "skipped"),
    ]


def test_a_hold_does_not_stop_a_copy(audit):
    """Copies of a held point are made as before; the copy does not inherit the hold."""
    ec2 = FakeEc2(now=Clock(NOW))
    rp = "nightly/vol-0123456789abcdef0/20261128T0300Z"
    source = managed("snap-src", rp)
    ec2.add(replace(source, tags={**source.tags, TAG_SLOT: iso_utc(SLOT), TAG_HOLD: "INC-7"}))
    action = CopyAction(REGION, "nightly", VOLUME, rp, ("snap-src",), NOW, "us-west-2", "copy")
    [result] = apply(ec2, audit, action).results
    assert result.outcome == "succeeded"
    [copy] = [s for (region, _), s in ec2.snapshots.items() if region == "us-west-2"]
    assert TAG_HOLD not in copy.tags


def test_a_copy_is_tagged_with_its_source_volumes_device_whatever_its_own_volume_id(audit):
    """AWS gives a copy an arbitrary VolumeId (the fake does too; moto keeps the source's),
    so the device is read from the source snapshot in its own region and written at copy."""
    ec2 = FakeEc2(now=Clock(NOW))
    rp = "nightly/i-0abc/20261128T0300Z"
    source = managed("snap-src", rp)
    source = ec2.add(
        replace(
            source,
            volume_id="vol-data",
            state="completed",
            tags={
                **source.tags,
                TAG_INSTANCE_ID: "i-0abc",
                TAG_SLOT: iso_utc(SLOT),
                TAG_DEVICES: '{"vol-data":"/dev/sdf","vol-root":"/dev/xvda"}',
            },
        )
    )
    action = CopyAction(
        region=REGION,
        policy="nightly",
        resource_id="i-0abc",
        recovery_point=rp,
        snapshot_ids=(source.snapshot_id,),
        created_at=NOW,
        target_region="us-west-2",
        reason="copy rule us-west-2",
    )
    [result] = apply(ec2, audit, action).results
    assert result.outcome == "succeeded"
    [copy] = [s for (region, _), s in ec2.snapshots.items() if region == "us-west-2"]
    assert copy.volume_id != source.volume_id
    assert copy.tags[TAG_DEVICE] == "/dev/sdf"
    assert copy.tags[TAG_SOURCE] == f"{REGION}/snap-src"
