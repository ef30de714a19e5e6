"""The EC2 snapshot calls that applying a plan makes, typed, retried and translated.

Every method takes the region it works in and returns model records or ids; every
failure is an :class:`~smartvault.errors.Ec2CallFailed`, so ``smartvault.apply`` never
sees botocore. Deletes and tier changes are repeatable; ``CreateSnapshots``,
``CreateSnapshot`` and ``CopySnapshot`` have no idempotency token and are sent at most
once (:mod:`smartvault.aws.calls` has both rules).
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Final

from smartvault.aws.calls import Ec2Calls
from smartvault.aws.calls import tag_specification
from smartvault.aws.inventory import snapshot_from_api
from smartvault.core.model import Snapshot

PAGE_SIZE: Final = 1000
#: EC2's limit on a snapshot description.
DESCRIPTION_MAX: Final = 255


class Ec2Snapshots(Ec2Calls):
    """Snapshot calls in any region (see :class:`~smartvault.aws.calls.Ec2Calls`)."""

    # --- reads --------------------------------------------------------------------------

    def find(self, region: str, filter_name: str, values: Sequence[str]) -> list[Snapshot]:
        """This account's snapshots in ``region`` whose ``filter_name`` is any of ``values``
        (a ``tag:…`` or ``snapshot-id`` filter: an id that does not exist is no error)."""
        ec2 = self._client(region)

        def listing(chunk: list[str]) -> Iterator[Snapshot]:
            pages = ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"],
                Filters=[{"Name": filter_name, "Values": chunk}],
                PaginationConfig={"PageSize": PAGE_SIZE},
            )
            for page in pages:
                for raw in page.get("Snapshots", []):
                    yield snapshot_from_api(raw, region)

        return self._filtered("read snapshots (DescribeSnapshots)", listing, values)

    def by_id(self, region: str, ids: Sequence[str]) -> dict[str, Snapshot]:
        """The snapshots of ``ids`` that exist in ``region``, by id."""
        return {s.snapshot_id: s for s in self.find(region, "snapshot-id", ids)}

    # --- changes that are safe to repeat -----------------------------------------------

    def delete(self, region: str, snapshot_id: str) -> None:
        ec2 = self._client(region)
        self._repeatable(
            f"delete {snapshot_id}", lambda: ec2.delete_snapshot(SnapshotId=snapshot_id)
        )

    def archive(self, region: str, snapshot_id: str) -> None:
        """Move to the archive tier. Safe to repeat: the call names an end state, and a
        repeat of one that landed is accepted again or answered ``IncorrectState``."""
        ec2 = self._client(region)
        self._repeatable(
            f"archive {snapshot_id}",
            lambda: ec2.modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive"),
        )

    # --- changes sent at most once ------------------------------------------------------

    def create_snapshots(
        self,
        region: str,
        instance_id: str,
        *,
        exclude_boot_volume: bool,
        description: str,
        tags: Mapping[str, str],
    ) -> tuple[str, ...]:
        """One crash-consistent recovery point of an instance; the new snapshot ids."""
        ec2 = self._client(region)

        def call() -> tuple[str, ...]:
            response = ec2.create_snapshots(
                InstanceSpecification={
                    "InstanceId": instance_id,
                    "ExcludeBootVolume": exclude_boot_volume,
                },
                Description=description[:DESCRIPTION_MAX],
                TagSpecifications=tag_specification("snapshot", tags),
            )
            return tuple(s["SnapshotId"] for s in response.get("Snapshots", []))

        return self._once(f"CreateSnapshots in {region}", call)

    def create_snapshot(
        self, region: str, volume_id: str, *, description: str, tags: Mapping[str, str]
    ) -> tuple[str, ...]:
        """One snapshot of a volume; its id (as a one-element tuple, like an instance's)."""
        ec2 = self._client(region)

        def call() -> tuple[str, ...]:
            single = ec2.create_snapshot(
                VolumeId=volume_id,
                Description=description[:DESCRIPTION_MAX],
                TagSpecifications=tag_specification("snapshot", tags),
            )
            return (single["SnapshotId"],)

        # Named as the instance call is, so that both say the same when throttled.
        return self._once(f"CreateSnapshots in {region}", call)

    def copy_snapshot(
        self,
        region: str,
        source_region: str,
        source_id: str,
        *,
        description: str,
        tags: Mapping[str, str],
        kms_key_id: str | None = None,
    ) -> str:
        """Copy ``source_region/source_id`` into ``region``; the new snapshot's id."""
        ec2 = self._client(region)
        kwargs: dict[str, Any] = {
            "SourceRegion": source_region,
            "SourceSnapshotId": source_id,
            "Description": description[:DESCRIPTION_MAX],
            "TagSpecifications": tag_specification("snapshot", tags),
        }
        if kms_key_id:
            kwargs["Encrypted"] = True
            kwargs["KmsKeyId"] = kms_key_id
        return self._once(
            f"CopySnapshot in {region}", lambda: ec2.copy_snapshot(**kwargs)["SnapshotId"]
        )
