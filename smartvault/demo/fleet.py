"""The simulated fleet the demo runs on: instances, volumes and backdated history.

Everything here is made through the EC2 API of moto's simulated account, as a person
would make it in a real one, except the one thing no API can do: make a snapshot look
older than it is. :func:`_backdate` sets its start time inside moto, so retention, the
deletion circuit breaker and the AMI rule have real history to decide about.

The fleet is chosen for the shipped ``policies/``: ``nightly`` (``backup: "true"``,
``backup-skip`` excluded, a weekly restore test) in every region, and
``tiered-hourly`` (``tier`` gold, silver or bronze with any ``env``) in eu-central-1
and eu-west-1. Other policies see the same fleet; what they select is theirs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from smartvault.core import tags as t

#: where the ``nightly`` fleet lives, and the audit table
HOME_REGION = "us-east-1"
#: where the tiered fleet lives (one of ``tiered-hourly``'s regions)
TIERED_REGION = "eu-central-1"
REGIONS = (HOME_REGION, TIERED_REGION)
#: moto's account
ACCOUNT = "123456789012"
#: a policy no shipped file defines any more: its snapshots are orphans
RENAMED_POLICY = "weekly"


@dataclass(frozen=True)
class Machine:
    """One instance to launch: its ``Name``, its other tags, its volumes' sizes (GiB)."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    volumes: tuple[int, ...] = (8,)


#: us-east-1: what ``nightly`` selects, skips and misses
HOME_FLEET = (
    Machine("web-1", {"backup": "true", "Team": "web"}),
    Machine("web-2", {"backup": "true", "Team": "web"}),
    Machine("db-1", {"backup": "true", "Team": "data"}, (8, 100)),
    Machine("app-1", {"backup": "true", "Team": "app"}),
    Machine("legacy-1", {"backup": "true", "Team": "app"}),
    Machine("scratch-1", {"backup": "true", "backup-skip": "yes", "Team": "data"}),
    Machine("bastion", {"Team": "ops"}),
    Machine("build-runner"),
)
#: eu-central-1: one instance per tier, and one whose tags do not quite match
TIERED_FLEET = (
    Machine("api-gold", {"tier": "gold", "env": "prod"}, (8, 50)),
    Machine("api-silver", {"tier": "silver", "env": "prod"}),
    Machine("batch-bronze", {"tier": "bronze", "env": "staging"}),
    Machine("lab-gold", {"tier": "gold"}),  # no env tag: tiered-hourly does not select it
)


@dataclass(frozen=True)
class Fleet:
    """What was seeded: instance ids by ``Name``, and the snapshots the demo points at."""

    instances: dict[str, str]
    #: the old recovery point of legacy-1 that an AMI still uses
    ami_snapshot: str
    #: the snapshot a person made by hand (no SmartVault tags)
    manual_snapshot: str


def seed(ec2_by_region: dict[str, Any], now: datetime) -> Fleet:
    """Launch the fleet and give it history; ``ec2_by_region`` holds an EC2 client of
    each of :data:`REGIONS`, ``now`` is the time the history is counted back from."""
    home, tiered = ec2_by_region[HOME_REGION], ec2_by_region[TIERED_REGION]
    instances = {m.name: _launch(home, m) for m in HOME_FLEET}
    instances |= {m.name: _launch(tiered, m) for m in TIERED_FLEET}
    nightly = _nightly_slots(now)

    # db-1: ten nights; the 7-day max_age deletes the oldest ones
    _history(home, instances["db-1"], "nightly", nightly[:10])
    _history(home, instances["web-1"], "nightly", nightly[:4])
    _history(home, instances["app-1"], "nightly", nightly[:3])
    _history(home, instances["web-2"], "nightly", nightly[:2])
    # web-2 also has nights of a policy since renamed away: they stay, as orphans
    _history(home, instances["web-2"], RENAMED_POLICY, nightly[:21:7])
    # legacy-1: four nights, and one of twenty nights ago that an AMI was made from
    _history(home, instances["legacy-1"], "nightly", nightly[:4])
    image = home.create_image(InstanceId=instances["legacy-1"], Name="legacy-1-golden")
    (mapping,) = home.describe_images(ImageIds=[image["ImageId"]])["Images"][0][
        "BlockDeviceMappings"
    ]
    ami_snapshot = mapping["Ebs"]["SnapshotId"]
    _mark(home, instances["legacy-1"], "nightly", nightly[19], [ami_snapshot])
    manual_snapshot = home.create_snapshot(
        VolumeId=_volumes(home, instances["db-1"])[0][1],
        Description="by hand, before the schema upgrade",
    )["SnapshotId"]
    _backdate(HOME_REGION, manual_snapshot, now - timedelta(days=40))
    # each nightly instance passed a restore test two nights ago: none is due yet
    for name in ("db-1", "web-1", "app-1", "web-2", "legacy-1"):
        _verified(home, instances[name], "nightly", nightly[1])

    hourly = _hourly_slots(now)
    # gold: every 6 hours for 3 days, then one a day back to 20 days
    gold = hourly[:72:6] + [hourly[0] - timedelta(days=d) for d in range(3, 21)]
    _history(tiered, instances["api-gold"], "tiered-hourly", gold)
    _history(tiered, instances["api-silver"], "tiered-hourly", hourly[24:120:24])
    # bronze: every 6 hours for 5 days; its 3-day max_age deletes the oldest 2 days
    _history(tiered, instances["batch-bronze"], "tiered-hourly", hourly[:120:6])
    return Fleet(instances, ami_snapshot, manual_snapshot)


