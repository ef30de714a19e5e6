"""A small in-memory EC2 that speaks the ``apply.ports.Ec2`` Protocol.

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

from smartvault.core.model import Snapshot
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
        return [c for c in self.calls if c[0] != "DescribeSnapshots"]

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
