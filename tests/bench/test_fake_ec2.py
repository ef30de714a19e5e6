"""bench/fake_ec2.py: the fake EC2 endpoint the apply and read benchmarks run against.

Served on 127.0.0.1 from this process (a thread), except one test that starts it as the
benchmarks do, in its own process. The bucket test drives the server's clock by hand, so
nothing sleeps and nothing asserts on timing.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from smartvault.aws.errors import is_server_error
from smartvault.aws.errors import is_throttling

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import fake_ec2

SPEC: dict[str, Any] = {
    "now": "2026-12-02T12:00:00+00:00",
    "policy": "nightly",
    "regions": {
        "us-east-1": {"instances": 4, "volumes_per_instance": 2, "points": 3, "unmanaged": 5},
        "eu-west-1": {"instances": 1, "points": 2, "amis": 1},
    },
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served() -> Iterator[tuple[fake_ec2.Account, str, Clock]]:
    clock = Clock()
    spec = {**SPEC, "buckets": {"mutating": [2, 1.0]}}
    account = fake_ec2.Account(spec, clock=clock)
    server = fake_ec2.make_server(account)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield account, f"http://{host}:{port}", clock
    server.shutdown()
    server.server_close()


def client(url: str, region: str = "us-east-1", service: str = "ec2") -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_every_snapshot_comes_exactly_once_over_the_pages(served):
    account, url, _ = served
    ec2 = client(url)
    pages = list(
        ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], PaginationConfig={"PageSize": 5}
        )
    )
    ids = [s["SnapshotId"] for page in pages for s in page["Snapshots"]]
    assert len(pages) == 6  # 4 instances x 2 volumes x 3 points + 5 unmanaged = 29
    assert sorted(ids) == sorted(account.regions["us-east-1"].snapshots)
    assert len(set(ids)) == 29
    # No MaxResults: every snapshot in one page, as EC2 answers.
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 29
    with pytest.raises(ClientError) as caught:
        ec2.describe_snapshots(OwnerIds=["self"], MaxResults=4)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_instances_page_by_reservation_and_filter_by_tag(served):
    _, url, _ = served
    ec2 = client(url)
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag:backup", "Values": ["true"]}],
        PaginationConfig={"PageSize": 5},
    )
    instances = [i for p in pages for r in p["Reservations"] for i in r["Instances"]]
    assert len(instances) == 4
    assert {d["DeviceName"] for d in instances[0]["BlockDeviceMappings"]} == {
        "/dev/xvda",
        "/dev/sdf",
    }
    none = ec2.describe_instances(Filters=[{"Name": "tag:backup", "Values": ["false"]}])
    assert none["Reservations"] == []


def test_tag_filters_take_wildcards_and_escaped_wildcards(served):
    account, url, _ = served
    ec2 = client(url)
    region = account.regions["us-east-1"]
    some = next(iter(region.snapshots))
    region.snapshots[some].retag({"note": "a*b"})
    other = list(region.snapshots)[1]
    region.snapshots[other].retag({"note": "axxb"})

    def ids(*values: str) -> set[str]:
        reply = ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:note", "Values": list(values)}]
        )
        return {s["SnapshotId"] for s in reply["Snapshots"]}

    assert ids("a*b") == {some, other}
    assert ids("a\\*b") == {some}
    assert ids("nothing", "axxb") == {other}  # values are OR'd
    managed = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:CreatedBy", "Values": ["SmartVault"]}]
    )["Snapshots"]
    assert len(managed) == 24
    keyed = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["note"]}]
    )
    assert {s["SnapshotId"] for s in keyed["Snapshots"]} == {some, other}


def test_each_region_has_its_own_account(served):
    _account, url, _ = served
    east, west = client(url), client(url, "eu-west-1")
    assert len(east.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 29
    west_snapshots = west.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert len(west_snapshots) == 2
    (image,) = west.describe_images(Owners=["self"])["Images"]
    used = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    with pytest.raises(ClientError) as caught:
        east.delete_snapshot(SnapshotId=used)
    assert caught.value.response["Error"]["Code"] == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as caught:
        west.delete_snapshot(SnapshotId=used)
    assert caught.value.response["Error"]["Code"] == "InvalidSnapshot.InUse"
    assert client(url, service="sts").get_caller_identity()["Account"] == "123456789012"


def test_the_bucket_refuses_past_its_burst_and_admits_after_refill(served):
    account, url, clock = served
    ec2 = client(url)
    first, second, third = list(account.regions["us-east-1"].snapshots)[:3]
    ec2.delete_snapshot(SnapshotId=first)
    ec2.delete_snapshot(SnapshotId=second)
    with pytest.raises(ClientError) as caught:
        ec2.delete_snapshot(SnapshotId=third)
    assert is_throttling(caught.value)
    assert is_server_error(caught.value)
    assert caught.value.response["Error"]["Code"] == "RequestLimitExceeded"
    client(url, "eu-west-1").describe_snapshots(OwnerIds=["self"])  # other buckets unaffected
    clock.now += 1.0  # one token at 1/s
    ec2.delete_snapshot(SnapshotId=third)
    stats = account.stats()
    assert stats["throttled"] == {"DeleteSnapshot": 1}
    assert stats["calls"]["DeleteSnapshot"] == 4
    assert stats["deleted"]["us-east-1"] == sorted([first, second, third])


def test_unknown_actions_are_refused_loudly(served):
    _, url, _ = served
    with pytest.raises(ClientError) as caught:
        client(url).describe_key_pairs()
    assert caught.value.response["Error"]["Code"] == "InvalidAction"


def test_creates_tag_and_double_deletes_show_in_the_stats():
    # As the benchmarks start it: its own process, stats over HTTP.
    with fake_ec2.FakeEc2.start(SPEC, throttle=False) as fake:
        ec2 = client(fake.url)
        (reservation, *_) = ec2.describe_instances()["Reservations"]
        instance = reservation["Instances"][0]["InstanceId"]
        made = ec2.create_snapshots(
            InstanceSpecification={"InstanceId": instance, "ExcludeBootVolume": True},
            TagSpecifications=[
                {"ResourceType": "snapshot", "Tags": [{"Key": "CreatedBy", "Value": "SmartVault"}]}
            ],
        )["Snapshots"]
        assert len(made) == 1
        assert made[0]["Tags"] == [{"Key": "CreatedBy", "Value": "SmartVault"}]
        sid = made[0]["SnapshotId"]
        ec2.create_tags(Resources=[sid], Tags=[{"Key": "x", "Value": "y"}])
        (seen,) = ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"]
        assert {t["Key"]: t["Value"] for t in seen["Tags"]} == {"CreatedBy": "SmartVault", "x": "y"}
        ec2.delete_snapshot(SnapshotId=sid)
        with pytest.raises(ClientError):
            ec2.delete_snapshot(SnapshotId=sid)
        stats = fake.stats()
        assert stats["deleted_twice"] == [sid]
        assert stats["created"] == {"us-east-1": [sid]}
        fake.reset_stats()
        assert fake.stats()["calls"] == {}


def test_a_snapshot_parses_into_the_keys_moto_gives(served, monkeypatch):
    _, url, _ = served
    (ours,) = client(url, "eu-west-1").describe_snapshots(
        OwnerIds=["self"], MaxResults=5, Filters=[{"Name": "tag-key", "Values": ["CreatedBy"]}]
    )["Snapshots"][:1]
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
        ec2.create_snapshot(
            VolumeId=volume,
            Description="SmartVault",
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "a", "Value": "b"}]}],
        )
        (theirs,) = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    # moto adds a few keys of its own (KmsKeyId, ...); every key we give, moto gives too.
    assert set(ours) <= set(theirs) | {"StorageTier"}
    assert {"SnapshotId", "VolumeId", "State", "StartTime", "Tags", "OwnerId"} <= set(ours)
    assert type(ours["StartTime"]) is type(theirs["StartTime"])
