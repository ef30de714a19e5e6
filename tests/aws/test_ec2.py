"""The snapshot calls of apply, against botocore's Stubber.

The Stubber shows the exact requests sent, and how many: moto cannot show that a create
whose answer was lost is never sent again, and moto gives a copy its source's VolumeId
where AWS gives an arbitrary one.
"""

from __future__ import annotations

import random

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from smartvault.aws.calls import MAX_ATTEMPTS
from smartvault.aws.calls import THROTTLED_WAIT_MAX
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


class LongestWaits(random.Random):
    """The backoff's longest draw every time: 1, 2, 4, 8, 16, then 20 s."""

    def uniform(self, a: float, b: float) -> float:
        return b


# EC2's throttling through the Stubber: moto never throttles.


def test_a_throttled_create_is_sent_again_until_the_throttling_budget_is_spent():
    client, stub = stubbed()
    # 1 + 2 + 4 + 8 + 16 = 31 s, then 20 s a wait: 14 more reach THROTTLED_WAIT_MAX (300 s).
    attempts = 20
    for _ in range(attempts):
        stub.add_client_error("create_snapshot", "RequestLimitExceeded", http_status_code=503)
    waits: list[float] = []
    calls = Ec2Snapshots(lambda _r: client, sleep=waits.append, rng=LongestWaits())
    with stub, pytest.raises(Ec2Throttled, match="through 20 attempts and 311 s of backoff"):
        calls.create_snapshot(REGION, "vol-1", description="d", tags={})
    assert len(waits) == attempts - 1  # between the attempts, never after the last
    assert sum(waits[:-1]) < THROTTLED_WAIT_MAX <= sum(waits)
    stub.assert_no_pending_responses()


def test_a_delete_throttled_far_past_five_attempts_still_deletes():
    # Another tool sharing the account's bucket for a minute must not fail a deletion.
    client, stub = stubbed()
    for _ in range(12):
        stub.add_client_error("delete_snapshot", "RequestLimitExceeded", http_status_code=503)
    stub.add_response("delete_snapshot", {}, {"SnapshotId": "snap-1"})
    waits: list[float] = []
    with stub:
        Ec2Snapshots(lambda _r: client, sleep=waits.append, rng=LongestWaits()).delete(
            REGION, "snap-1"
        )
    stub.assert_no_pending_responses()
    assert len(waits) == 12
    assert max(waits) == 20


def test_a_delete_is_given_up_on_after_five_server_errors_whatever_the_throttling():
    client, stub = stubbed()
    stub.add_client_error("delete_snapshot", "RequestLimitExceeded", http_status_code=503)
    for _ in range(MAX_ATTEMPTS):
        stub.add_client_error("delete_snapshot", "InternalError", http_status_code=500)
    with stub, pytest.raises(Ec2CallFailed, match="InternalError") as info:
        Ec2Snapshots(lambda _r: client, sleep=lambda _s: None).delete(REGION, "snap-1")
    stub.assert_no_pending_responses()  # 1 throttled + 5 server errors, then no more
    assert info.value.code == "InternalError"


def test_a_delete_throttled_through_the_whole_budget_fails_and_says_so():
    client, stub = stubbed()
    for _ in range(20):
        stub.add_client_error("delete_snapshot", "RequestLimitExceeded", http_status_code=503)
    calls = Ec2Snapshots(lambda _r: client, sleep=lambda _s: None, rng=LongestWaits())
    with stub, pytest.raises(Ec2CallFailed, match="throttled through 311 s of backoff"):
        calls.delete(REGION, "snap-1")
    stub.assert_no_pending_responses()


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
