"""The verify step: restore tests and the sweep of the test volumes runs leave behind.

Most tests run against the in-memory EC2 (tests/apply/fakes.py), because AWS makes a
volume ``creating`` first and reports ``available`` seconds to minutes later, while moto
makes it ``available`` at once and ignores CreateVolume's ClientToken: waiting, time
limits, an interrupted wait and a repeated token cannot be shown on moto. The audit
table is moto's DynamoDB. One test at the end runs the step on moto end to end.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import boto3
import pytest

from smartvault.apply.run import Executor
from smartvault.apply.verify import verify_claim_id
from smartvault.aws.audit import AuditLog
from smartvault.aws.ec2 import Ec2Snapshots
from smartvault.aws.volumes import Ec2Volumes
from smartvault.core.model import Plan
from smartvault.core.model import Snapshot
from smartvault.core.model import VerifyAction
from smartvault.core.model import Volume
from smartvault.core.model import VolumeAttachment
from smartvault.core.report import compose
from smartvault.core.report import summarise
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_VERIFIED
from smartvault.core.tags import TAG_VERIFY
from smartvault.errors import Ec2CallFailed
from tests.apply.fakes import FakeEc2
from tests.factories import ACCOUNT
from tests.factories import REGION
from tests.factories import Clock
from tests.factories import utc
from tests.moto_helpers import tags_of

NOW = utc(2026, 12, 1, 3, 10)
RP = "weekly/i-0abc/20261130T0300Z"
SNAPS = ("snap-root", "snap-data")
TEST_TAGS = {
    TAG_CREATED_BY: CREATED_BY_VALUE,
    TAG_VERIFY: RP,
    TAG_POLICY: "weekly",
    "Name": f"SmartVault restore test of {RP}",
}


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def audit(aws, clock):
    log = AuditLog(
        boto3.client("dynamodb", region_name=REGION),
        "smartvault-audit",
        clock=clock,
        sleep=lambda _s: None,
    )
    log.ensure_table()
    return log


def world(clock: Clock, **fields) -> FakeEc2:
    ec2 = FakeEc2(now=clock, **fields)
    for sid in SNAPS:
        ec2.add(managed(sid))
    return ec2


def managed(sid: str, rp: str = RP, **fields) -> Snapshot:
    tags = {TAG_CREATED_BY: CREATED_BY_VALUE, TAG_POLICY: "weekly", TAG_RECOVERY_POINT: rp}
    snapshot = Snapshot(
        sid, REGION, f"vol-of-{sid}", "completed", NOW - timedelta(days=1), tags, volume_size_gib=8
    )
    return replace(snapshot, **fields)


def verify(snapshot_ids=SNAPS, timeout=timedelta(minutes=30), rp=RP) -> VerifyAction:
    return VerifyAction(
        REGION,
        "weekly",
        "i-0abc",
        rp,
        tuple(snapshot_ids),
        NOW - timedelta(days=1),
        "due: never verified",
        timeout=timeout,
    )


def executor(ec2, audit, clock, *, run="run-1", should_stop=lambda: False, **kwargs) -> Executor:
    def sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    return Executor(
        ec2,
        audit,
        volumes=ec2,
        run_id=run,
        actor="tester",
        clock=clock,
        sleep=sleep,
        should_stop=should_stop,
        **kwargs,
    )


def apply(ec2, audit, clock, *actions, **kwargs):
    plan = Plan(clock(), clock(), ACCOUNT, (REGION,), actions=tuple(actions))
    return executor(ec2, audit, clock, **kwargs).apply(plan)


def records(audit, clock):
    found = audit.records.query(NOW - timedelta(days=1), clock() + timedelta(days=1))
    return sorted((r for r in found if r.action == "verify"), key=lambda r: r.timestamp)


def creates(ec2: FakeEc2) -> list[str]:
    return [target for call, target in ec2.changes() if call == "CreateVolume"]


class TestRestoreTest:
    def test_an_original_and_its_copy_are_each_tested_in_one_run(self, audit, clock):
        # A copy carries its source's recovery point id: one claim for both would let
        # the first test stand in for the other, and the copy would never be proven.
        west = "us-west-2"
        ec2 = world(clock)
        for sid in ("snap-copy-root", "snap-copy-data"):
            copy = replace(managed(sid), region=west)
            ec2.add(replace(copy, tags={**copy.tags, "smartvault:source": f"{REGION}/{sid}"}))
        copy_action = replace(verify(("snap-copy-root", "snap-copy-data")), region=west)

        result = apply(ec2, audit, clock, verify(), copy_action)

        assert [r.outcome for r in result.results] == ["succeeded", "succeeded"]
        assert all(TAG_VERIFIED in s.tags for s in ec2.snapshots.values())

    def test_a_test_records_its_rto_tags_the_snapshots_and_deletes_its_volumes(self, audit, clock):
        ec2 = world(clock, creating_for=2)
        seen_before_create: list[list[str]] = []
        deleted: list[Volume] = []

        def before(call: str, target: str) -> None:
            if call == "CreateVolume" and not seen_before_create:
                seen_before_create.append([r.outcome for r in records(audit, clock)])
            if call == "DeleteVolume":
                deleted.append(ec2.volumes_by_id[REGION, target])

        ec2.before_change = before
        [result] = apply(ec2, audit, clock, verify()).results

        assert result.outcome == "succeeded", result
        assert seen_before_create == [["pending"]]
        [record] = records(audit, clock)
        assert record.outcome == "succeeded"
        assert float(record.details["rto_seconds"]) > 0
        assert record.details["zone"] == f"{REGION}a"
        assert record.details["volume_type"] == "gp3"
        assert sorted(record.details["test_volumes"].split(",")) == sorted(
            v.volume_id for v in deleted
        )
        for sid in SNAPS:
            assert ec2.snapshots[REGION, sid].tags[TAG_VERIFIED] == record.details["verified_at"]
        assert sorted(v.snapshot_id for v in deleted) == sorted(SNAPS)
        assert all(v.tags == TEST_TAGS for v in deleted)
        assert all(v.volume_type == "gp3" and v.iops is None for v in deleted)
        assert ec2.volumes_by_id == {}

    def test_a_volume_that_never_becomes_available_fails_the_test_and_verifies_nothing(
        self, audit, clock
    ):
        ec2 = world(clock, creating_for=1, never_available={"snap-data"})
        [result] = apply(ec2, audit, clock, verify(timeout=timedelta(minutes=10))).results

        assert result.outcome == "failed"
        [late] = [v for v in result.error.split() if v.startswith("vol-")]
        assert result.error == f"{late} not available after 10m (still creating)"
        assert clock() <= NOW + timedelta(minutes=10, seconds=1)
        assert all(TAG_VERIFIED not in ec2.snapshots[REGION, s].tags for s in SNAPS)
        assert ec2.volumes_by_id == {}
        assert audit.claims.get(verify_claim_id(RP, REGION)) is None  # handed back: try again later
        assert [r.outcome for r in records(audit, clock)] == ["failed"]

    def test_volumes_ec2_will_not_delete_yet_are_left_to_the_next_runs_sweep(self, audit, clock):
        ec2 = world(clock, never_available={"snap-data"}, refuse_deleting_creating=True)
        [failed] = apply(ec2, audit, clock, verify(timeout=timedelta(minutes=5))).results
        [stuck] = [v for v in ec2.volumes_by_id.values() if v.snapshot_id == "snap-data"]
        assert failed.outcome == "failed"
        assert len(ec2.volumes_by_id) == 1
        assert stuck.volume_id in records(audit, clock)[-1].details["left_for_sweep"]

        # Once EC2 has finished making it, the next run that verifies deletes it.
        ec2.volumes_by_id[REGION, stuck.volume_id] = replace(stuck, state="available")
        ec2.never_available.clear()
        result = apply(ec2, audit, clock, verify(), run="run-2")

        assert ec2.volumes_by_id == {}
        assert [r.outcome for r in result.results] == ["succeeded"]
        assert any(n.startswith(f"deleted test volume {stuck.volume_id}") for n in result.notes)

    def test_a_run_told_to_stop_mid_wait_is_interrupted_and_verifies_nothing(self, audit, clock):
        ec2 = world(clock, never_available={"snap-data"})
        stop_at = NOW + timedelta(seconds=20)
        result = apply(ec2, audit, clock, verify(), should_stop=lambda: clock() >= stop_at)

        assert result.results == ()
        assert [a.recovery_point for a in result.not_started] == [RP]
        assert result.stopped_early
        assert clock() < NOW + timedelta(minutes=1)  # never waited on towards the timeout
        [record] = records(audit, clock)
        assert record.outcome == "skipped"
        assert record.reason.startswith("interrupted while its test volumes were being made")
        assert "the next run tests it again" in record.reason
        assert all(TAG_VERIFIED not in ec2.snapshots[REGION, s].tags for s in SNAPS)
        assert ec2.volumes_by_id == {}
        assert audit.claims.get(verify_claim_id(RP, REGION)) is None

    @pytest.mark.parametrize(
        ("change", "outcome", "says"),
        [
            (lambda ec2: ec2.snapshots.pop((REGION, "snap-data")), "skipped", "no longer exist"),
            (
                lambda ec2: ec2.add(managed("snap-data", "someone/i-0abc/20261130T0300Z")),
                "skipped",
                "not SmartVault's to test any more",
            ),
            (
                lambda ec2: ec2.add(managed("snap-data", storage_tier="archive")),
                "skipped",
                "archive tier",
            ),
            (
                lambda ec2: ec2.add(managed("snap-data", state="pending")),
                "skipped",
                "not completed",
            ),
        ],
        ids=["gone", "foreign", "archived", "pending"],
    )
    def test_a_snapshot_that_changed_since_planning_makes_nothing(
        self, audit, clock, change, outcome, says
    ):
        ec2 = world(clock)
        change(ec2)
        [result] = apply(ec2, audit, clock, verify()).results
        assert result.outcome == outcome
        assert says in result.reason
        assert creates(ec2) == []
        assert all(TAG_VERIFIED not in s.tags for s in ec2.snapshots.values())

    def test_a_lost_create_answer_is_asked_again_with_the_same_token_and_makes_one_volume(
        self, audit, clock
    ):
        ec2 = world(clock, lose_volume_answer={"snap-root"})
        made: list[str] = []
        ec2.before_change = lambda call, target: (
            made.extend(v for (_, v) in ec2.volumes_by_id) if call == "DeleteVolume" else None
        )
        [result] = apply(ec2, audit, clock, verify(snapshot_ids=["snap-root"])).results

        assert result.outcome == "succeeded"
        assert creates(ec2) == ["snap-root", "snap-root"]
        assert len(set(made)) == 1  # the repeat returned the volume the lost answer made

    def test_a_volume_in_state_error_fails_the_test_at_once(self, audit, clock):
        ec2 = world(clock, never_available={"snap-data"})
        broken: list[str] = []

        def sleep(seconds: float) -> None:  # EC2 gives up on the volume during the wait
            clock.advance(seconds=seconds)
            for key, volume in list(ec2.volumes_by_id.items()):
                if volume.snapshot_id == "snap-data":
                    ec2.volumes_by_id[key] = replace(volume, state="error")
                    broken.append(volume.volume_id)

        plan = Plan(NOW, NOW, ACCOUNT, (REGION,), actions=(verify(),))
        runner = Executor(
            ec2, audit, volumes=ec2, run_id="run-1", actor="tester", clock=clock, sleep=sleep
        )
        [result] = runner.apply(plan).results

        assert result.outcome == "failed"
        assert result.error == f"{broken[0]} went to state error; nothing verified"
        assert clock() < NOW + timedelta(seconds=10)
        assert all(TAG_VERIFIED not in ec2.snapshots[REGION, s].tags for s in SNAPS)
        assert ec2.volumes_by_id == {}

    def test_a_refused_create_fails_the_test_and_deletes_what_was_made(self, audit, clock):
        ec2 = world(clock)
        ec2.fail["CreateVolume", "snap-data"] = Ec2CallFailed(
            "could not create a volume from snap-data: VolumeLimitExceeded", "VolumeLimitExceeded"
        )
        [result] = apply(ec2, audit, clock, verify()).results
        assert result.outcome == "failed"
        assert result.error.startswith("could not create a volume from snap-data")
        assert ec2.volumes_by_id == {}

    def test_overlapping_runs_test_a_recovery_point_once(self, audit, clock):
        ec2 = world(clock, creating_for=1)
        overlapping = []

        def before(call: str, _target: str) -> None:
            if call == "CreateVolume" and not overlapping:
                overlapping.append(apply(ec2, audit, clock, verify(), run="run-2"))

        ec2.before_change = before
        [first] = apply(ec2, audit, clock, verify()).results
        [second] = overlapping[0].results
        [third] = apply(ec2, audit, clock, verify(), run="run-3").results  # just after

        assert first.outcome == "succeeded"
        assert second.outcome == "skipped"
        assert "another run is testing it: run run-1" in second.reason
        assert third.outcome == "skipped"
        assert "tested moments ago by run run-1" in third.reason
        assert sorted(creates(ec2)) == sorted(SNAPS)

    def test_a_test_longer_than_the_claim_lease_keeps_its_claim(self, audit, clock):
        ec2 = world(clock, creating_for=60)  # about 13 minutes of looks
        [result] = apply(ec2, audit, clock, verify(), claim_lease=timedelta(minutes=4)).results
        assert result.outcome == "succeeded"
        assert clock() - NOW > timedelta(minutes=4)
        claim = audit.claims.get(verify_claim_id(RP, REGION))
        assert (claim.status, claim.run_id) == ("done", "run-1")

    def test_a_failed_test_reads_well_in_the_failure_notification(self, audit, clock):
        ec2 = world(clock, never_available={"snap-root"})
        result = apply(ec2, audit, clock, verify(timeout=timedelta(minutes=30)))
        subject, body = compose(summarise("weekly", result, (REGION,)))
        [line] = [line for line in body.splitlines() if "restore test" in line]
        assert subject.startswith("SmartVault weekly: FAILED (1 failed)")
        assert line.startswith(f"  - restore test of {RP} failed: vol-")
        assert line.endswith("not available after 30m (still creating)")

    def test_a_passed_test_is_listed_as_verified_in_the_notification(self, audit, clock):
        result = apply(world(clock), audit, clock, verify())
        subject, body = compose(summarise("weekly", result, (REGION,)))
        assert subject == "SmartVault weekly: ok (1 verified)"
        assert f"Verified by a restore test (1):\n  - {RP} [{REGION}]: snap-root, snap-data" in body


def left_over(ec2: FakeEc2, volume_id: str, *, rp: str = RP, **fields) -> Volume:
    tags = {**TEST_TAGS, TAG_VERIFY: rp}
    return ec2.add_volume(
        Volume(
            volume_id, REGION, f"{REGION}a", 8, "gp3", "available", tags, snapshot_id="snap-root"
        )
        if not fields
        else Volume(
            volume_id, REGION, f"{REGION}a", 8, "gp3", tags=tags, snapshot_id="snap-root", **fields
        )
    )


class TestSweep:
    def test_a_killed_runs_test_volumes_are_deleted_by_the_next_run_with_a_record(
        self, audit, clock
    ):
        ec2 = world(clock)
        left_over(ec2, "vol-killed1")
        left_over(ec2, "vol-killed2", state="error")
        result = apply(ec2, audit, clock, verify(), run="run-2")

        assert ("DeleteVolume", "vol-killed1") in ec2.changes()
        assert ("DeleteVolume", "vol-killed2") in ec2.changes()
        assert ec2.volumes_by_id == {}
        sweeps = [r for r in records(audit, clock) if r.details.get("left_over")]
        assert sorted((r.details["test_volume"], r.outcome) for r in sweeps) == [
            ("vol-killed1", "succeeded"),
            ("vol-killed2", "succeeded"),
        ]
        assert len([n for n in result.notes if n.startswith("deleted test volume")]) == 2

    def test_the_volumes_of_a_test_another_live_run_holds_are_left_alone(self, audit, clock):
        ec2 = world(clock)
        other = "weekly/vol-0fff/20261130T0300Z"
        left_over(ec2, "vol-live", rp=other)
        audit.claims.acquire(verify_claim_id(other, REGION), "run-live", timedelta(minutes=15))
        result = apply(ec2, audit, clock, run="run-2", sweep_regions=(REGION,))

        assert ("DeleteVolume", "vol-live") not in ec2.changes()
        assert (REGION, "vol-live") in ec2.volumes_by_id
        assert result.notes == (
            f"test volumes vol-live in {REGION} left: run run-live is testing {other}",
        )

    def test_an_attached_test_volume_is_left_alone_and_reported(self, audit, clock):
        ec2 = world(clock)
        left_over(
            ec2, "vol-used", state="in-use", attachments=(VolumeAttachment("i-9", "/dev/sdz"),)
        )
        result = apply(ec2, audit, clock, run="run-2", sweep_regions=(REGION,))

        assert ("DeleteVolume", "vol-used") not in ec2.changes()
        [note] = result.notes
        assert note.startswith(
            f"test volume vol-used in {REGION} (restore test of {RP}) left alone"
        )
        assert "attached to i-9" in note

    def test_only_smartvaults_test_volumes_are_swept(self, audit, clock):
        ec2 = world(clock)
        theirs = left_over(ec2, "vol-theirs")
        ec2.add_volume(replace(theirs, tags={TAG_VERIFY: RP}))  # no CreatedBy=SmartVault
        result = apply(ec2, audit, clock, run="run-2", sweep_regions=(REGION,))
        assert ("DescribeVolumes", REGION) in ec2.calls
        assert [c for c in ec2.changes() if c[0] != "DescribeVolumes"] == []
        assert result.notes == ()

    def test_without_tests_or_a_sweep_region_no_volume_is_read(self, audit, clock):
        ec2 = world(clock)
        left_over(ec2, "vol-killed")
        apply(ec2, audit, clock, run="run-2")
        assert ("DescribeVolumes", REGION) not in ec2.calls


def test_on_moto_a_test_restores_the_snapshots_tags_them_and_leaves_no_volume(aws, audit, clock):
    """moto makes volumes ``available`` at once: this shows the real calls fit together."""
    client = boto3.client("ec2", region_name=REGION)
    ids = []
    for size in (8, 16):
        volume = client.create_volume(Size=size, AvailabilityZone=f"{REGION}a")
        tags = {TAG_CREATED_BY: CREATED_BY_VALUE, TAG_POLICY: "weekly", TAG_RECOVERY_POINT: RP}
        snapshot = client.create_snapshot(
            VolumeId=volume["VolumeId"],
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
        client.delete_volume(VolumeId=volume["VolumeId"])
        ids.append(snapshot["SnapshotId"])
    executor = Executor(
        Ec2Snapshots(lambda _r: client, sleep=lambda _s: None),
        audit,
        volumes=Ec2Volumes(lambda _r: client, sleep=lambda _s: None),
        run_id="run-moto",
        actor="tester",
        clock=clock,
        sleep=lambda _s: None,
    )
    [result] = executor.apply(Plan(NOW, NOW, ACCOUNT, (REGION,), actions=(verify(ids),))).results

    assert result.outcome == "succeeded", result
    for snapshot in client.describe_snapshots(SnapshotIds=ids)["Snapshots"]:
        assert tags_of(snapshot)[TAG_VERIFIED] == "2026-12-01T03:10:00Z"
    assert client.describe_volumes()["Volumes"] == []
    [record] = records(audit, clock)
    assert len(record.details["test_volumes"].split(",")) == 2
