"""Applying plans against moto: idempotent creates, audited deletes, faults and crashes."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from moto import mock_aws

from smartvault.apply.run import Executor
from smartvault.aws.audit import AuditLog
from smartvault.aws.ec2 import Ec2Snapshots
from smartvault.aws.inventory import read_images
from smartvault.aws.inventory import read_instances
from smartvault.aws.inventory import read_snapshots
from smartvault.aws.volumes import Ec2Volumes
from smartvault.core import planner
from smartvault.core.model import ArchiveAction
from smartvault.core.model import CopyAction
from smartvault.core.model import CopyRule
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Duration
from smartvault.core.model import Inventory
from smartvault.core.model import Plan
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import VolumeSpec
from smartvault.core.model import decode_volume_specs
from smartvault.core.report import RunResult
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_VOLUMES
from tests.factories import ACCOUNT
from tests.factories import NO_BREAKER
from tests.factories import REGION
from tests.factories import Clock
from tests.factories import make_policy
from tests.moto_helpers import tags_of

TABLE = "smartvault-audit"
MUTATING = {"CreateSnapshots", "CreateSnapshot", "DeleteSnapshot"}
AUDIT_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


def client_error(code: str, status: int = 400, operation: str = "Injected") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class Crash(BaseException):
    """The process died (a Lambda timeout, a kill): nothing after it runs."""


@dataclass
class World:
    """One moto account: EC2 and the audit table, a clock, and the policies."""

    ec2: object
    ddb: object
    clock: Clock
    policies: PolicySet = field(default_factory=lambda: PolicySet((make_policy("nightly"),)))
    runs: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.ddb, TABLE, clock=self.clock, sleep=lambda _s: None)

    def instance(self, volumes: int = 2) -> str:
        mappings = [
            {"DeviceName": f"/dev/sd{chr(ord('f') + n)}", "Ebs": {"VolumeSize": 8}}
            for n in range(volumes)
        ]
        reservation = self.ec2.run_instances(
            ImageId="ami-12345678",
            MinCount=1,
            MaxCount=1,
            BlockDeviceMappings=mappings,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "backup", "Value": "true"}]}
            ],
        )
        return reservation["Instances"][0]["InstanceId"]

    def plan(self, at: datetime) -> Plan:
        selectors = [p.selector for p in self.policies.policies]
        inventory = Inventory(
            account_id=ACCOUNT,
            regions=(REGION,),
            instances=read_instances(self.ec2, REGION, selectors),
            snapshots=read_snapshots(self.ec2, REGION),
            images=read_images(self.ec2, REGION),
        )
        return planner.plan(self.policies, inventory, at)

    def executor(self, **overrides) -> Executor:
        kwargs = {
            "run_id": f"run-{next(self.runs)}",
            "actor": "tester",
            "clock": self.clock,
        }
        sleep = overrides.pop("sleep", lambda _s: None)
        kwargs.update(overrides)
        return Executor(
            Ec2Snapshots(self.client_for, sleep=sleep),
            self.audit,
            volumes=Ec2Volumes(self.client_for, sleep=sleep),
            **kwargs,
        )

    def client_for(self, region: str):
        return self.ec2

    def apply(self, at: datetime, **overrides) -> RunResult:
        self.clock.now = at
        return self.executor(**overrides).apply(self.plan(at))

    def snapshots(self) -> list[dict]:
        return self.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]

    def recovery_points(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for snap in self.snapshots():
            tags = {t["Key"]: t["Value"] for t in snap.get("Tags", [])}
            found.setdefault(tags.get(TAG_RECOVERY_POINT, "?"), []).append(snap["SnapshotId"])
        return found

    def records(self, **filters):
        # Every clock in these tests lies between DAY1 and LATER (one Query per day).
        everything = self.audit.records.query(DAY1 - timedelta(days=1), LATER + timedelta(days=1))
        return [r for r in everything if all(getattr(r, k) == v for k, v in filters.items())]


# Days apart, at the same hour: each apply is a new daily slot of cron(0 3 * * ? *).
DAY1 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
LATER = DAY1 + timedelta(days=30)


@pytest.fixture
def world(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    clock = Clock(DAY1)
    AuditLog(ddb, TABLE, clock=clock, sleep=lambda _s: None).ensure_table()
    stamp_snapshots_with(ec2, clock)
    return World(ec2, ddb, clock)


def stamp_snapshots_with(ec2, clock: Clock) -> None:
    """Moto stamps new snapshots with the real time; the planner needs the run's time."""
    from moto.ec2.models import ec2_backends

    def stamp(parsed, **_kwargs):
        made = parsed.get("Snapshots", []) or ([parsed] if "SnapshotId" in parsed else [])
        for snap in made:
            stored = ec2_backends[ACCOUNT][REGION].snapshots[snap["SnapshotId"]]
            stored.start_time = clock.now.astimezone(UTC).replace(tzinfo=None)

    ec2.meta.events.register("after-call.ec2.CreateSnapshots", stamp)
    ec2.meta.events.register("after-call.ec2.CreateSnapshot", stamp)


def on(client, event: str, handler) -> None:
    client.meta.events.register(event, handler)


def count_calls(client, service: str) -> list[str]:
    calls: list[str] = []
    lock = threading.Lock()

    def note(model, **_kwargs):
        with lock:
            calls.append(model.name)

    on(client, f"before-call.{service}", note)
    return calls


# --- creates ---------------------------------------------------------------------------


def test_first_apply_creates_one_recovery_point_per_instance_with_every_tag(world):
    instances = [world.instance(volumes=2), world.instance(volumes=1)]
    plan = world.plan(DAY1)
    creates = [a for a in plan.actions if isinstance(a, CreateAction)]
    assert sorted(a.resource_id for a in creates) == sorted(instances)

    result = world.executor().apply(plan)

    assert result.ok
    assert result.counts["succeeded"] == 2
    points = world.recovery_points()
    assert sorted(points) == sorted(a.recovery_point for a in creates)
    for action in creates:
        made = next(r for r in result.results if r.action == action).snapshot_ids
        assert sorted(points[action.recovery_point]) == sorted(made)
        assert len(made) == len(action.volume_ids)
        attached = world.ec2.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [action.resource_id]}]
        )["Volumes"]
        expected = {
            v["Attachments"][0]["Device"]: VolumeSpec(v["VolumeType"], tags=tags_of(v))
            for v in attached
        }
        for snap in world.ec2.describe_snapshots(SnapshotIds=list(made))["Snapshots"]:
            tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
            # the planned tags, and the volumes as they were just before the create
            assert decode_volume_specs(tags.pop(TAG_VOLUMES)) == expected
            assert tags == dict(action.tags)
        (record,) = world.records(recovery_point=action.recovery_point)
        assert (record.action, record.outcome) == ("create", "succeeded")
        assert sorted(record.snapshot_ids) == sorted(made)
        assert world.audit.claims.get(action.recovery_point).status == "done"


def test_the_same_plan_applied_twice_creates_nothing_the_second_time(world):
    world.instance(volumes=1)
    plan = world.plan(DAY1)
    world.executor().apply(plan)
    calls = count_calls(world.ec2, "ec2")

    again = world.executor().apply(plan)

    assert "CreateSnapshots" not in calls
    assert [r.outcome for r in again.results] == ["skipped"]
    assert again.results[0].reason.startswith("already created by run run-1")
    assert len(world.snapshots()) == 1
    assert world.plan(DAY1).actions == ()


