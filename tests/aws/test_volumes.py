"""The volume calls of restores and restore tests: against moto, and against botocore's
Stubber where moto differs from AWS (a new volume is ``creating`` first in AWS, and
moto answers no RestoreSnapshotTier duration worth asserting on)."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from smartvault.aws.volumes import Ec2Volumes
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown
from tests.factories import REGION
from tests.moto_helpers import launch
from tests.moto_helpers import tags_of


def _volumes(client) -> Ec2Volumes:
    return Ec2Volumes(lambda _r: client, sleep=lambda _s: None)


def _snapshot(ec2) -> str:
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=3, VolumeType="gp3")
    return ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]


def test_a_volume_is_made_from_a_snapshot_with_its_type_performance_and_tags(aws) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    snapshot_id = _snapshot(ec2)
    made = _volumes(ec2).create_volume(
        REGION,
        snapshot_id,
        zone=f"{REGION}b",
        volume_type="io2",
        iops=4000,
        tags={"Name": "db-data", "smartvault:restored-from": "p/i-1/20261201T0300Z"},
        client_token="run-1/" + snapshot_id,
    )
    raw = ec2.describe_volumes(VolumeIds=[made.volume_id])["Volumes"][0]
    assert (raw["SnapshotId"], raw["AvailabilityZone"], raw["VolumeType"], raw["Iops"]) == (
        snapshot_id,
        f"{REGION}b",
        "io2",
        4000,
    )
    assert raw["Size"] == 3
    assert tags_of(raw) == {"Name": "db-data", "smartvault:restored-from": "p/i-1/20261201T0300Z"}
    assert made.snapshot_id == snapshot_id


def test_volumes_are_found_by_tag_and_by_the_instance_they_are_attached_to(aws) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    [instance_id] = launch(ec2, volumes=3)
    calls = _volumes(ec2)
    attached = calls.volumes(REGION, "attachment.instance-id", [instance_id])
    assert sorted(a.device for v in attached for a in v.attachments) == [
        "/dev/sda1",
        "/dev/sdf",
        "/dev/sdg",
    ]
    instance = calls.instance(REGION, instance_id)
    assert instance is not None
    assert instance.instance_id == instance_id
    assert calls.instance(REGION, "i-0000000000000dead") is None


def test_attach_and_delete(aws) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    [instance_id] = launch(ec2)
    zone = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "Placement"
    ]["AvailabilityZone"]
    calls = _volumes(ec2)
    made = calls.create_volume(
        REGION,
        _snapshot(ec2),
        zone=zone,
        volume_type="gp3",
        tags={"smartvault:verify": "x"},
        client_token="t",
    )
    calls.attach(REGION, made.volume_id, instance_id, "/dev/sdh")
    [found] = calls.volumes(REGION, "tag:smartvault:verify", ["x"])
    assert [(a.instance_id, a.device) for a in found.attachments] == [(instance_id, "/dev/sdh")]
    ec2.detach_volume(VolumeId=made.volume_id, InstanceId=instance_id)
    calls.delete_volume(REGION, made.volume_id)
    assert calls.volumes(REGION, "tag:smartvault:verify", ["x"]) == []


def test_the_zones_are_the_regions_available_ones_sorted(aws) -> None:
    zones = _volumes(boto3.client("ec2", region_name=REGION)).zones(REGION)
    assert zones[0] == f"{REGION}a"
    assert list(zones) == sorted(zones)
    assert all(z.startswith(REGION) for z in zones)


def test_verified_is_the_one_tag_added(aws) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    snapshot_id = _snapshot(ec2)
    _volumes(ec2).mark_verified(REGION, [snapshot_id], "2026-12-02T03:00:00Z")
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert tags_of(snapshot) == {"smartvault:verified": "2026-12-02T03:00:00Z"}


# --- where AWS differs from moto -----------------------------------------------------


def _stubbed():
    client = boto3.client(
        "ec2", region_name=REGION, config=Config(retries={"total_max_attempts": 1})
    )
    return client, Stubber(client)


def test_a_create_whose_answer_was_lost_is_sent_again_with_the_same_token() -> None:
    # CreateVolume takes an idempotency token: the repeat returns the one volume.
    client, stub = _stubbed()
    request = {
        "SnapshotId": "snap-1",
        "AvailabilityZone": f"{REGION}a",
        "VolumeType": "gp3",
        "Throughput": 250,
        "Iops": 6000,
        "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": "k", "Value": "v"}]}],
        "ClientToken": "run-1/snap-1",
    }
    stub.add_client_error("create_volume", "InternalError", http_status_code=500)
    stub.add_response(
        "create_volume",
        {"VolumeId": "vol-new", "State": "creating", "SnapshotId": "snap-1", "Size": 8},
        request,
    )
    with stub:
        made = _volumes(client).create_volume(
            REGION,
            "snap-1",
            zone=f"{REGION}a",
            volume_type="gp3",
            iops=6000,
            throughput=250,
            tags={"k": "v"},
            client_token="run-1/snap-1",
        )
    stub.assert_no_pending_responses()
    assert (made.volume_id, made.state) == ("vol-new", "creating")


def test_an_attach_whose_answer_was_lost_is_not_sent_again() -> None:
    client, stub = _stubbed()
    stub.add_client_error("attach_volume", "InternalError", http_status_code=500)
    with stub, pytest.raises(Ec2OutcomeUnknown):
        _volumes(client).attach(REGION, "vol-1", "i-1", "/dev/sdf")
    stub.assert_no_pending_responses()


def test_an_archive_restore_says_how_many_hours_aws_gives() -> None:
    client, stub = _stubbed()
    stub.add_response(
        "restore_snapshot_tier",
        {"SnapshotId": "snap-1", "RestoreDuration": 72, "IsPermanentRestore": False},
        {"SnapshotId": "snap-1", "TemporaryRestoreDays": 3},
    )
    with stub:
        assert _volumes(client).restore_from_archive(REGION, "snap-1", 3) == 72


def test_a_refused_call_names_what_it_could_not_do() -> None:
    client, stub = _stubbed()
    stub.add_client_error("delete_volume", "VolumeInUse", "vol-1 is attached", 400)
    with stub, pytest.raises(Ec2CallFailed) as caught:
        _volumes(client).delete_volume(REGION, "vol-1")
    assert caught.value.code == "VolumeInUse"
    assert "delete volume vol-1" in str(caught.value)
