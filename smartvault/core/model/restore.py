"""The records of a restore: the recovery points found, and the volumes a restore makes.

A restore turns one recovery point (in one region: the original's, or a copy's) into new
volumes like the originals, and may attach them to an instance. Everything it will do is
decided first, as a :class:`RestorePlan`, so the dry run shows exactly what ``--yes`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from smartvault.core.model.account import Snapshot

#: completed: every snapshot completed; failed: any in ``error``; pending: otherwise
PointState = Literal["completed", "pending", "failed"]

#: where a new volume's type, IOPS, throughput and tags came from
SettingsSource = Literal["recorded", "original", "default"]


@dataclass(frozen=True)
class FoundPoint:
    """One recovery point in one region, as its well-formed managed snapshots show it."""

    region: str
    recovery_point: str
    policy: str
    resource_id: str
    #: the earliest start time of its snapshots (aware, UTC)
    created_at: datetime
    #: sorted by snapshot id
    snapshots: tuple[Snapshot, ...]
    state: PointState
    #: the ``smartvault:source`` of each snapshot (``<region>/<snapshot-id>``), when a copy
    sources: tuple[str, ...] = ()
    #: the ``smartvault:verified`` time, when a restore test verified it
    verified: str = ""
    #: the ``smartvault:hold`` reason, when held
    held: str = ""

    @property
    def is_copy(self) -> bool:
        return bool(self.sources)

    @property
    def snapshot_ids(self) -> tuple[str, ...]:
        return tuple(s.snapshot_id for s in self.snapshots)


@dataclass(frozen=True)
class VolumePlan:
    """One new volume: from which snapshot, like what, where, and at which device."""

    snapshot_id: str
    size_gib: int
    volume_type: str
    #: None: the type's own default (gp3: 3,000 IOPS and 125 MiB/s), or none to set
    iops: int | None
    throughput: int | None
    encrypted: bool
    #: the snapshot's key: an encrypted snapshot restores encrypted with it
    kms_key_id: str
    zone: str
    tags: Mapping[str, str]
    settings_from: SettingsSource
    #: what ``settings_from`` means for this volume, in words
    settings_note: str
    #: the device name the original volume had (None: not recorded, or a volume policy)
    device: str | None
    #: where it will be attached to the ``--attach-to`` instance; None: not attached
    attach_device: str | None = None
    #: the original instance's root volume: made, never attached (a person swaps roots)
    root: bool = False
    #: why it is not attached, or where its device name came from
    attach_note: str = ""


@dataclass(frozen=True)
class RestorePlan:
    """What one restore does: the point, the zone, every volume, and the attachments."""

    point: FoundPoint
    zone: str
    #: how the zone was chosen, in words
    zone_note: str
    volumes: tuple[VolumePlan, ...]
    attach_to: str | None = None
    #: snapshots in the archive tier (not temporarily restored): they must come back first
    archived: tuple[str, ...] = ()

    @property
    def region(self) -> str:
        return self.point.region

    @property
    def snapshot_ids(self) -> tuple[str, ...]:
        return tuple(v.snapshot_id for v in self.volumes)


@dataclass(frozen=True)
class MadeVolume:
    """A volume a restore made, and where it was attached (None: not attached)."""

    volume_id: str
    snapshot_id: str
    device: str | None