def test_a_create_records_full_tag_values_in_its_audit_details(world):
    instance = world.instance(volumes=1)
    action = CreateAction(
        region=REGION,
        policy="nightly",
        resource_id=instance,
        resource_type="instance",
        recovery_point=f"nightly/{instance}/20261201T0300Z",
        slot=DAY1,
        volume_ids=(),
        reason="due",
        tags={"smartvault:resource-tags": '{"a":"b"}'},
        full_tag_values={"smartvault:resource-tags": '{"a":"b","c":"' + "x" * 300 + '"}'},
    )
    world.executor().apply(Plan(DAY1, DAY1, ACCOUNT, (REGION,), actions=(action,)))
    (record,) = world.records(action="create")
    assert record.details == dict(action.full_tag_values)


def test_a_volume_policy_creates_one_snapshot_of_the_volume(world):
    volume = world.ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    action = CreateAction(
        region=REGION,
        policy="vols",
        resource_id=volume,
        resource_type="volume",
        recovery_point=f"vols/{volume}/20261201T0300Z",
        slot=DAY1,
        volume_ids=(volume,),
        reason="due",
        tags={"CreatedBy": "SmartVault"},
    )
    result = world.executor().apply(Plan(DAY1, DAY1, ACCOUNT, (REGION,), actions=(action,)))
    (snap,) = world.snapshots()
    assert snap["VolumeId"] == volume
    assert result.results[0].snapshot_ids == (snap["SnapshotId"],)
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert tags["smartvault:recovery-point"] == action.recovery_point
    assert tags["smartvault:policy"] == "vols"


def test_a_recovery_point_another_live_run_is_creating_is_skipped(world):
    world.instance()
    plan = world.plan(DAY1)
    (action,) = plan.actions
    world.audit.claims.acquire(action.recovery_point, "run-elsewhere", timedelta(minutes=15))

    result = world.executor().apply(plan)

    assert result.results[0].outcome == "skipped"
    assert "another run is creating it: run run-elsewhere" in result.results[0].reason
    assert world.snapshots() == []


def test_a_done_claim_whose_snapshots_are_gone_is_taken_over_and_created_again(world):
    world.instance(volumes=1)
    plan = world.plan(DAY1)
    world.executor().apply(plan)
    for snap in world.snapshots():  # someone deleted the recovery point by hand
        world.ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])

    # Taken over once the done claim's lease has passed (see the test below for why not
    # at once).
    result = world.apply(DAY1 + timedelta(minutes=16))

    assert [r.outcome for r in result.results] == ["succeeded"]
    assert len(world.snapshots()) == 1
    assert world.audit.claims.get(plan.actions[0].recovery_point).version == 2


def lagging_snapshot_listing(world) -> dict[str, bool]:
    """DescribeSnapshots filtered by tag (the plan's and the executor's) lists nothing while on.

    EC2 is eventually consistent: a snapshot made a moment ago may be missing from
    DescribeSnapshots for a while.
    """
    lag = {"on": False}

    def hide(parsed, context, **_kwargs):
        if lag["on"] and context.get("by_recovery_point"):
            parsed["Snapshots"] = []

    def note(params, context, **_kwargs):
        names = [f["Name"] for f in params.get("Filters", [])]
        context["by_recovery_point"] = any(n.startswith("tag:") for n in names)

    on(world.ec2, "before-parameter-build.ec2.DescribeSnapshots", note)
    on(world.ec2, "after-call.ec2.DescribeSnapshots", hide)
    return lag


def test_a_claim_completed_moments_ago_is_not_taken_over_while_ec2_lags(world):
    # Two overlapping runs with the same plan: the second claims after the first has
    # completed, and EC2 does not list the new snapshots yet. Taking the done claim over
    # at once would make the recovery point twice.
    world.instance(volumes=1)
    plan = world.plan(DAY1)
    world.executor().apply(plan)
    lag = lagging_snapshot_listing(world)
    lag["on"] = True

    result = world.executor().apply(plan)

    assert [r.outcome for r in result.results] == ["skipped"]
    assert "not listed yet" in result.results[0].reason
    assert len(world.snapshots()) == 1


def test_a_server_error_on_create_is_not_retried_and_the_next_run_creates_once(world):
    world.instance(volumes=1)
    calls: list[str] = []
    failing = {"on": True}

    def unavailable(**_kwargs):
        calls.append("CreateSnapshots")
        if failing["on"]:
            raise client_error("Unavailable", 503)

    on(world.ec2, "before-call.ec2.CreateSnapshots", unavailable)
    first = world.apply(DAY1)
    assert first.results[0].outcome == "failed"
    assert "EC2 may still have made it" in first.results[0].error
    assert calls == ["CreateSnapshots"]

    # The outcome is unknown, so the claim is kept for its lease: a run within it skips.
    failing["on"] = False
    assert [r.outcome for r in world.apply(DAY1).results] == ["skipped"]
    second = world.apply(DAY1 + timedelta(minutes=16))
    assert [r.outcome for r in second.results] == ["succeeded"]
    assert len(world.snapshots()) == 1


def test_a_lost_create_response_keeps_the_claim_so_no_run_makes_it_twice(world):
    # The create reached EC2 but its answer was lost, and EC2 does not list the snapshot
    # yet: this run reports it failed. Releasing the claim would let the next run (an
    # overlapping one, a Lambda retry) look, see nothing either, and create it again.
    world.instance(volumes=1)
    lag = lagging_snapshot_listing(world)
    lag["on"] = True
    lost = {"n": 0}

    def lose_response(**_kwargs):
        lost["n"] += 1
        if lost["n"] == 1:
            raise client_error("InternalError", 500)

    on(world.ec2, "after-call.ec2.CreateSnapshots", lose_response)
    first = world.apply(DAY1)
    assert [r.outcome for r in first.results] == ["failed"]

    soon = world.apply(DAY1 + timedelta(minutes=1))
    assert [r.outcome for r in soon.results] == ["skipped"]
    assert len(world.snapshots()) == 1

    assert "another run is creating it" in soon.results[0].reason

    lag["on"] = False  # once listed, plans see the recovery point: nothing to create
    later = world.apply(DAY1 + timedelta(minutes=16))
    assert later.results == ()
    assert len(world.snapshots()) == 1


def test_a_create_whose_response_was_lost_is_found_by_its_tag(world):
    world.instance()
    seen = {"n": 0}

    def lose_response(**_kwargs):
        seen["n"] += 1
        if seen["n"] == 1:
            raise client_error("InternalError", 500)

    on(world.ec2, "after-call.ec2.CreateSnapshots", lose_response)
    result = world.apply(DAY1)

    assert [r.outcome for r in result.results] == ["succeeded"]
    made = sorted(result.results[0].snapshot_ids)
    assert made == sorted(s["SnapshotId"] for s in world.snapshots())
    assert seen["n"] == 1


# --- deletes ---------------------------------------------------------------------------


def aged_world(world, instances: int = 2) -> Plan:
    """Two daily recovery points per instance, then a plan a month later that deletes one."""
    for _ in range(instances):
        world.instance(volumes=2)
    world.apply(DAY1)
    world.apply(DAY2)
    plan = world.plan(LATER)
    assert sum(isinstance(a, DeleteAction) for a in plan.actions) == instances
    return plan


