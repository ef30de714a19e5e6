"""What exists in the account: instances, volumes, snapshots and AMIs, as read."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from smartvault.core.model.policy import Tags
from smartvault.core.model.recovery_points import is_managed
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT

# --- what exists in the account ---------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockDevice:
    device_name: str
    volume_id: str


@dataclass(frozen=True, slots=True)
class Instance:
    instance_id: str
    region: str
    state: str
    tags: Tags = field(default_factory=dict)
    availability_zone: str = ""
    root_device_name: str = ""
    block_devices: tuple[BlockDevice, ...] = ()

    @property
    def volume_ids(self) -> tuple[str, ...]:
        return tuple(d.volume_id for d in self.block_devices)


@dataclass(frozen=True, slots=True)
class VolumeAttachment:
    instance_id: str
    device: str


@dataclass(frozen=True, slots=True)
class Volume:
    volume_id: str
    region: str
    availability_zone: str = ""
    size_gib: int = 0
    volume_type: str = "gp3"
    state: str = "in-use"
    tags: Tags = field(default_factory=dict)
    attachments: tuple[VolumeAttachment, ...] = ()
    #: provisioned IOPS and throughput (MiB/s), where the type has them
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool = False
    kms_key_id: str = ""
    #: the snapshot it was created from, if any
    snapshot_id: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    snapshot_id: str
    region: str
    volume_id: str
    #: pending | completed | error | recoverable | recovering
    state: str
    #: aware, UTC
    start_time: datetime
    tags: Tags = field(default_factory=dict)
    volume_size_gib: int = 0
    #: standard | archive
    storage_tier: str = "standard"
    description: str = ""
    #: set while an archived snapshot is temporarily restored: when EC2 re-archives it
    restore_expiry: datetime | None = None
    encrypted: bool = False
    kms_key_id: str = ""

    @property
    def managed(self) -> bool:
        """Made by SmartVault: the only snapshots it may ever delete, archive or copy."""
        return is_managed(self.tags)

    @property
    def policy(self) -> str | None:
        return self.tags.get(TAG_POLICY)

    @property
    def recovery_point(self) -> str | None:
        return self.tags.get(TAG_RECOVERY_POINT)


@dataclass(frozen=True, slots=True)
class Image:
    """An AMI owned by the account; its snapshots must never be deleted."""

    image_id: str
    region: str
    snapshot_ids: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class Inventory:
    """What exists in the account, as read at one moment, across the regions read."""

    account_id: str
    #: every region read: where SmartVault works, and copy target regions
    regions: tuple[str, ...]
    instances: tuple[Instance, ...] = ()
    volumes: tuple[Volume, ...] = ()
    #: managed snapshots (``CreatedBy=SmartVault``); others are never read
    snapshots: tuple[Snapshot, ...] = ()
    images: tuple[Image, ...] = ()
    #: the regions whose instances and volumes were read (the working regions; copy
    #: target regions only have their snapshots and AMIs read); None: all of ``regions``
    resource_regions: tuple[str, ...] | None = None
