"""A small in-memory EC2 that speaks the ``apply.ports.Ec2`` and ``Volumes`` Protocols.

It lets step tests say exactly what EC2 answers (a lost answer, an AMI that took a
snapshot, a throttled call) without botocore, and see every call the step made.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import datetime

from smartvault.core.model import Instance
from smartvault.core.model import Snapshot
from smartvault.core.model import Volume
from smartvault.core.model import VolumeAttachment
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown


@dataclass
class FakeEc2:
    """Snapshots by region and id; ``fail[(call, id)]`` raises once, on that call."""

    now: Callable[[], datetime]
    snapshots: dict[tuple[str, str], Snapshot] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail: dict[tuple[str, str], Exception] = field(default_factory=dict)
    #: snapshots a create makes but DescribeSnapshots does not list yet (eventual consistency)
    hidden: set[str] = field(default_factory=set)
    #: creates whose snapshot EC2 makes but whose answer is lost on the way back
    lose_answer: set[str] = field(default_factory=set)
    before_change: Callable[[str, str], None] = lambda _call, _id: None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # --- volumes, instances, zones ---
    volumes_by_id: dict[tuple[str, str], Volume] = field(default_factory=dict)
    instances: dict[tuple[str, str], Instance] = field(default_factory=dict)
    #: how many reads a new volume stays ``creating`` (AWS: seconds to minutes; moto: 0)
    creating_for: int = 0
    #: snapshots whose volumes never leave ``creating``
    never_available: set[str] = field(default_factory=set)
    #: volume id -> reads left in ``creating``
    _creating: dict[str, int] = field(default_factory=dict)
    #: client token -> volume id, as EC2 keeps them
    _tokens: dict[str, str] = field(default_factory=dict)
    #: every RestoreSnapshotTier asked for: (snapshot id, days)
    restored_for: list[tuple[str, int]] = field(default_factory=list)
    #: every CreateVolume's client token, in order
    tokens_sent: list[str] = field(default_factory=list)
    #: snapshots whose first CreateVolume makes the volume but loses the answer
    lose_volume_answer: set[str] = field(default_factory=set)
    #: as AWS: DeleteVolume refuses a volume still ``creating`` (IncorrectState)
    refuse_deleting_creating: bool = False

    def add(self, snapshot: Snapshot) -> Snapshot:
        self.snapshots[snapshot.region, snapshot.snapshot_id] = snapshot
        return snapshot

    def find(self, region: str, filter_name: str, values: Sequence[str]) -> list[Snapshot]:
        self.calls.append(("DescribeSnapshots", region))
        wanted = set(values)
        found = []
        for (where, sid), snap in sorted(self.snapshots.items()):
            if where != region or sid in self.hidden:
                continue
            if filter_name == "snapshot-id":
                value = sid
            else:
                value = snap.tags.get(filter_name.removeprefix("tag:"), "")
            if value in wanted:
                found.append(snap)
        return found

    def by_id(self, region: str, ids: Sequence[str]) -> dict[str, Snapshot]:
        return {s.snapshot_id: s for s in self.find(region, "snapshot-id", ids)}

    def delete(self, region: str, snapshot_id: str) -> None:
        self._change("DeleteSnapshot", snapshot_id)
        if (region, snapshot_id) not in self.snapshots:
            raise Ec2CallFailed(f"could not delete {snapshot_id}", "InvalidSnapshot.NotFound")
        del self.snapshots[region, snapshot_id]

    def archive(self, region: str, snapshot_id: str) -> None:
        self._change("ModifySnapshotTier", snapshot_id)
        snap = self.snapshots[region, snapshot_id]
        self.snapshots[region, snapshot_id] = replace(snap, storage_tier="archive")

    def create_snapshots(
        self,
        region: str,
        instance_id: str,
        *,
        exclude_boot_volume: bool,
        description: str,
        tags: Mapping[str, str],
    ) -> tuple[str, ...]:
        self._change("CreateSnapshots", instance_id)
        return (self._make(region, "vol-1", tags).snapshot_id,)

    def create_snapshot(
        self, region: str, volume_id: str, *, description: str, tags: Mapping[str, str]
    ) -> tuple[str, ...]:
        self._change("CreateSnapshot", volume_id)
        made = self._make(region, volume_id, tags)
        if volume_id in self.lose_answer:
            self.hidden.add(made.snapshot_id)  # made, not listed yet, and no answer
            raise Ec2OutcomeUnknown("InternalError: injected (HTTP 500)", "InternalError")
        return (made.snapshot_id,)

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
        self._change("CopySnapshot", source_id)
        return self._make(region, "vol-ffffffff", tags).snapshot_id

    def changes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if not c[0].startswith("Describe")]

    def _change(self, call: str, target: str) -> None:
        self.calls.append((call, target))
        self.before_change(call, target)
        failure = self.fail.pop((call, target), None)
        if failure is not None:
            raise failure

    def _make(self, region: str, volume_id: str, tags: Mapping[str, str]) -> Snapshot:
        snap = Snapshot(
            snapshot_id=f"snap-{next(self._ids):08x}",
            region=region,
            volume_id=volume_id,
            state="completed",
            start_time=self.now(),
            tags=dict(tags),
        )
        return self.add(snap)

    # --- the Volumes Protocol -----------------------------------------------------------

    def add_volume(self, volume: Volume) -> Volume:
        self.volumes_by_id[volume.region, volume.volume_id] = volume
        return volume

    def volumes(self, region: str, filter_name: str, values: Sequence[str]) -> list[Volume]:
        self.calls.append(("DescribeVolumes", region))
        failure = self.fail.pop(("DescribeVolumes", region), None)
        if failure is not None:
            raise failure
        wanted = set(values)
        found = []
        for (where, vid), volume in sorted(self.volumes_by_id.items()):
            if where != region:
                continue
            volume = self._age(volume)
            if filter_name == "volume-id":
                hit = vid in wanted
            elif filter_name == "attachment.instance-id":
                hit = any(a.instance_id in wanted for a in volume.attachments)
            elif filter_name == "tag-key":
                hit = any(k in wanted for k in volume.tags)
            else:
                hit = volume.tags.get(filter_name.removeprefix("tag:"), None) in wanted
            if hit:
                found.append(volume)
        return found

    def instance(self, region: str, instance_id: str) -> Instance | None:
        self.calls.append(("DescribeInstances", region))
        return self.instances.get((region, instance_id))

    def zones(self, region: str) -> tuple[str, ...]:
        return (f"{region}a", f"{region}b", f"{region}c")

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
        self._change("CreateVolume", snapshot_id)
        self.tokens_sent.append(client_token)
        if client_token in self._tokens:
            return self.volumes_by_id[region, self._tokens[client_token]]
        source = self.snapshots[region, snapshot_id]
        volume = Volume(
            volume_id=f"vol-{next(self._ids):017x}",
            region=region,
            availability_zone=zone,
            size_gib=source.volume_size_gib,
            volume_type=volume_type,
            state="creating",
            tags=dict(tags),
            iops=iops,
            throughput=throughput,
            encrypted=source.encrypted or bool(kms_key_id),
            kms_key_id=kms_key_id or source.kms_key_id,
            snapshot_id=snapshot_id,
        )
        self._tokens[client_token] = volume.volume_id
        self._creating[volume.volume_id] = (
            -1 if snapshot_id in self.never_available else self.creating_for
        )
        self.add_volume(volume)
        if snapshot_id in self.lose_volume_answer:
            self.lose_volume_answer.discard(snapshot_id)
            raise Ec2OutcomeUnknown("InternalError: injected (HTTP 500)", "InternalError")
        return volume

    def attach(self, region: str, volume_id: str, instance_id: str, device: str) -> None:
        self._change("AttachVolume", volume_id)
        volume = self.volumes_by_id[region, volume_id]
        self.volumes_by_id[region, volume_id] = replace(
            volume, state="in-use", attachments=(VolumeAttachment(instance_id, device),)
        )

    def delete_volume(self, region: str, volume_id: str) -> None:
        self._change("DeleteVolume", volume_id)
        if (region, volume_id) not in self.volumes_by_id:
            raise Ec2CallFailed(f"could not delete volume {volume_id}", "InvalidVolume.NotFound")
        if (
            self.refuse_deleting_creating
            and self.volumes_by_id[region, volume_id].state == "creating"
        ):
            raise Ec2CallFailed(
                f"could not delete volume {volume_id}: IncorrectState",
                "IncorrectState",
                f"The volume '{volume_id}' is 'creating'",
            )
        del self.volumes_by_id[region, volume_id]

    def restore_from_archive(self, region: str, snapshot_id: str, days: int) -> int | None:
        self._change("RestoreSnapshotTier", snapshot_id)
        self.restored_for.append((snapshot_id, days))
        return 72

    def mark_verified(self, region: str, snapshot_ids: Sequence[str], value: str) -> None:
        for sid in snapshot_ids:
            self._change("CreateTags", sid)
            snap = self.snapshots[region, sid]
            self.snapshots[region, sid] = replace(
                snap, tags={**snap.tags, "smartvault:verified": value}
            )

    def _age(self, volume: Volume) -> Volume:
        """One read later: a ``creating`` volume may have become ``available``."""
        left = self._creating.get(volume.volume_id)
        if left is None or volume.state != "creating":
            return volume
        if left == 0:
            del self._creating[volume.volume_id]
            volume = replace(volume, state="available")
            self.volumes_by_id[volume.region, volume.volume_id] = volume
        elif left > 0:
            self._creating[volume.volume_id] = left - 1
        return volume