def test_deletion_leaves_a_succeeded_record_listing_its_snapshot_ids(world):
    plan = aged_world(world, instances=1)
    delete = next(a for a in plan.actions if isinstance(a, DeleteAction))
    world.clock.now = LATER

    result = world.executor().apply(plan)

    assert result.ok
    assert delete.recovery_point not in world.recovery_points()
    (record,) = world.records(action="delete")
    assert record.outcome == "succeeded"
    assert sorted(record.snapshot_ids) == sorted(delete.snapshot_ids)
    assert record.details["deleted"].split(",") == list(delete.snapshot_ids)


def test_audit_table_unavailable_means_nothing_is_deleted_or_created(world):
    plan = aged_world(world, instances=1)
    before = world.recovery_points()
    world.ddb.delete_table(TableName=TABLE)
    calls = count_calls(world.ec2, "ec2")

    result = world.executor().apply(plan)

    assert not MUTATING.intersection(calls)
    assert world.recovery_points() == before
    assert result.stopped_early
    assert {r.outcome for r in result.results} == {"failed"}
    assert "smartvault audit init" in result.results[0].error


def test_a_pending_record_that_cannot_be_written_stops_every_further_delete(world):
    plan = aged_world(world, instances=3)
    before = world.recovery_points()
    world.clock.now = LATER

    def denied(**_kwargs):
        raise client_error("AccessDeniedException")

    on(world.ddb, "before-call.dynamodb.PutItem", denied)
    calls = count_calls(world.ec2, "ec2")

    result = world.executor(max_workers=1).apply(plan)

    assert "DeleteSnapshot" not in calls
    assert world.recovery_points() == before
    assert result.stopped_early
    assert "audit log could not be written" in result.stop_reason
    assert not result.ok


def test_a_snapshot_deleted_by_someone_else_counts_as_done(world):
    plan = aged_world(world, instances=1)
    delete = next(a for a in plan.actions if isinstance(a, DeleteAction))
    world.ec2.delete_snapshot(SnapshotId=delete.snapshot_ids[0])
    world.clock.now = LATER

    result = world.executor().apply(plan)

    outcome = next(r for r in result.results if r.action == delete)
    assert outcome.outcome == "succeeded"
    (record,) = world.records(action="delete")
    assert record.details["already_gone"] == delete.snapshot_ids[0]


def test_a_snapshot_gone_between_look_and_delete_counts_as_done(world):
    plan = aged_world(world, instances=1)
    delete = next(a for a in plan.actions if isinstance(a, DeleteAction))

    def already_gone(params, **_kwargs):
        raise client_error("InvalidSnapshot.NotFound")

    on(world.ec2, "before-call.ec2.DeleteSnapshot", already_gone)
    world.clock.now = LATER
    result = world.executor().apply(plan)

    assert next(r for r in result.results if r.action == delete).outcome == "succeeded"


def test_a_snapshot_used_by_an_ami_registered_after_planning_is_skipped(world):
    plan = aged_world(world, instances=1)
    delete = next(a for a in plan.actions if isinstance(a, DeleteAction))
    in_use = delete.snapshot_ids[0]

    def used_by_ami(params, **_kwargs):
        if params["SnapshotId"] == in_use:
            raise client_error("InvalidSnapshot.InUse")

    on(world.ec2, "before-parameter-build.ec2.DeleteSnapshot", used_by_ami)
    world.clock.now = LATER
    result = world.executor().apply(plan)

    outcome = next(r for r in result.results if r.action == delete)
    assert outcome.outcome == "skipped"
    assert "in use by an AMI" in outcome.reason
    assert in_use in {s["SnapshotId"] for s in world.snapshots()}
    (record,) = world.records(action="delete")
    assert record.outcome == "skipped"
    assert "in use by an AMI" in record.reason


def test_an_ami_made_from_a_snapshot_keeps_it_in_moto_too(world):
    """moto's CreateImage makes a snapshot that is really InUse: it is never deleted."""
    instance = world.instance(volumes=1)
    image = world.ec2.create_image(InstanceId=instance, Name="golden-image")["ImageId"]
    (snap,) = world.ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"]
    snapshot_id = snap["Ebs"]["SnapshotId"]
    world.ec2.create_tags(
        Resources=[snapshot_id],
        Tags=[
            {"Key": "CreatedBy", "Value": "SmartVault"},
            {"Key": "smartvault:policy", "Value": "nightly"},
            {"Key": TAG_RECOVERY_POINT, "Value": "nightly/x/20261101T0300Z"},
        ],
    )
    delete = DeleteAction(
        REGION, "nightly", instance, "nightly/x/20261101T0300Z", (snapshot_id,), DAY1, "old"
    )
    result = world.executor().apply(Plan(DAY1, DAY1, ACCOUNT, (REGION,), actions=(delete,)))
    assert result.results[0].outcome == "skipped"
    assert image in result.results[0].reason


def test_a_snapshot_that_lost_its_smartvault_tags_is_never_deleted(world):
    plan = aged_world(world, instances=1)
    delete = next(a for a in plan.actions if isinstance(a, DeleteAction))
    world.ec2.delete_tags(Resources=[delete.snapshot_ids[1]], Tags=[{"Key": "CreatedBy"}])
    calls = count_calls(world.ec2, "ec2")
    world.clock.now = LATER

    result = world.executor().apply(plan)

    assert "DeleteSnapshot" not in calls
    outcome = next(r for r in result.results if r.action == delete)
    assert outcome.outcome == "skipped"
    assert delete.snapshot_ids[1] in outcome.reason


def test_a_failed_recovery_point_is_deleted_and_its_slot_made_again_in_the_same_run(world):
    from moto.ec2.models import ec2_backends

    world.instance(volumes=1)
    world.apply(DAY1)
    (failed,) = world.snapshots()
    ec2_backends[ACCOUNT][REGION].snapshots[failed["SnapshotId"]].status = "error"

    # the delete goes first (releasing the claim), then the slot's create
    second = world.apply(DAY1)
    assert sorted((type(r.action).__name__, r.outcome) for r in second.results) == [
        ("CreateAction", "succeeded"),
        ("DeleteAction", "succeeded"),
    ]
    (remade,) = world.snapshots()
    assert remade["SnapshotId"] != failed["SnapshotId"]
    assert remade["State"] == "completed"
    assert world.plan(DAY1).actions == ()


def test_a_create_beside_failed_snapshots_is_skipped_until_they_are_gone(world):
    from moto.ec2.models import ec2_backends

    world.instance(volumes=1)
    plan = world.plan(DAY1)
    world.executor().apply(plan)
    (snap,) = world.snapshots()
    ec2_backends[ACCOUNT][REGION].snapshots[snap["SnapshotId"]].status = "error"

    result = world.executor().apply(plan)  # a stale plan that still says "create"

    assert result.results[0].outcome == "skipped"
    assert "in state error" in result.results[0].reason
    assert len(world.snapshots()) == 1


# --- stopping --------------------------------------------------------------


def test_a_run_told_to_stop_starts_nothing_new_and_lists_the_rest(world):
    for _ in range(3):
        world.instance(volumes=1)
    plan = world.plan(DAY1)
    results: list = []
    result = world.executor(should_stop=lambda: len(results) >= 1, on_result=results.append).apply(
        plan
    )

    assert result.stopped_early
    assert len(result.results) == 1
    assert len(result.not_started) == 2
    assert "asked to stop" in result.stop_reason
    assert len(world.snapshots()) == 1
    # Claims of what was not started were handed back: the next run does the rest now.
    rerun = world.apply(DAY1)
    assert rerun.counts["succeeded"] == 2
    assert len(world.snapshots()) == 3


