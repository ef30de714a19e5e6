"""The EC2 volume calls of restores and restore tests, typed, retried and translated.

Every failure is an :class:`~smartvault.errors.Ec2CallFailed` (see
:mod:`smartvault.aws.calls` for the two retry rules). ``CreateVolume`` takes an
idempotency token, so unlike the snapshot creates it is safe to repeat: the caller
passes a token that names the one volume it means (a run and a snapshot), and a repeat
whose first answer was lost returns that same volume instead of a second one.
``AttachVolume`` has no token and is sent at most once.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Final

from smartvault.aws.calls import Ec2Calls
from smartvault.aws.calls import tag_specification
from smartvault.aws.inventory import instance_from_api
from smartvault.aws.inventory import volume_from_api
from smartvault.core.model import Instance
from smartvault.core.model import Volume
from smartvault.core.tags import TAG_VERIFIED

PAGE_SIZE: Final = 500
#: EC2 keeps a ClientToken to 64 ASCII characters.
CLIENT_TOKEN_MAX: Final = 64


class Ec2Volumes(Ec2Calls):
    """Volume, instance and zone calls in any region."""

    # --- reads --------------------------------------------------------------------------

    def volumes(self, region: str, filter_name: str, values: Sequence[str]) -> list[Volume]:
        """Volumes in ``region`` whose ``filter_name`` (``volume-id``, ``tag:…``,
        ``attachment.instance-id``) is any of ``values``; an id that does not exist is no
        error."""
        ec2 = self._client(region)

        def listing(chunk: list[str]) -> Iterator[Volume]:
            pages = ec2.get_paginator("describe_volumes").paginate(
                Filters=[{"Name": filter_name, "Values": chunk}],
                PaginationConfig={"PageSize": PAGE_SIZE},
            )
            for page in pages:
                for raw in page.get("Volumes", []):
                    yield volume_from_api(raw, region)

        return self._filtered("read volumes (DescribeVolumes)", listing, values)

    def instance(self, region: str, instance_id: str) -> Instance | None:
        """The instance, or None when ``region`` has no such instance (or it is gone)."""
        ec2 = self._client(region)

        def listing() -> list[Instance]:
            pages = ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-id", "Values": [instance_id]}]
            )
            return [
                instance_from_api(raw, region)
                for page in pages
                for reservation in page.get("Reservations", [])
                for raw in reservation.get("Instances", [])
            ]

        found = self._repeatable(f"read instance {instance_id} (DescribeInstances)", listing)
        live = [i for i in found if i.state != "terminated"]
        return live[0] if live else None

    def zones(self, region: str) -> tuple[str, ...]:
        """The region's availability zones that are available, sorted by name (Local
        Zones and Wavelength Zones, which an account must opt in to, are left out)."""
        ec2 = self._client(region)
        answer = self._repeatable(
            f"read the availability zones of {region} (DescribeAvailabilityZones)",
            lambda: ec2.describe_availability_zones(
                Filters=[
                    {"Name": "state", "Values": ["available"]},
                    {"Name": "zone-type", "Values": ["availability-zone"]},
                ]
            ),
        )
        return tuple(sorted(z["ZoneName"] for z in answer.get("AvailabilityZones", [])))

    # --- changes ------------------------------------------------------------------------

    def create_volume(
        self,
        region: str,
        snapshot_id: str,
        *,
        zone: str,
        volume_type: str,
        tags: Mapping[str, str],
        client_token: str,
        iops: int | None = None,
        throughput: int | None = None,
        kms_key_id: str | None = None,
    ) -> Volume:
        """A new volume from ``snapshot_id``, every tag set at creation; as EC2 answered
        (state ``creating`` in AWS). The size is the snapshot's, and an encrypted
        snapshot gives a volume encrypted with the snapshot's key unless ``kms_key_id``
        names another. Safe to repeat with the same ``client_token``."""
        ec2 = self._client(region)
        kwargs: dict[str, Any] = {
            "SnapshotId": snapshot_id,
            "AvailabilityZone": zone,
            "VolumeType": volume_type,
            "TagSpecifications": tag_specification("volume", tags),
            "ClientToken": client_token[:CLIENT_TOKEN_MAX],
        }
        if iops is not None:
            kwargs["Iops"] = iops
        if throughput is not None:
            kwargs["Throughput"] = throughput
        if kms_key_id:
            kwargs["Encrypted"] = True
            kwargs["KmsKeyId"] = kms_key_id
        raw = self._repeatable(
            f"create a volume from {snapshot_id} in {zone} (CreateVolume)",
            lambda: ec2.create_volume(**kwargs),
        )
        return volume_from_api(raw, region)  # type: ignore[arg-type]

    def attach(self, region: str, volume_id: str, instance_id: str, device: str) -> None:
        """Attach ``volume_id`` to ``instance_id`` at ``device``; sent at most once."""
        ec2 = self._client(region)
        self._once(
            f"AttachVolume in {region}",
            lambda: ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device),
        )

    def delete_volume(self, region: str, volume_id: str) -> None:
        ec2 = self._client(region)
        self._repeatable(
            f"delete volume {volume_id}", lambda: ec2.delete_volume(VolumeId=volume_id)
        )

    def restore_from_archive(self, region: str, snapshot_id: str, days: int) -> int | None:
        """Bring an archived snapshot back to the standard tier for ``days``; the hours AWS
        says that takes (None when it does not say)."""
        ec2 = self._client(region)
        answer = self._repeatable(
            f"restore {snapshot_id} from the archive tier (RestoreSnapshotTier)",
            lambda: ec2.restore_snapshot_tier(SnapshotId=snapshot_id, TemporaryRestoreDays=days),
        )
        return answer.get("RestoreDuration")

    def mark_verified(self, region: str, snapshot_ids: Sequence[str], value: str) -> None:
        """Add ``smartvault:verified=<value>`` to the snapshots: the one tag SmartVault ever
        adds to a snapshot that exists (the deployment role allows no other)."""
        ec2 = self._client(region)
        self._repeatable(
            f"tag {', '.join(snapshot_ids)} {TAG_VERIFIED} (CreateTags)",
            lambda: ec2.create_tags(
                Resources=list(snapshot_ids), Tags=[{"Key": TAG_VERIFIED, "Value": value}]
            ),
        )
