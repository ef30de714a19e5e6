"""The hold calls against moto: only a point's own managed snapshots are found and tagged."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from smartvault.aws.holds import Ec2Holds
from smartvault.errors import Ec2CallFailed
from tests.factories import REGION
from tests.moto_helpers import tags_of

RP = "nightly/vol-PLACEHOLDER/20261120T0300Z"


def _snapshot(ec2: Any, volume_id: str, tags: dict[str, str]) -> str:
    return str(
        ec2.create_snapshot(
            VolumeId=volume_id,
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )["SnapshotId"]
    )


def test_only_the_managed_snapshots_really_part_of_the_point_are_found_and_tagged(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    other = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    rp = RP.replace("vol-PLACEHOLDER", volume)
    own = {
        "CreatedBy": "SmartVault",
        "smartvault:policy": "nightly",
        "smartvault:recovery-point": rp,
        "smartvault:slot": "2026-11-20T03:00:00Z",
    }
    good = _snapshot(ec2, volume, own)
    _snapshot(ec2, volume, {k: v for k, v in own.items() if k != "CreatedBy"})  # not managed
    _snapshot(ec2, other, own)  # malformed: a snapshot of another volume
    holds = Ec2Holds(lambda _region: ec2, sleep=lambda _s: None)

    found = holds.point_snapshots(REGION, rp, "volume")
    holds.hold(REGION, [s.snapshot_id for s in found], "INC-9", "arn:aws:iam::1:user/ana")
    after_hold = {s["SnapshotId"]: tags_of(s) for s in ec2.describe_snapshots()["Snapshots"]}
    holds.release(REGION, [good])
    after_release = tags_of(ec2.describe_snapshots(SnapshotIds=[good])["Snapshots"][0])

    assert [s.snapshot_id for s in found] == [good]
    held = {sid for sid, tags in after_hold.items() if "smartvault:hold" in tags}
    assert held == {good}
    assert after_hold[good]["smartvault:hold-by"] == "arn:aws:iam::1:user/ana"
    assert "smartvault:hold" not in after_release
    assert "smartvault:hold-by" not in after_release
    assert after_release["smartvault:recovery-point"] == rp


def test_a_refused_tag_call_is_an_ec2_call_failed_naming_the_snapshots():
    client = boto3.client(
        "ec2", region_name=REGION, config=Config(retries={"total_max_attempts": 1})
    )
    stub = Stubber(client)
    stub.add_client_error("create_tags", "UnauthorizedOperation", "not allowed")
    holds = Ec2Holds(lambda _region: client, sleep=lambda _s: None)
    with stub, pytest.raises(Ec2CallFailed) as caught:
        holds.hold(REGION, ["snap-1"], "x", "me")
    error = caught.value
    assert error.code == "UnauthorizedOperation"
    assert "hold snap-1 in us-east-1 (CreateTags)" in str(error)