# --- archive ------------------------------------------------------------------------------


def archiving_world(world) -> Plan:
    """Two daily recovery points of one instance; a month later the older one is archived."""
    world.policies = PolicySet(
        (
            make_policy(
                "nightly", retention=Retention(keep_last=5), archive_after=Duration.parse("7d")
            ),
        )
    )
    world.instance(volumes=2)
    world.apply(DAY1)
    world.apply(DAY2)
    plan = world.plan(LATER)
    assert [a.type for a in plan.actions if not isinstance(a, CreateAction)] == ["archive"]
    return plan


def tiers(world) -> dict[str, str]:
    return {s["SnapshotId"]: s.get("StorageTier", "standard") for s in world.snapshots()}


def test_archive_moves_the_snapshots_to_the_archive_tier_with_a_succeeded_record(world):
    plan = archiving_world(world)
    archive = next(a for a in plan.actions if isinstance(a, ArchiveAction))
    world.clock.now = LATER
    result = world.executor().apply(plan)

    assert result.ok, result.failed
    assert next(r for r in result.results if r.action == archive).outcome == "succeeded"
    assert {s for s, tier in tiers(world).items() if tier == "archive"} == set(archive.snapshot_ids)
    [record] = world.records(action="archive")
    assert record.outcome == "succeeded"
    assert sorted(record.snapshot_ids) == sorted(archive.snapshot_ids)
    assert sorted(record.details["archived"].split(",")) == sorted(archive.snapshot_ids)
    # Archived: the next plan does not archive it again.
    replan = world.plan(LATER)
    assert archive.recovery_point not in {
        a.recovery_point for a in replan.actions if isinstance(a, ArchiveAction)
    }


