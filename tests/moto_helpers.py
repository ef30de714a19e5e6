"""Helpers for tests that run against moto's simulated account."""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any

import boto3

if TYPE_CHECKING:
    from smartvault.aws.session import AwsSession

ACCOUNT = "123456789012"


def launch(
    ec2: Any, count: int = 1, tags: dict[str, str] | None = None, volumes: int = 1
) -> list[str]:
    """Start ``count`` instances tagged ``tags`` (default ``backup=true``); their ids."""
    tags = {"backup": "true"} if tags is None else tags
    # moto attaches exactly the mappings given: name the root device too.
    mappings = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}] + [
        {"DeviceName": f"/dev/sd{chr(ord('f') + i)}", "Ebs": {"VolumeSize": 8}}
        for i in range(volumes - 1)
    ]
    response = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=count,
        MaxCount=count,
        BlockDeviceMappings=mappings,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )
    return [i["InstanceId"] for i in response["Instances"]]


def managed_snapshots(ec2: Any) -> list[dict[str, Any]]:
    return ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:CreatedBy", "Values": ["SmartVault"]}]
    )["Snapshots"]


def backdate(region: str, snapshot_id: str, when: datetime) -> None:
    """Make moto report ``snapshot_id`` as started at ``when`` (no AWS API can)."""
    from moto.ec2.models import ec2_backends

    snapshot = ec2_backends[ACCOUNT][region].snapshots[snapshot_id]
    snapshot.start_time = when.astimezone(UTC).replace(tzinfo=None)


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def age_recovery_point(
    ec2: Any, snapshot: dict[str, Any], days: int, audit_table: str = "smartvault-audit"
) -> None:
    """Make a recovery point look as if it was taken ``days`` earlier: its start time,
    the slot in its ``smartvault:recovery-point`` and ``smartvault:slot`` tags, and its
    claim in ``audit_table`` (if there is one), which moves to the earlier slot's id."""
    tags = tags_of(snapshot)
    policy, resource, stamp = tags["smartvault:recovery-point"].split("/")
    slot = datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC) - timedelta(days=days)
    region = ec2.meta.region_name
    _move_claim(
        ec2,
        audit_table,
        tags["smartvault:recovery-point"],
        f"{policy}/{resource}/{slot:%Y%m%dT%H%MZ}",
        timedelta(days=days),
    )
    ec2.create_tags(
        Resources=[snapshot["SnapshotId"]],
        Tags=[
            {
                "Key": "smartvault:recovery-point",
                "Value": f"{policy}/{resource}/{slot:%Y%m%dT%H%MZ}",
            },
            {"Key": "smartvault:slot", "Value": f"{slot:%Y-%m-%dT%H:%M:%SZ}"},
        ],
    )
    backdate(region, snapshot["SnapshotId"], snapshot["StartTime"] - timedelta(days=days))


def _move_claim(ec2: Any, table: str, old_rp: str, new_rp: str, earlier: timedelta) -> None:
    """Re-key the claim of ``old_rp`` as ``new_rp``, its lease ``earlier``: as if made then."""
    import boto3

    endpoint = ec2.meta.endpoint_url
    dynamodb = boto3.client(
        "dynamodb",
        region_name=ec2.meta.region_name,
        endpoint_url=None if "amazonaws.com" in endpoint else endpoint,
    )
    try:
        item = dynamodb.get_item(
            TableName=table, Key={"pk": {"S": "CLAIM#" + old_rp}, "sk": {"S": "CLAIM"}}
        ).get("Item")
    except dynamodb.exceptions.ResourceNotFoundException:
        return
    if item is None:
        return
    dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    lease = int(item["lease_until"]["N"]) - int(earlier.total_seconds())
    dynamodb.put_item(
        TableName=table,
        Item={**item, "pk": {"S": "CLAIM#" + new_rp}, "lease_until": {"N": str(lease)}},
    )


def count_calls(session: AwsSession) -> Counter[str]:
    """Count the API calls (``ec2:DescribeSnapshots``) of the clients ``session`` creates next."""
    calls: Counter[str] = Counter()

    def on_call(event_name: str, **kwargs: object) -> None:
        _, service, operation = event_name.split(".")
        calls[f"{service}:{operation}"] += 1

    session.boto_session.events.register("before-parameter-build", on_call)
    return calls


def sns_inbox(region: str = "us-east-1") -> tuple[Any, Any, str, str]:
    """A topic with an SQS queue subscribed to it, to read what was published:
    ``(sns, sqs, topic_arn, queue_url)``."""
    sns = boto3.client("sns", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    topic_arn = sns.create_topic(Name="backup-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"])
    return sns, sqs, topic_arn, queue_url