def _launch(ec2: Any, machine: Machine) -> str:
    devices = ["/dev/sda1", *(f"/dev/sd{chr(ord('f') + i)}" for i in range(len(machine.volumes)))]
    response = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        BlockDeviceMappings=[
            {"DeviceName": device, "Ebs": {"VolumeSize": size, "VolumeType": "gp3"}}
            for device, size in zip(devices, machine.volumes, strict=False)
        ],
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": _tag_list({"Name": machine.name, **machine.tags}),
            }
        ],
    )
    instance_id: str = response["Instances"][0]["InstanceId"]
    return instance_id


def _volumes(ec2: Any, instance_id: str) -> list[tuple[str, str]]:
    """``(device, volume id)`` of each volume attached to ``instance_id``."""
    (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return [
        (m["DeviceName"], m["Ebs"]["VolumeId"])
        for m in reservation["Instances"][0]["BlockDeviceMappings"]
    ]


def _history(ec2: Any, instance_id: str, policy: str, slots: list[datetime]) -> None:
    """One recovery point of ``instance_id`` at each of ``slots``, tagged as SmartVault
    tags its own (one snapshot per volume)."""
    volumes = [volume_id for _, volume_id in _volumes(ec2, instance_id)]
    for slot in slots:
        snapshot_ids = [ec2.create_snapshot(VolumeId=v)["SnapshotId"] for v in volumes]
        _mark(ec2, instance_id, policy, slot, snapshot_ids)


def _mark(ec2: Any, instance_id: str, policy: str, slot: datetime, snapshot_ids: list[str]) -> None:
    """Tag ``snapshot_ids`` as the recovery point of ``instance_id`` at ``slot`` and make
    them as old as that slot."""
    snapshots = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
    devices = dict(_volumes(ec2, instance_id))
    by_volume = {v: d for d, v in devices.items()}
    tags = {
        t.TAG_CREATED_BY: t.CREATED_BY_VALUE,
        t.TAG_INSTANCE_ID: instance_id,
        t.TAG_POLICY: policy,
        t.TAG_RECOVERY_POINT: _point_id(policy, instance_id, slot),
        t.TAG_SLOT: f"{slot:%Y-%m-%dT%H:%M:%SZ}",
        t.TAG_DEVICES: json.dumps(
            {s["VolumeId"]: by_volume.get(s["VolumeId"], "/dev/sda1") for s in snapshots},
            separators=(",", ":"),
        ),
    }
    ec2.create_tags(Resources=snapshot_ids, Tags=_tag_list(tags))
    for snapshot_id in snapshot_ids:
        _backdate(ec2.meta.region_name, snapshot_id, slot + timedelta(seconds=5))


def _verified(ec2: Any, instance_id: str, policy: str, slot: datetime) -> None:
    """Mark the recovery point at ``slot`` as passing a restore test two hours later."""
    point = _point_id(policy, instance_id, slot)
    snapshots = ec2.describe_snapshots(
        Filters=[{"Name": f"tag:{t.TAG_RECOVERY_POINT}", "Values": [point]}]
    )["Snapshots"]
    ec2.create_tags(
        Resources=[s["SnapshotId"] for s in snapshots],
        Tags=_tag_list({t.TAG_VERIFIED: f"{slot + timedelta(hours=2):%Y-%m-%dT%H:%M:%SZ}"}),
    )


def age_restore_tests(ec2: Any, days: int) -> int:
    """Move every ``smartvault:verified`` time of ``ec2``'s region ``days`` back, as if
    the restore tests had been that much earlier; how many snapshots carried one."""
    snapshots = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": [t.TAG_VERIFIED]}]
    )["Snapshots"]
    for snapshot in snapshots:
        (value,) = [x["Value"] for x in snapshot["Tags"] if x["Key"] == t.TAG_VERIFIED]
        when = datetime.fromisoformat(value.replace("Z", "+00:00")) - timedelta(days=days)
        ec2.create_tags(
            Resources=[snapshot["SnapshotId"]],
            Tags=_tag_list({t.TAG_VERIFIED: f"{when:%Y-%m-%dT%H:%M:%SZ}"}),
        )
    return len(snapshots)


def _point_id(policy: str, instance_id: str, slot: datetime) -> str:
    return f"{policy}/{instance_id}/{slot:%Y%m%dT%H%MZ}"


def _nightly_slots(now: datetime) -> list[datetime]:
    """03:00 UTC of each night before the most recent one (which is still to be taken)."""
    last = now.astimezone(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    if last > now:
        last -= timedelta(days=1)
    return [last - timedelta(days=n) for n in range(1, 40)]


def _hourly_slots(now: datetime) -> list[datetime]:
    """Each whole hour before the current one, newest first."""
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=n) for n in range(1, 24 * 21)]


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _backdate(region: str, snapshot_id: str, when: datetime) -> None:
    """Make moto report ``snapshot_id`` as started at ``when``: no AWS API can."""
    from moto.ec2.models import ec2_backends

    snapshot = ec2_backends[ACCOUNT][region].snapshots[snapshot_id]
    snapshot.start_time = when.astimezone(UTC).replace(tzinfo=None)