def test_an_already_archived_snapshot_counts_as_done(world):
    plan = archiving_world(world)
    archive = next(a for a in plan.actions if isinstance(a, ArchiveAction))
    first, second = archive.snapshot_ids
    world.ec2.modify_snapshot_tier(SnapshotId=first, StorageTier="archive")  # by hand

    def being_archived(params, **_kwargs):
        # EC2's answer for a snapshot whose archiving has already started.
        if params["SnapshotId"] == second:
            raise ClientError(
                {
                    "Error": {"Code": "IncorrectState", "Message": "snapshot is being archived"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "ModifySnapshotTier",
            )

    on(world.ec2, "before-parameter-build.ec2.ModifySnapshotTier", being_archived)
    world.clock.now = LATER
    result = world.executor().apply(Plan(LATER, LATER, ACCOUNT, (REGION,), actions=(archive,)))

    assert [r.outcome for r in result.results] == ["succeeded"]
    [record] = world.records(action="archive")
    assert record.outcome == "succeeded"
    assert sorted(record.details["already_archived"].split(",")) == sorted([first, second])
    assert record.details["archived"] == ""


def test_an_archive_of_a_snapshot_that_lost_its_tags_is_refused(world):
    plan = archiving_world(world)
    archive = next(a for a in plan.actions if isinstance(a, ArchiveAction))
    world.ec2.delete_tags(Resources=[archive.snapshot_ids[0]], Tags=[{"Key": "CreatedBy"}])
    world.clock.now = LATER
    result = world.executor().apply(Plan(LATER, LATER, ACCOUNT, (REGION,), actions=(archive,)))

    assert [r.outcome for r in result.results] == ["skipped"]
    assert "not SmartVault's to archive" in result.results[0].reason
    assert set(tiers(world).values()) == {"standard"}


# --- copy ---------------------------------------------------------------------------------

WEST = "us-west-2"


@dataclass
class CopyWorld(World):
    """World with a second region, us-west-2, that policies copy to."""

    west: object = None

    def plan(self, at: datetime) -> Plan:
        selectors = [p.selector for p in self.policies.policies]
        regions = {REGION: self.ec2, WEST: self.west}
        inventory = Inventory(
            account_id=ACCOUNT,
            regions=(REGION, WEST),
            instances=tuple(i for r, c in regions.items() for i in read_instances(c, r, selectors)),
            snapshots=tuple(s for r, c in regions.items() for s in read_snapshots(c, r)),
            images=tuple(i for r, c in regions.items() for i in read_images(c, r)),
        )
        return planner.plan(self.policies, inventory, at)

    def client_for(self, region: str):
        return self.west if region == WEST else self.ec2

    def copies(self) -> list[dict]:
        return self.west.describe_snapshots(OwnerIds=["self"])["Snapshots"]


@pytest.fixture
def copy_world(world):
    from moto.ec2.models import ec2_backends

    west = boto3.client("ec2", region_name=WEST)

    def stamp(parsed, **_kwargs):
        stored = ec2_backends[ACCOUNT][WEST].snapshots[parsed["SnapshotId"]]
        stored.start_time = world.clock.now.astimezone(UTC).replace(tzinfo=None)

    west.meta.events.register("after-call.ec2.CopySnapshot", stamp)
    return CopyWorld(
        world.ec2,
        world.ddb,
        world.clock,
        PolicySet((make_policy("nightly", copies=(CopyRule(WEST),)),)),
        west=west,
    )


def copy_action(plan: Plan) -> CopyAction:
    [copy] = [a for a in plan.actions if isinstance(a, CopyAction)]
    return copy


def no_pending_records(world) -> None:
    assert [r for r in world.records() if r.outcome == "pending"] == []


def test_copy_makes_tagged_copies_in_the_target_region_once(copy_world):
    w = copy_world
    w.instance(volumes=2)
    w.apply(DAY1)  # creates
    plan = w.plan(DAY1)
    copy = copy_action(plan)
    result = w.executor().apply(plan)

    assert [r.outcome for r in result.results] == ["succeeded"]
    sources = {s["SnapshotId"]: tags_of(s) for s in w.snapshots()}
    source_volumes = {s["SnapshotId"]: s["VolumeId"] for s in w.snapshots()}
    copies = w.copies()
    assert len(copies) == 2
    for made in copies:
        tags = tags_of(made)
        region, source_id = tags["smartvault:source"].split("/")
        assert region == REGION
        assert tags["CreatedBy"] == "SmartVault"
        assert tags["smartvault:policy"] == "nightly"
        assert tags["smartvault:recovery-point"] == copy.recovery_point
        # the device of the source's volume, read where the source is (DESIGN §3)
        devices = json.loads(sources[source_id]["smartvault:devices"])
        assert tags["smartvault:device"] == devices[source_volumes[source_id]]
        own = {"smartvault:source", "smartvault:device"}
        assert {k: v for k, v in tags.items() if k not in own} == sources[source_id]
    assert {tags_of(c)["smartvault:device"] for c in copies} == {"/dev/sdf", "/dev/sdg"}
    assert sorted(result.results[0].snapshot_ids) == sorted(c["SnapshotId"] for c in copies)
    [record] = w.records(action="copy")
    assert record.outcome == "succeeded"
    assert record.details["target_region"] == WEST
    assert len(record.details["copies"].split(",")) == 2
    claim = w.audit.claims.get(f"{copy.recovery_point}@{WEST}")
    assert claim is not None
    assert claim.status == "done"

    # A fresh plan sees the copies: nothing to copy, and applying it copies nothing.
    again = w.apply(DAY1 + timedelta(minutes=1))
    assert again.results == ()
    assert len(w.copies()) == 2
    no_pending_records(w)


def test_a_copy_with_a_kms_key_asks_for_an_encrypted_copy_in_the_target_region(copy_world):
    w = copy_world
    w.policies = PolicySet(
        (make_policy("nightly", copies=(CopyRule(WEST, kms_key_id="alias/dr"),)),)
    )
    w.instance(volumes=1)
    w.apply(DAY1)
    sent: list[dict] = []
    on(w.west, "before-parameter-build.ec2.CopySnapshot", lambda params, **_k: sent.append(params))
    result = w.apply(DAY1)
    assert [r.outcome for r in result.results] == ["succeeded"]
    [params] = sent
    assert (params["SourceRegion"], params["Encrypted"], params["KmsKeyId"]) == (
        REGION,
        True,
        "alias/dr",
    )
    assert params["SourceSnapshotId"] == w.snapshots()[0]["SnapshotId"]


def test_a_copy_of_a_snapshot_with_50_tags_stays_within_ec2s_limit(copy_world):
    """smartvault:source is added; the lowest-priority copied tags give way, never ours."""
    w = copy_world
    w.instance(volumes=1)
    w.apply(DAY1)
    [source] = w.snapshots()
    room = 50 - len(source.get("Tags", []))
    w.ec2.create_tags(
        Resources=[source["SnapshotId"]],
        Tags=[{"Key": f"team-{i:02d}", "Value": "x"} for i in range(room)],
    )

    result = w.apply(DAY1)

    assert [r.outcome for r in result.results] == ["succeeded"]
    [made] = w.copies()
    tags = tags_of(made)
    assert len(tags) == 50
    assert tags["smartvault:source"] == f"{REGION}/{source['SnapshotId']}"
    assert tags["smartvault:recovery-point"] == tags_of(source)["smartvault:recovery-point"]
    assert f"team-{room - 1:02d}" not in tags  # the last copied user tag gave way


def test_a_lost_copy_response_is_not_copied_again_by_an_immediate_rerun(copy_world):
    w = copy_world
    w.instance(volumes=1)
    w.apply(DAY1)
    lag = {"on": True}

    def note(params, context, **_kwargs):
        context["by_tag"] = any(f["Name"].startswith("tag:") for f in params.get("Filters", []))

    def hide(parsed, context, **_kwargs):  # EC2 does not list the new copy yet
        if lag["on"] and context.get("by_tag"):
            parsed["Snapshots"] = []

    on(w.west, "before-parameter-build.ec2.DescribeSnapshots", note)
    on(w.west, "after-call.ec2.DescribeSnapshots", hide)
    calls = count_calls(w.west, "ec2.CopySnapshot")
    lost = {"n": 0}

    def lose_response(**_kwargs):
        lost["n"] += 1
        if lost["n"] == 1:
            raise client_error("InternalError", 500, "CopySnapshot")

    on(w.west, "after-call.ec2.CopySnapshot", lose_response)
    first = w.apply(DAY1)
    assert [r.outcome for r in first.results] == ["failed"]
    assert "EC2 may still have made the copy" in first.results[0].error
    assert calls == ["CopySnapshot"]

    soon = w.apply(DAY1 + timedelta(minutes=1))
    assert [r.outcome for r in soon.results] == ["skipped"]
    assert "another run is copying it" in soon.results[0].reason
    assert calls == ["CopySnapshot"]
    assert len(w.copies()) == 1

    lag["on"] = False  # once listed, plans see the copy: nothing to copy
    later = w.apply(DAY1 + timedelta(minutes=16))
    assert later.results == ()
    assert len(w.copies()) == 1
    no_pending_records(w)


def test_a_copy_that_stopped_half_way_is_completed_by_the_next_plan(copy_world):
    w = copy_world
    w.instance(volumes=2)
    w.apply(DAY1)
    calls = {"n": 0}

    def limit_on_second(**_kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise client_error("ResourceLimitExceeded", 400, "CopySnapshot")

    on(w.west, "before-call.ec2.CopySnapshot", limit_on_second)
    first = w.apply(DAY1)
    assert [r.outcome for r in first.results] == ["failed"]
    assert len(w.copies()) == 1

    plan = w.plan(DAY1 + timedelta(minutes=1))
    copy = copy_action(plan)
    assert len(copy.snapshot_ids) == 1
    assert copy.reason == f"completes the copy to {WEST}: 1 of 2 snapshots missing"
    copied = tags_of(w.copies()[0])["smartvault:source"].split("/")[1]
    assert copy.snapshot_ids != (copied,)

    # Its copies may not be listed yet elsewhere: the done claim holds until its lease.
    soon = w.executor().apply(plan)
    assert [r.outcome for r in soon.results] == ["skipped"]
    assert "not copied again before" in soon.results[0].reason

    done = w.apply(DAY1 + timedelta(minutes=16))
    assert [r.outcome for r in done.results] == ["succeeded"]
    sources = sorted(tags_of(c)["smartvault:source"] for c in w.copies())
    assert sources == sorted(f"{REGION}/{s['SnapshotId']}" for s in w.snapshots())
    assert w.plan(DAY1 + timedelta(minutes=17)).actions == ()
    assert [r.outcome for r in w.records(action="copy")].count("succeeded") == 1
    no_pending_records(w)


@pytest.mark.parametrize(
    "tag",
    [
        {"Key": "CreatedBy", "Value": "someone-else"},
        {"Key": "smartvault:policy", "Value": "other-policy"},
        {"Key": "smartvault:recovery-point", "Value": "nightly/i-0other/20261201T0300Z"},
    ],
    ids=["created-by", "policy", "recovery-point"],
)
def test_a_copy_of_a_snapshot_that_lost_its_tags_is_refused(copy_world, tag):
    # The source is checked like a delete's snapshots: SmartVault's, this policy's, this
    # recovery point's; a plan naming any other readable snapshot copies nothing.
    w = copy_world
    w.instance(volumes=1)
    w.apply(DAY1)
    plan = w.plan(DAY1)
    w.ec2.create_tags(Resources=[copy_action(plan).snapshot_ids[0]], Tags=[tag])
    calls = count_calls(w.west, "ec2.CopySnapshot")
    result = w.executor().apply(plan)
    assert calls == []
    assert [r.outcome for r in result.results] == ["skipped"]
    assert "not SmartVault's to copy" in result.results[0].reason
    assert w.copies() == []


# --- a lease that lapsed while the run worked ---------------------------------------------

SHORT_LEASE = timedelta(seconds=10)


def killed_run(world, run_id: str, dies_after: str, **regions) -> Executor:
    """Another run with its own clients (same moto account) that dies right after its first
    ``dies_after`` call has landed: nothing after it runs, not even its ``finally``."""
    ec2 = {REGION: boto3.client("ec2", region_name=REGION)}
    ec2.update({r: boto3.client("ec2", region_name=r) for r in regions})
    ddb = boto3.client("dynamodb", region_name=REGION)
    dead = {"yes": False}

    def die(**_kwargs):
        dead["yes"] = True
        raise Crash(f"{run_id} killed after {dies_after}")

    def refuse(**_kwargs):
        if dead["yes"]:
            raise Crash(f"{run_id} is dead")

    for client in (*ec2.values(), ddb):
        on(client, "before-call", refuse)
    for client in ec2.values():
        on(client, f"after-call.ec2.{dies_after}", die)
    return Executor(
        Ec2Snapshots(lambda region: ec2[region], sleep=lambda _s: None),
        AuditLog(ddb, TABLE, clock=world.clock, sleep=lambda _s: None),
        volumes=Ec2Volumes(lambda region: ec2[region], sleep=lambda _s: None),
        run_id=run_id,
        actor="tester",
        clock=world.clock,
        claim_lease=SHORT_LEASE,
    )


def test_a_run_whose_lease_lapsed_never_creates_over_a_dead_runs_snapshots(world):
    # Run A claims two creates and looks them both up (none exist). It creates the first;
    # by then its lease has passed, and run B claims the second, creates it and is killed
    # before completing its claim. B's lease passes too. A must not renew onto B's claim
    # and create from its stale look-up: that makes the recovery point twice.
    world.instance(volumes=1)
    world.instance(volumes=1)
    plan = world.plan(DAY1)
    first, second = plan.actions
    assert isinstance(second, CreateAction)

    def b_interleaves(result):
        if result.action is not first:
            return
        world.clock.now += SHORT_LEASE + timedelta(seconds=1)
        b = killed_run(world, "run-b", "CreateSnapshots")
        with pytest.raises(Crash):
            b.apply(Plan(DAY1, DAY1, ACCOUNT, (REGION,), actions=(second,)))
        world.clock.now += SHORT_LEASE + timedelta(seconds=1)

    world.clock.now = DAY1
    result = world.executor(claim_lease=SHORT_LEASE, on_result=b_interleaves).apply(plan)

    points = world.recovery_points()
    assert len(points[second.recovery_point]) == 1, points
    assert [r.outcome for r in result.results] == ["succeeded", "skipped"]
    assert "already exists" in result.results[1].reason
    claim = world.audit.claims.get(second.recovery_point)
    assert claim is not None
    assert (claim.status, claim.snapshot_ids) == ("done", tuple(points[second.recovery_point]))
    assert not [r for r in world.records(run_id="run-1") if r.outcome == "pending"]


def test_a_copy_whose_lease_lapsed_never_copies_over_a_dead_runs_copy(copy_world):
    # The same race for copies: A claims and looks in the target region, its lease passes
    # before it copies, and run B claims, copies and is killed; B's lease passes too.
    w = copy_world
    w.instance(volumes=1)
    w.apply(DAY1)
    plan = w.plan(DAY1)
    copy = copy_action(plan)
    armed = {"on": True}

    def note(params, context, **_kwargs):
        context["by_source"] = any(
            f["Name"] == "tag:smartvault:source" for f in params.get("Filters", [])
        )

    def b_interleaves(context, **_kwargs):
        if not (armed["on"] and context.get("by_source")):
            return
        armed["on"] = False
        w.clock.now += SHORT_LEASE + timedelta(seconds=1)
        b = killed_run(w, "run-b", "CopySnapshot", **{WEST: True})
        with pytest.raises(Crash):
            b.apply(Plan(DAY1, DAY1, ACCOUNT, (REGION, WEST), actions=(copy,)))
        w.clock.now += SHORT_LEASE + timedelta(seconds=1)

    on(w.west, "before-parameter-build.ec2.DescribeSnapshots", note)
    on(w.west, "after-call.ec2.DescribeSnapshots", b_interleaves)
    result = w.executor(claim_lease=SHORT_LEASE).apply(plan)

    assert not armed["on"]
    assert len(w.copies()) == 1, w.copies()
    assert [r.outcome for r in result.results] == ["skipped"]
    assert "already copied" in result.results[0].reason
    claim = w.audit.claims.get(f"{copy.recovery_point}@{WEST}")
    assert claim is not None
    assert claim.status == "done"


# --- delete records a killed run left pending ------------------------------------------------


def kill_after_deletes(world, n: int) -> None:
    """The process dies right after its n-th DeleteSnapshot landed: no record update."""
    state = {"n": 0, "dead": False}

    def after(**_kwargs):
        state["n"] += 1
        if state["n"] >= n:
            state["dead"] = True
            raise Crash("killed after a delete")

    def before(**_kwargs):
        if state["dead"]:
            raise Crash("the process is dead")

    on(world.ec2, "after-call.ec2.DeleteSnapshot", after)
    for client in (world.ec2, world.ddb):
        on(client, "before-call", before)


def test_a_delete_record_left_pending_by_a_killed_run_is_closed_as_found_gone(world):
    plan = aged_world(world, instances=1)
    (delete,) = [a for a in plan.actions if isinstance(a, DeleteAction)]
    kill_after_deletes(world, len(delete.snapshot_ids))
    world.clock.now = LATER
    with pytest.raises(Crash):
        world.executor(run_id="run-killed").apply(replace(plan, actions=(delete,)))
    revived = world_after_kill(world)
    [left] = revived.records(action="delete")
    assert (left.run_id, left.outcome) == ("run-killed", "pending")
    # Young enough to belong to a live run: left alone.
    soon = revived.apply(LATER + timedelta(minutes=10), run_id="run-soon")
    assert not soon.notes
    assert [r.outcome for r in revived.records(action="delete")] == ["pending"]

    later = revived.apply(LATER + timedelta(hours=2), run_id="run-later")

    # The same record, no new one (another, older recovery point may be deleted meanwhile).
    [closed] = revived.records(action="delete", recovery_point=delete.recovery_point)
    assert (closed.run_id, closed.outcome, closed.error) == ("run-killed", "succeeded", "")
    assert closed.snapshot_ids == delete.snapshot_ids
    assert closed.details["resolution"].startswith("found gone")
    assert closed.details["resolved_by"] == "run-later"
    assert closed.details["found_gone"] == ",".join(delete.snapshot_ids)
    assert any("closed: succeeded" in n for n in later.notes)


def test_a_delete_killed_half_way_is_closed_failed_and_planned_again(world):
    world.instance(volumes=2)
    world.apply(DAY1)
    world.apply(DAY2)
    plan = world.plan(LATER)
    (delete,) = [a for a in plan.actions if isinstance(a, DeleteAction)]
    kill_after_deletes(world, 1)
    world.clock.now = LATER
    with pytest.raises(Crash):
        world.executor(run_id="run-killed").apply(replace(plan, actions=(delete,)))
    revived = world_after_kill(world)

    result = revived.apply(LATER + timedelta(hours=2), run_id="run-later")

    assert result.ok, result.failed
    records = {
        r.run_id: r for r in revived.records(action="delete", recovery_point=delete.recovery_point)
    }
    assert set(records) == {"run-killed", "run-later"}
    old = records["run-killed"]
    assert old.outcome == "failed"
    assert "the delete did not finish" in old.error
    assert old.details["still_exist"]
    assert old.details["found_gone"]
    assert records["run-later"].outcome == "succeeded"  # the plan deleted the rest
    assert delete.recovery_point not in revived.recovery_points()


def test_a_failing_look_at_old_pending_records_never_stops_the_backups(world):
    world.instance(volumes=1)

    def refuse_queries(**_kwargs):
        raise client_error("AccessDeniedException", 400, "Query")

    on(world.ddb, "before-call.dynamodb.Query", refuse_queries)
    result = world.apply(DAY1)
    assert [r.outcome for r in result.results] == ["succeeded"]
    assert len(world.snapshots()) == 1
    assert any("were not checked" in n for n in result.notes)


def world_after_kill(world) -> World:
    """The same account through fresh clients: the killed process's clients stay dead."""
    ec2 = boto3.client("ec2", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    stamp_snapshots_with(ec2, world.clock)
    return World(ec2, ddb, world.clock, world.policies, world.runs)


# --- faults and crashes ------------------------------------------------------------------


def test_throttling_on_a_third_of_the_calls_still_converges(world):
    plan = aged_world(world, instances=3)
    counter = itertools.count(1)
    lock = threading.Lock()
    sleeps: list[float] = []

    throttling = {"on": True}

    def throttle_every_third(model, **_kwargs):
        with lock:
            n = next(counter)
        if throttling["on"] and n % 3 == 0:
            raise client_error("RequestLimitExceeded", 503, model.name)

    on(world.ec2, "before-call.ec2", throttle_every_third)
    world.clock.now = LATER
    result = world.executor(sleep=sleeps.append).apply(plan)
    throttling["on"] = False

    assert result.ok, result.failed
    assert sleeps
    assert max(sleeps) <= 20
    assert_converged(world, plan, LATER)


def assert_converged(world, plan: Plan, at: datetime) -> None:
    """The plan's work is done, once: every create made once, every delete gone."""
    replan = world.plan(at)
    assert not [a for a in replan.actions if isinstance(a, CreateAction)]
    points = world.recovery_points()
    for action in plan.actions:
        if isinstance(action, CreateAction):
            assert len(points[action.recovery_point]) == len(action.volume_ids), points
        else:
            assert action.recovery_point not in points
    assert all(len(ids) == 2 for ids in points.values()), points


def _crash_after(world, k: int) -> dict:
    """Arm a crash right after the k-th mutating call (EC2 or audit); the process is dead after."""
    state = {"n": 0, "dead": False, "armed": True}
    lock = threading.Lock()

    def after(model, **_kwargs):
        if not state["armed"] or model.name not in MUTATING | AUDIT_WRITES:
            return
        with lock:
            state["n"] += 1
            if state["n"] >= k:
                state["dead"] = True
        if state["dead"]:
            raise Crash(f"killed after call {k}")

    def before(model, **_kwargs):
        if state["armed"] and state["dead"]:
            raise Crash("the process is dead")

    for client in (world.ec2, world.ddb):
        on(client, "after-call", after)
        on(client, "before-call", before)
    return state


# 18 mutating calls in all: 2 claims, 2 pending records, 2 CreateSnapshots, 2 record
# updates, 2 claim completions, 2 pending records, 4 DeleteSnapshot, 2 record updates.
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18])
def test_a_run_killed_after_any_call_is_finished_by_the_next_run(world, k):
    # Once the new points exist, the rerun deletes both old points of a lineage of three,
    # which the breaker would hold (a month without backups): not what this test is about.
    world.policies = PolicySet((make_policy("nightly", safety=NO_BREAKER),))
    plan = aged_world(world, instances=2)
    assert {type(a) for a in plan.actions} == {CreateAction, DeleteAction}
    crash = _crash_after(world, k)
    world.clock.now = LATER
    with pytest.raises(Crash):
        world.executor(max_workers=2).apply(plan)

    crash["armed"] = False
    # A killed run's claims end with their lease.
    rerun = world.apply(LATER + timedelta(minutes=16))
    assert rerun.ok, rerun.failed

    assert_converged(world, plan, LATER + timedelta(minutes=16))
    audited = {s for r in world.records(action="delete") for s in r.snapshot_ids}
    for action in plan.actions:
        if isinstance(action, DeleteAction):
            assert set(action.snapshot_ids) <= audited


# --- the audit invariant ----------------------------------------------------------------

_faults = st.sampled_from(
    [
        None,
        None,
        "RequestLimitExceeded",
        "InvalidSnapshot.NotFound",
        "InvalidSnapshot.InUse",
        "InternalError",
        "audit",
    ]
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=5),
    faults=st.lists(_faults, min_size=12, max_size=12),
    workers=st.integers(1, 4),
)
def test_every_delete_that_reaches_ec2_has_its_audit_record_written_first(sizes, faults, workers):
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        clock = Clock(DAY1)
        audit = AuditLog(ddb, TABLE, clock=clock, sleep=lambda _s: None)
        audit.ensure_table()
        volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
        actions = []
        for n, size in enumerate(sizes):
            rp = f"nightly/{volume}/2026110{n}T0300Z"
            tags = [
                {"Key": "CreatedBy", "Value": "SmartVault"},
                {"Key": "smartvault:policy", "Value": "nightly"},
                {"Key": TAG_RECOVERY_POINT, "Value": rp},
            ]
            ids = tuple(
                ec2.create_snapshot(
                    VolumeId=volume,
                    TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}],
                )["SnapshotId"]
                for _ in range(size)
            )
            actions.append(DeleteAction(REGION, "nightly", volume, rp, ids, DAY1, "old"))

        events: list[tuple[str, frozenset[str]]] = []
        lock = threading.Lock()
        fault_iter = itertools.cycle(faults)

        def next_fault():
            with lock:
                return next(fault_iter)

        def audit_written(model, params, **_kwargs):
            if model.name == "PutItem" and next_fault() == "audit":
                raise client_error("InternalServerError", 500, "PutItem")

        def remember_ids(params, context, **_kwargs):
            item = params["Item"]
            context["ids"] = frozenset(v["S"] for v in item.get("snapshot_ids", {}).get("L", []))

        def record_written(parsed, context, **_kwargs):
            if "Error" not in parsed:  # a write DynamoDB accepted
                with lock:
                    events.append(("record", context.get("ids", frozenset())))

        def delete_called(params, **_kwargs):
            with lock:
                events.append(("delete", frozenset({params["SnapshotId"]})))
            fault = next_fault()
            if fault not in (None, "audit"):
                raise client_error(fault, 503 if fault == "RequestLimitExceeded" else 400)

        on(ddb, "before-parameter-build.dynamodb.PutItem", remember_ids)
        on(ddb, "before-call.dynamodb.PutItem", audit_written)
        on(ddb, "after-call.dynamodb.PutItem", record_written)
        on(ec2, "before-parameter-build.ec2.DeleteSnapshot", delete_called)

        executor = Executor(
            Ec2Snapshots(lambda _r: ec2, sleep=lambda _s: None),
            audit,
            volumes=Ec2Volumes(lambda _r: ec2, sleep=lambda _s: None),
            run_id="run-p",
            actor="t",
            clock=clock,
            max_workers=workers,
        )
        result = executor.apply(Plan(DAY1, DAY1, ACCOUNT, (REGION,), actions=tuple(actions)))

        recorded: set[str] = set()
        for kind, ids in events:  # in the order they happened
            if kind == "record":
                recorded |= ids
            else:
                assert ids <= recorded, f"{set(ids)} reached DeleteSnapshot before its record"
        remaining = {
            s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        }
        stored = {
            s
            for r in audit.records.query(DAY1 - timedelta(days=1), DAY1 + timedelta(days=1))
            for s in r.snapshot_ids
        }
        for action in actions:
            assert set(action.snapshot_ids) - remaining <= stored
        assert len(result.results) + len(result.not_started) == len(actions)


