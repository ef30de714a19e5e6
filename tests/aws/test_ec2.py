"""The snapshot calls of apply, against botocore's Stubber.

The Stubber shows the exact requests sent, and how many: moto cannot show that a create
whose answer was lost is never sent again, and moto gives a copy its source's VolumeId
where AWS gives an arbitrary one.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from smartvault.aws.ec2 import Ec2Snapshots
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown
from smartvault.errors import Ec2Throttled
from tests.factories import REGION

WEST = "us-west-2"


def stubbed(region: str = REGION):
    # As AwsSession.ec2_for_changes: one attempt per request, SmartVault decides retries.
    client = boto3.client(
        "ec2", region_name=region, config=Config(retries={"total_max_attempts": 1})
    )
    return client, Stubber(client)


def test_a_copy_is_asked_for_once_with_every_tag_and_the_key():
    client, stub = stubbed(WEST)
    tags = {"CreatedBy": "SmartVault", "smartvault:device": "/dev/sdf"}
    stub.add_response(
        "copy_snapshot",
        {"SnapshotId": "snap-copy"},
        {
            "SourceRegion": REGION,
            "SourceSnapshotId": "snap-src",
            "Description": "SmartVault copy",
            "TagSpecifications": [
                {
                    "ResourceType": "snapshot",
                    "Tags": [
                        {"Key": "CreatedBy", "Value": "SmartVault"},
                        {"Key": "smartvault:device", "Value": "/dev/sdf"},
                    ],
                }
            ],
            "Encrypted": True,
            "KmsKeyId": "alias/backup",
        },
    )
    with stub:
        copy_id = Ec2Snapshots(lambda _r: client, sleep=lambda _s: None).copy_snapshot(
            WEST,
            REGION,
            "snap-src",
            description="SmartVault copy",
            tags=tags,
            kms_key_id="alias/backup",
        )
    assert copy_id == "snap-copy"
    stub.assert_no_pending_responses()


def test_a_create_whose_answer_is_lost_is_never_sent_again():
    client, stub = stubbed()
    stub.add_client_error("create_snapshot", "InternalError", http_status_code=500)
    with stub, pytest.raises(Ec2OutcomeUnknown, match="InternalError"):
        Ec2Snapshots(lambda _r: client, sleep=lambda _s: None).create_snapshot(
            REGION, "vol-1", description="d", tags={"CreatedBy": "SmartVault"}
        )
    stub.assert_no_pending_responses()  # one answer queued, one request sent


def test_a_throttled_create_is_sent_again_and_then_given_up_on():
    client, stub = stubbed()
    for _ in range(5):
        stub.add_client_error("create_snapshot", "RequestLimitExceeded", http_status_code=503)
    waits: list[float] = []
    with stub, pytest.raises(Ec2Throttled, match="after 5 attempts"):
        Ec2Snapshots(lambda _r: client, sleep=waits.append).create_snapshot(
            REGION, "vol-1", description="d", tags={}
        )
    assert len(waits) == 4  # between the five attempts, never after the last


def test_a_refused_delete_says_what_and_carries_aws_code():
    client, stub = stubbed()
    stub.add_client_error(
        "delete_snapshot", "InvalidSnapshot.InUse", "snap-1 is in use by ami-1", 400
    )
    with stub, pytest.raises(Ec2CallFailed) as info:
        Ec2Snapshots(lambda _r: client, sleep=lambda _s: None).delete(REGION, "snap-1")
    assert info.value.code == "InvalidSnapshot.InUse"
    assert info.value.detail == "snap-1 is in use by ami-1"
    assert str(info.value).startswith("could not delete snap-1: InvalidSnapshot.InUse")
