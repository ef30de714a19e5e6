"""`smartvault restore` end to end, against moto's simulated account.

The combinatorics (choosing, the volume specs, every refusal) are unit tests of
smartvault.core.restore; waiting and archived snapshots, where moto differs from AWS,
are step tests on the in-memory EC2 (tests/apply/test_restore.py). Here: a real backup
restored after its data volumes are gone, from the original and from a copy, the
refusals as a person sees them, and the dry run.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from smartvault.cli import cli
from tests.cli import one_error_line
from tests.cli import run
from tests.moto_helpers import ACCOUNT
from tests.moto_helpers import managed_snapshots
from tests.moto_helpers import tags_of

POLICY_WITH_COPY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
    copies:
      - region: us-west-2
"""

DATA = {
    # device: (size, type, iops, throughput, tags)
    "/dev/sdf": (20, "gp3", 4000, 250, {"Name": "db-data", "Team": "payments"}),
    "/dev/sdg": (125, "st1", None, None, {"Name": "db-logs", "aws:cloudformation:x": "y"}),
}


@pytest.fixture
def fleet(aws, tmp_path, monkeypatch) -> dict[str, Any]:
    """An instance with a root volume and two data volumes of other sizes and types,
    backed up by `smartvault apply --yes` (its policy copies to us-west-2 on the next
    apply), then its data volumes deleted; a stopped instance to restore onto. The
    policy is ./policies, as restore reads it for the copy regions."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "nightly.yaml").write_text(POLICY_WITH_COPY)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    source = _instance(ec2, {"backup": "true", "Name": "db"})
    zone = ec2.describe_instances(InstanceIds=[source])["Reservations"][0]["Instances"][0][
        "Placement"
    ]["AvailabilityZone"]
    data: dict[str, str] = {}
    for device, (size, kind, iops, throughput, tags) in DATA.items():
        extra = {k: v for k, v in (("Iops", iops), ("Throughput", throughput)) if v}
        volume = ec2.create_volume(
            AvailabilityZone=zone,
            Size=size,
            VolumeType=kind,
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
            **extra,
        )
        ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=source, Device=device)
        data[device] = volume["VolumeId"]
    runner = CliRunner()
    run(runner, "audit", "init")
    assert run(runner, "apply", "--yes").exit_code == 0  # writes smartvault:volumes
    for volume_id in data.values():
        ec2.detach_volume(VolumeId=volume_id, InstanceId=source)
        ec2.delete_volume(VolumeId=volume_id)
    target = _instance(ec2, {"Name": "rescue"}, zone=zone)
    ec2.stop_instances(InstanceIds=[target])
    (snap,) = {tags_of(s)["smartvault:recovery-point"] for s in managed_snapshots(ec2)}
    return {"ec2": ec2, "source": source, "target": target, "zone": zone, "rp": snap}


def _instance(ec2: Any, tags: dict[str, str], zone: str | None = None) -> str:
    placement = {"Placement": {"AvailabilityZone": zone}} if zone else {}
    response = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
        **placement,
    )
    return str(response["Instances"][0]["InstanceId"])


def _new_volumes(ec2: Any, rp: str) -> list[dict[str, Any]]:
    return ec2.describe_volumes(Filters=[{"Name": "tag:smartvault:restored-from", "Values": [rp]}])[
        "Volumes"
    ]


def _by_device(volumes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["Attachments"][0]["Device"]: v for v in volumes if v["Attachments"]}


def _assert_like_the_originals(volumes: list[dict[str, Any]], target: str, rp: str) -> None:
    attached = _by_device(volumes)
    assert sorted(attached) == ["/dev/sdf", "/dev/sdg"]
    for device, (size, kind, iops, throughput, tags) in DATA.items():
        volume = attached[device]
        assert volume["Attachments"][0]["InstanceId"] == target
        assert (volume["Size"], volume["VolumeType"]) == (size, kind)
        if iops:
            assert (volume["Iops"], volume["Throughput"]) == (iops, throughput)
        expected = {k: v for k, v in tags.items() if not k.startswith("aws:")}
        assert tags_of(volume) == {**expected, "smartvault:restored-from": rp}
    root = [v for v in volumes if not v["Attachments"]]
    assert [v["Size"] for v in root] == [8]  # made, never attached


def test_a_dry_run_then_a_restore_to_a_stopped_instance_rebuilds_the_gone_volumes(runner, fleet):
    """The dry run says everything and changes nothing (no volume, no audit record); the
    restore with --yes makes volumes like the originals, attaches them, and audits it."""
    ec2, rp, target = fleet["ec2"], fleet["rp"], fleet["target"]
    before = len(ec2.describe_volumes()["Volumes"])

    dry = run(runner, "restore", "--instance", fleet["source"], "--attach-to", target)
    no_records = json.loads(run(runner, "audit", "list", "--format", "json").output)
    volumes_after_dry_run = len(ec2.describe_volumes()["Volumes"])
    result = run(runner, "restore", "--instance", fleet["source"], "--attach-to", target, "--yes")

    assert dry.exit_code == 0, dry.output
    out = dry.output
    assert "20 GiB gp3, 4000 IOPS, 250 MiB/s, not encrypted" in out
    assert "125 GiB st1, not encrypted" in out
    assert f"attach to {target} at /dev/sdf" in out
    assert f"attach to {target} at /dev/sdg" in out
    assert "settings: recorded at backup (smartvault:volumes)" in out
    assert "root volume (/dev/sda1): made, never attached" in out
    assert "Nothing was done: run again with --yes" in out
    assert volumes_after_dry_run == before
    assert [r for r in no_records if r["action"] == "restore"] == []
    assert result.exit_code == 0, result.output
    volumes = _new_volumes(ec2, rp)
    _assert_like_the_originals(volumes, target, rp)
    assert "root volume, not attached" in result.output
    records = json.loads(run(runner, "audit", "list", "--format", "json").output)
    (record,) = [r for r in records if r["action"] == "restore"]
    assert record["outcome"] == "succeeded"
    assert record["recovery_point"] == rp
    assert record["actor"].startswith("cli:")
    made = json.loads(record["details"]["volumes"])
    assert sorted(m["volume_id"] for m in made) == sorted(v["VolumeId"] for v in volumes)
    assert sorted(m["device"] or "" for m in made) == ["", "/dev/sdf", "/dev/sdg"]
    assert json.loads(record["details"]["planned"])  # the plan, written before creating


def test_restore_from_a_copy_takes_the_devices_from_the_copies_own_tags(runner, fleet):
    """moto keeps the source VolumeId on a cross-region copy; AWS gives it an arbitrary
    one. The test gives each copy a VolumeId that names nothing, so only the copy's
    ``smartvault:device`` can say where its volume goes."""
    from moto.ec2.models import ec2_backends

    assert run(runner, "apply", "--yes").exit_code == 0  # the copies
    west = boto3.client("ec2", region_name="us-west-2")
    copies = managed_snapshots(west)
    assert len(copies) == 3
    backend = ec2_backends[ACCOUNT]["us-west-2"]
    for index, snapshot in enumerate(copies):
        model = backend.snapshots[snapshot["SnapshotId"]]
        model.volume = copy.copy(model.volume)
        model.volume.id = f"vol-{index:017x}"
    zone = west.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    target = _instance(west, {"Name": "rescue-west"}, zone=zone)
    west.stop_instances(InstanceIds=[target])

    listed = run(runner, "restore", "--instance", fleet["source"], "--list")
    result = run(
        runner,
        "restore",
        "--recovery-point",
        fleet["rp"],
        "--region",
        "us-west-2",
        "--attach-to",
        target,
        "--yes",
    )

    assert "us-west-2  copy of us-east-1/snap-" in listed.output, listed.output
    assert "Searched us-east-1, us-west-2" in listed.output
    assert result.exit_code == 0, result.output
    _assert_like_the_originals(_new_volumes(west, fleet["rp"]), target, fleet["rp"])


def test_each_refusal_is_one_line_exit_1_and_creates_nothing(runner, fleet):
    ec2, source, target, zone = fleet["ec2"], fleet["source"], fleet["target"], fleet["zone"]
    running = _instance(ec2, {"Name": "busy"}, zone=zone)
    busy = _instance(ec2, {"Name": "busy-stopped"}, zone=zone)
    taken = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    ec2.attach_volume(VolumeId=taken, InstanceId=busy, Device="/dev/xvdg")
    ec2.stop_instances(InstanceIds=[busy])
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    other_zone = next(z for z in zones if z != zone)
    unknown = "nightly/i-0000000000000000a/20260101T0300Z"
    cases = [
        (["--recovery-point", unknown], f"no recovery point {unknown} in us-east-1, us-west-2"),
        (["--recovery-point", fleet["rp"], "--instance", running], f"is of {source}, not"),
        (["--instance", source, "--az", "us-east-1z"], "zone us-east-1z is not an available"),
        (["--instance", source, "--attach-to", "i-0123456789abcdef0"], "is not in us-east-1"),
        (["--instance", source, "--attach-to", running], f"instance {running} is running"),
        (["--instance", source, "--attach-to", busy], f"device /dev/sdg is taken on {busy}"),
        (["--instance", source, "--attach-to", target, "--az", other_zone], "attaches only in"),
        (["--instance", source, "--before", "2000-01-01T00:00:00Z"], "no completed recovery"),
    ]
    before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    for args, message in cases:
        result = run(runner, "restore", *args, "--yes")

        assert result.exit_code == 1, (args, result.output)
        line = one_error_line(result)
        assert line.startswith("Error: "), (args, line)
        assert message in line, (args, line)
    assert {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]} == before
    records = json.loads(run(runner, "audit", "list", "--format", "json").output)
    assert [r for r in records if r["action"] == "restore"] == []


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--instance", "i-1", "--volume", "vol-1"],
        ["--recovery-point", "a/i-1/20260101T0300Z", "--list"],
        ["--instance", "i-1", "--list", "--yes"],
        ["--recovery-point", "a/i-1/20260101T0300Z", "--before", "2026-01-01"],
    ],
    ids=["neither", "instance-and-volume", "list-with-point", "list-with-yes", "before-with-point"],
)
def test_wrong_usage_exits_2_before_any_aws_call(runner, args):
    result = runner.invoke(cli, ["restore", *args])

    assert result.exit_code == 2, result.output


def test_an_archived_point_is_brought_back_first_and_nothing_is_created(runner, fleet):
    """moto finishes a tier restore at once, so this says only what the command does with
    what AWS answers (the days and the one call per snapshot: tests/apply/test_restore.py)."""
    ec2 = fleet["ec2"]
    archived = sorted(s["SnapshotId"] for s in managed_snapshots(ec2))[:2]
    for snapshot_id in archived:
        ec2.modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive")
    before = len(ec2.describe_volumes()["Volumes"])
    args = ["restore", "--recovery-point", fleet["rp"], "--attach-to", fleet["target"]]

    dry = run(runner, *args)
    result = run(runner, *args, "--restore-days", "5", "--yes")

    assert dry.exit_code == 0, dry.output
    assert "2 snapshot(s)" in dry.output
    assert "Nothing was done" in dry.output
    assert result.exit_code == 0, result.output
    for snapshot_id in archived:
        assert (
            f"{snapshot_id}: restoring from the archive tier for 5 days; AWS says" in result.output
        )
    assert "No volume was made yet" in result.output
    assert f"smartvault restore --recovery-point {fleet['rp']} --region us-east-1" in result.output
    assert len(ec2.describe_volumes()["Volumes"]) == before