# --- overlapping runs and lapsed leases ----------------------------------------------------

_RUN_CALLS = MUTATING | AUDIT_WRITES | {"CopySnapshot", "DescribeSnapshots"}


def _stamp_with_clock(client, region: str, clock: Clock) -> None:
    """Moto stamps new snapshots and copies with the real time; plans need the run's time."""
    from moto.ec2.models import ec2_backends

    def stamp(parsed, **_kwargs):
        made = parsed.get("Snapshots", []) or ([parsed] if "SnapshotId" in parsed else [])
        for snap in made:
            stored = ec2_backends[ACCOUNT][region].snapshots[snap["SnapshotId"]]
            stored.start_time = clock.now.astimezone(UTC).replace(tzinfo=None)

    for operation in ("CreateSnapshots", "CreateSnapshot", "CopySnapshot"):
        client.meta.events.register(f"after-call.ec2.{operation}", stamp)


def _overlapping_run(w: CopyWorld, run_id: str, dies_after: int | None) -> Executor:
    """A second run with its own clients, killed after its n-th call (None: it finishes)."""
    ec2 = {r: boto3.client("ec2", region_name=r) for r in (REGION, WEST)}
    ddb = boto3.client("dynamodb", region_name=REGION)
    state = {"n": 0, "dead": False}

    def after(model, **_kwargs):
        if dies_after is None or model.name not in _RUN_CALLS:
            return
        state["n"] += 1
        if state["n"] >= dies_after:
            state["dead"] = True
            raise Crash(f"{run_id} killed after call {dies_after}")

    def before(**_kwargs):
        if state["dead"]:
            raise Crash(f"{run_id} is dead")

    for region, client in ec2.items():
        _stamp_with_clock(client, region, w.clock)
    for client in (*ec2.values(), ddb):
        on(client, "after-call", after)
        on(client, "before-call", before)
    return Executor(
        Ec2Snapshots(lambda region: ec2[region], sleep=lambda _s: None),
        AuditLog(ddb, TABLE, clock=w.clock, sleep=lambda _s: None),
        volumes=Ec2Volumes(lambda region: ec2[region], sleep=lambda _s: None),
        run_id=run_id,
        actor="tester",
        clock=w.clock,
        claim_lease=SHORT_LEASE,
    )


