"""Plan then apply against moto: malformed managed snapshots are neither planned nor touched."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from smartvault.aws.audit import AuditLog
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from tests.apply.test_run import DAY1
from tests.apply.test_run import REGION
from tests.apply.test_run import TABLE
from tests.apply.test_run import World
from tests.apply.test_run import stamp_snapshots_with
from tests.factories import Clock
from tests.factories import make_policy
from tests.moto_helpers import backdate
from tests.moto_helpers import tags_of


@pytest.fixture
def world(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    clock = Clock(DAY1)
    AuditLog(ddb, TABLE, clock=clock, sleep=lambda _s: None).ensure_table()
    stamp_snapshots_with(ec2, clock)
    policies = PolicySet((make_policy("nightly", retention=Retention(keep_last=2)),))
    return World(ec2, ddb, clock, policies=policies)


def test_malformed_snapshots_are_warned_about_and_apply_refuses_nothing(world):
    instance = world.instance(volumes=1)
    for day in range(3):  # three real recovery points, one a day
        assert world.apply(DAY1 + timedelta(days=day)).ok
    described = world.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]
    volume = described["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    today = DAY1 + timedelta(days=3)
    real = next(tags_of(s) for s in world.snapshots())
    forged = {
        "no recovery point": {k: v for k, v in real.items() if k != "smartvault:recovery-point"},
        "unparsable": {**real, "smartvault:recovery-point": "nightly/oops"},
        "old, no recovery point": {
            k: v for k, v in real.items() if k != "smartvault:recovery-point"
        },
    }
    made = {}
    world.clock.now = today
    for name, tags in forged.items():
        made[name] = world.ec2.create_snapshot(
            VolumeId=volume,
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )["SnapshotId"]
    backdate(REGION, made["old, no recovery point"], DAY1 - timedelta(days=30))
    before = {s["SnapshotId"]: tags_of(s) for s in world.snapshots()}

    plan = world.plan(today)

    bad = set(made.values())
    touched = {s for a in plan.actions if not isinstance(a, CreateAction) for s in a.snapshot_ids}
    assert not touched & bad
    assert [a.resource_id for a in plan.actions if isinstance(a, CreateAction)] == [instance]
    assert len([a for a in plan.actions if isinstance(a, DeleteAction)]) == 1  # the oldest real
    warned = " ".join(w.message for w in plan.warnings)
    assert all(s in warned for s in bad)

    result = world.executor().apply(plan)

    assert result.ok
    assert {r.outcome for r in result.results} == {"succeeded"}
    assert not [r for r in result.results if "not SmartVault's" in r.reason]
    after = {s["SnapshotId"]: tags_of(s) for s in world.snapshots()}
    assert {s: after[s] for s in bad} == {s: before[s] for s in bad}
    # and the next plan still leaves them alone and still warns
    again = world.plan(today)
    assert not {s for a in again.actions for s in getattr(a, "snapshot_ids", ())} & bad
    assert not [a for a in again.actions if isinstance(a, CreateAction)]
    assert all(s in " ".join(w.message for w in again.warnings) for s in bad)


def test_a_squatter_carrying_todays_id_neither_suppresses_the_backup_nor_passes_for_it(world):
    """A snapshot of another volume tagged with the instance's recovery point id for today:
    the plan creates the backup, and apply must make it rather than take the squatter's
    snapshot as "already exists"."""
    instance = world.instance(volumes=1)
    other = world.instance(volumes=1)
    today = DAY1 + timedelta(days=1)
    world.clock.now = today
    rp = f"nightly/{instance}/{today:%Y%m%dT0300Z}"
    described = world.ec2.describe_instances(InstanceIds=[other])["Reservations"][0]
    foreign_volume = described["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    squatter = world.ec2.create_snapshot(
        VolumeId=foreign_volume,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": [
                    {"Key": "CreatedBy", "Value": "SmartVault"},
                    {"Key": "smartvault:policy", "Value": "nightly"},
                    {"Key": "smartvault:recovery-point", "Value": rp},
                    {"Key": "smartvault:slot", "Value": f"{today:%Y-%m-%dT03:00:00Z}"},
                    {"Key": "InstanceId", "Value": other},
                ],
            }
        ],
    )["SnapshotId"]

    plan = world.plan(today)
    creates = [a for a in plan.actions if isinstance(a, CreateAction)]
    result = world.executor().apply(plan)

    assert sorted(a.resource_id for a in creates) == sorted([instance, other])
    mine = [r for r in result.results if r.action.resource_id == instance]
    assert [r.outcome for r in mine] == ["succeeded"]
    assert squatter not in mine[0].snapshot_ids
    made = [s for s in world.snapshots() if tags_of(s).get("InstanceId") == instance]
    assert len(made) == 1
    assert tags_of(made[0])["smartvault:recovery-point"] == rp