#: no time, less than a lease, more than a lease
_pauses = st.sampled_from(
    [timedelta(0), timedelta(seconds=3), SHORT_LEASE + timedelta(seconds=1), 2 * SHORT_LEASE]
)


@settings(
    max_examples=12,  # plus the two pinned interleavings below; each example is a moto world
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    instances=st.integers(1, 3),
    copied=st.integers(0, 3),
    b_enters_after=st.integers(1, 14),
    pause_before_b=_pauses,
    b_dies_after=st.one_of(st.none(), st.integers(1, 14)),
    pause_after_b=_pauses,
)
# The two interleavings that made a recovery point (and a copy) twice, kept in every run:
# B enters between A's look-up and A's lease renewal, once A's lease has lapsed; B is
# killed right after its CreateSnapshots (4th call) or CopySnapshot (5th); B's lease
# lapses before A renews.
@example(
    instances=1,
    copied=0,
    b_enters_after=3,
    pause_before_b=SHORT_LEASE + timedelta(seconds=1),
    b_dies_after=4,
    pause_after_b=SHORT_LEASE + timedelta(seconds=1),
)
@example(
    instances=1,
    copied=1,
    b_enters_after=4,
    pause_before_b=SHORT_LEASE + timedelta(seconds=1),
    b_dies_after=5,
    pause_after_b=SHORT_LEASE + timedelta(seconds=1),
)
def test_overlapping_runs_with_lapsed_leases_never_make_a_recovery_point_twice(
    instances, copied, b_enters_after, pause_before_b, b_dies_after, pause_after_b
):
    """Run A applies a plan of creates and copies with a compressed lease. After A's n-th
    call, time passes and run B applies the same plan, maybe killed anywhere; more time
    passes and A goes on. Whatever the interleaving: never two recovery points for one
    recovery point id, never two copies of one snapshot, and a later run converges."""
    with mock_aws():
        clock = Clock(DAY1)
        w = CopyWorld(
            boto3.client("ec2", region_name=REGION),
            boto3.client("dynamodb", region_name=REGION),
            clock,
            PolicySet((make_policy("nightly", copies=(CopyRule(WEST),)),)),
            west=boto3.client("ec2", region_name=WEST),
        )
        w.audit.ensure_table()
        _stamp_with_clock(w.ec2, REGION, clock)
        _stamp_with_clock(w.west, WEST, clock)
        # The first `copied` instances already have their recovery point: the plan copies
        # those and creates the others.
        copied = min(copied, instances)
        for _ in range(copied):
            w.instance(volumes=1)
        if copied:
            w.executor().apply(w.plan(DAY1))
        for _ in range(instances - copied):
            w.instance(volumes=1)
        plan = w.plan(DAY1)
        assert len(plan.actions) == instances

        a_calls = {"n": 0, "b_ran": False}

        def b_interleaves(model, **_kwargs):
            if a_calls["b_ran"] or model.name not in _RUN_CALLS:
                return
            a_calls["n"] += 1
            if a_calls["n"] < b_enters_after:
                return
            a_calls["b_ran"] = True
            clock.now += pause_before_b
            with contextlib.suppress(Crash):
                _overlapping_run(w, "run-b", b_dies_after).apply(plan)
            clock.now += pause_after_b

        for client in (w.ec2, w.west, w.ddb):
            on(client, "after-call", b_interleaves)
        w.executor(claim_lease=SHORT_LEASE).apply(plan)
        a_calls["b_ran"] = True  # the later runs go undisturbed

        # Two more runs, after every lease: one creates what is left, the next copies it.
        for _ in range(2):
            later = clock.now = clock.now + 3 * SHORT_LEASE
            final = w.executor(claim_lease=SHORT_LEASE).apply(w.plan(later))
            assert final.ok, final.failed

        points = w.recovery_points()
        assert all(len(ids) == 1 for ids in points.values()), points
        assert len(points) == instances
        sources = [tags_of(c)["smartvault:source"] for c in w.copies()]
        assert sorted(sources) == sorted(set(sources)), sources
        assert len(sources) == instances  # the final run copies the new ones too
        replan = w.plan(later)
        assert not [a for a in replan.actions if isinstance(a, CreateAction | CopyAction)]


def test_a_squatter_claiming_to_be_the_copy_does_not_stop_the_real_copy(copy_world):
    """A snapshot in the target region tagged as a copy of our source (CreatedBy and
    smartvault:source) but not carrying the source's recovery point is not the copy: the
    plan copies, and apply must copy rather than take it as "already copied"."""
    w = copy_world
    w.instance(volumes=1)
    w.apply(DAY1)  # the recovery point to copy
    [source] = w.snapshots()
    volume = w.west.create_volume(AvailabilityZone=f"{WEST}a", Size=1)["VolumeId"]
    squatter = w.west.create_snapshot(
        VolumeId=volume,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": [
                    {"Key": "CreatedBy", "Value": "SmartVault"},
                    {"Key": "smartvault:policy", "Value": "nightly"},
                    {"Key": "smartvault:source", "Value": f"{REGION}/{source['SnapshotId']}"},
                ],
            }
        ],
    )["SnapshotId"]
    plan = w.plan(DAY1)
    copy = copy_action(plan)

    result = w.executor().apply(plan)

    assert [r.outcome for r in result.results] == ["succeeded"]
    assert squatter not in result.results[0].snapshot_ids
    real = [c for c in w.copies() if c["SnapshotId"] != squatter]
    assert len(real) == 1
    assert tags_of(real[0])["smartvault:recovery-point"] == copy.recovery_point
