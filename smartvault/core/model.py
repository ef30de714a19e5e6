"""The shared vocabulary: policies, what exists in the account, and plans.

Everything here is an immutable value built from the standard library only, so
the pure core (schedules, retention, planner, rendering) can import it without
pulling in YAML, JSON Schema or boto3. Mappings held by these records are never
mutated after construction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import ClassVar
from typing import Literal

from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_SLOT
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.times import iso_utc
from smartvault.core.times import parse_iso_utc

# --- managed snapshots and actions ----------------------------------------------

RECOVERY_POINT_SLOT_FORMAT = "%Y%m%dT%H%MZ"


def is_managed(tags: Mapping[str, str]) -> bool:
    """Made by SmartVault (``CreatedBy=SmartVault`` and a ``smartvault:policy``): the only
    snapshots it may ever delete, archive, copy or tag."""
    return tags.get(TAG_CREATED_BY) == CREATED_BY_VALUE and bool(tags.get(TAG_POLICY))


#: the plan's action types, in the one order every summary and rendering uses
ACTION_TYPES = ("create", "delete", "archive", "copy")

Tags = Mapping[str, str]
ResourceType = Literal["instance", "volume"]

# --- durations --------------------------------------------------------------

_DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})([hdw])$")
_UNIT_SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Duration:
    """A span written as ``Nh``, ``Nd`` or ``Nw`` (``7d``); keeps its text for messages."""

    text: str
    seconds: int

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``7d``; raise ``ValueError`` with a readable reason otherwise."""
        match = _DURATION_RE.match(text.strip())
        if match is None:
            raise ValueError(
                f"{text!r} is not a duration; write a positive whole number followed by "
                "h (hours), d (days) or w (weeks), for example 7d"
            )
        count, unit = match.groups()
        return cls(text=f"{count}{unit}", seconds=int(count) * _UNIT_SECONDS[unit])


# --- policies ---------------------------------------------------------------


@dataclass(frozen=True)
class TagCondition:
    """One key of a tag filter. ``values == ()`` means the key is present with any value."""

    key: str
    values: tuple[str, ...] = ()

    def matches(self, tags: Tags) -> bool:
        value = tags.get(self.key)
        if value is None:
            return False
        return not self.values or value in self.values


@dataclass(frozen=True)
class TagFilter:
    conditions: tuple[TagCondition, ...] = ()

    def matches_all(self, tags: Tags) -> bool:
        """True when every condition matches (``selector.tags``, ``retention_by_tag.match``)."""
        return all(c.matches(tags) for c in self.conditions)

    def matches_any(self, tags: Tags) -> bool:
        """True when any condition matches (``selector.exclude_tags``)."""
        return any(c.matches(tags) for c in self.conditions)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.conditions)


@dataclass(frozen=True)
class Selector:
    tags: TagFilter
    exclude_tags: TagFilter = TagFilter()
    instance_states: tuple[str, ...] = ("running", "stopped")

    def matches(self, tags: Tags) -> bool:
        return self.tags.matches_all(tags) and not self.exclude_tags.matches_any(tags)


@dataclass(frozen=True)
class Schedule:
    """An EventBridge ``cron(...)``/``rate(...)`` expression and its IANA time zone."""

    expression: str
    timezone: str = "UTC"


@dataclass(frozen=True)
class Retention:
    """How long to keep recovery points. A point is kept if ANY rule keeps it."""

    keep_last: int = 1
    max_age: Duration | None = None
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0


#: What a policy without a ``retention`` block keeps.
DEFAULT_RETENTION = Retention(keep_last=1, max_age=Duration.parse("7d"))


@dataclass(frozen=True)
class RetentionRule:
    """One ``retention_by_tag`` entry: the first whose ``match`` fits replaces ``retention``."""

    match: TagFilter
    retention: Retention


@dataclass(frozen=True)
class SnapshotSettings:
    #: tag keys copied from the resource; ``True`` copies all (never ``aws:*``)
    copy_tags: tuple[str, ...] | bool = ()
    #: extra tags; values may use ``{policy}``, ``{resource_id}``, ``{slot}``
    tags: Tags = field(default_factory=dict)
    exclude_boot_volume: bool = False


@dataclass(frozen=True)
class CopyRule:
    region: str
    retention: Retention = DEFAULT_RETENTION
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Notify:
    sns_topic_arn: str
    on: tuple[Literal["failure", "success", "always"], ...] = ("failure",)


@dataclass(frozen=True)
class Policy:
    name: str
    schedule: Schedule
    selector: Selector
    #: where it was defined, for messages and the plan's ``policies`` list
    file: str = "<memory>"
    line: int = 0
    description: str = ""
    enabled: bool = True
    resource: ResourceType = "instance"
    #: empty: every region SmartVault is working in
    regions: tuple[str, ...] = ()
    snapshot: SnapshotSettings = SnapshotSettings()
    retention: Retention = DEFAULT_RETENTION
    retention_by_tag: tuple[RetentionRule, ...] = ()
    retention_tag: str | None = None
    archive_after: Duration | None = None
    copies: tuple[CopyRule, ...] = ()
    notify: Notify | None = None

    def applies_to_region(self, region: str) -> bool:
        return not self.regions or region in self.regions


@dataclass(frozen=True)
class PolicySet:
    """Every policy of every loaded file, names unique, in file then document order."""

    policies: tuple[Policy, ...]
    files: tuple[str, ...] = ()

    def get(self, name: str) -> Policy | None:
        for policy in self.policies:
            if policy.name == name:
                return policy
        return None

    def only(self, names: tuple[str, ...] | list[str]) -> PolicySet:
        """The subset named by ``names`` (in this set's order)."""
        wanted = set(names)
        return PolicySet(
            policies=tuple(p for p in self.policies if p.name in wanted), files=self.files
        )


# --- what exists in the account ---------------------------------------------


@dataclass(frozen=True)
class BlockDevice:
    device_name: str
    volume_id: str


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class VolumeAttachment:
    instance_id: str
    device: str


@dataclass(frozen=True)
class Volume:
    volume_id: str
    region: str
    availability_zone: str = ""
    size_gib: int = 0
    volume_type: str = "gp3"
    state: str = "in-use"
    tags: Tags = field(default_factory=dict)
    attachments: tuple[VolumeAttachment, ...] = ()


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
    regions: tuple[str, ...]
    instances: tuple[Instance, ...] = ()
    volumes: tuple[Volume, ...] = ()
    #: managed snapshots (``CreatedBy=SmartVault``); others are never read
    snapshots: tuple[Snapshot, ...] = ()
    images: tuple[Image, ...] = ()


# --- the plan --------------------------------------------------


@dataclass(frozen=True)
class CreateAction:
    """Take one recovery point: one ``CreateSnapshots`` (instance) or ``CreateSnapshot``."""

    type: ClassVar[str] = "create"
    region: str
    policy: str
    resource_id: str
    resource_type: ResourceType
    recovery_point: str
    slot: datetime
    volume_ids: tuple[str, ...]
    reason: str
    #: every tag to write at creation, computed by the planner
    tags: Tags = field(default_factory=dict)
    exclude_boot_volume: bool = False
    #: key -> whole value of each tag in ``tags`` cut to 256 characters (for the audit record)
    full_tag_values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _RecoveryPointAction:
    """An action on the snapshots of a recovery point that exists."""

    region: str
    policy: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    created_at: datetime
    reason: str


@dataclass(frozen=True)
class DeleteAction(_RecoveryPointAction):
    """Delete a recovery point's snapshots: retention keeps it no more, or it failed."""

    type: ClassVar[str] = "delete"


@dataclass(frozen=True)
class ArchiveAction(_RecoveryPointAction):
    """Move a retained recovery point's snapshots to the EBS archive tier."""

    type: ClassVar[str] = "archive"


@dataclass(frozen=True)
class CopyAction:
    type: ClassVar[str] = "copy"
    region: str
    policy: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    created_at: datetime
    target_region: str
    reason: str
    kms_key_id: str | None = None


Action = CreateAction | DeleteAction | ArchiveAction | CopyAction


@dataclass(frozen=True)
class Kept:
    region: str
    policy: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    created_at: datetime
    #: the rules that keep it: keep_last, max_age, hourly, daily, weekly, monthly,
    #: yearly, disabled (its policy is disabled), pending (not yet completed)
    kept_by: tuple[str, ...]


@dataclass(frozen=True)
class Skipped:
    region: str
    policy: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Orphan:
    """Managed snapshots whose policy is in no loaded file: listed, never deleted."""

    region: str
    policy: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class PlanWarning:
    message: str
    policy: str | None = None
    resource_id: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class PolicySlot:
    name: str
    file: str
    #: None for a disabled policy
    slot: datetime | None


@dataclass(frozen=True)
class Plan:
    at: datetime
    generated_at: datetime
    account_id: str
    regions: tuple[str, ...]
    policies: tuple[PolicySlot, ...] = ()
    actions: tuple[Action, ...] = ()
    kept: tuple[Kept, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    orphans: tuple[Orphan, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    format_version: int = 1

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTION_TYPES, 0)
        for action in self.actions:
            counts[action.type] += 1
        counts["kept"] = len(self.kept)
        counts["skipped"] = len(self.skipped)
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)


# --- audit -----------------------------------------------------

AuditAction = Literal["create", "delete", "archive", "copy", "restore", "notify"]
Outcome = Literal["pending", "succeeded", "failed", "skipped"]


@dataclass(frozen=True)
class AuditRecord:
    run_id: str
    #: aware, UTC
    timestamp: datetime
    action: AuditAction
    outcome: Outcome
    policy: str
    region: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...] = ()
    reason: str = ""
    error: str = ""
    actor: str = ""
    #: extra facts, e.g. the full value of a tag that had to be cut to 256 characters
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecordRef:
    """The key of one audit record, to update its outcome later."""

    pk: str
    sk: str


ClaimStatus = Literal["claimed", "held", "done"]


@dataclass(frozen=True)
class ClaimResult:
    """What claiming a recovery point (or a copy of one) found.

    ``claimed``: this run now holds it until ``lease_until``. ``held``: another run
    (``run_id``) holds a live lease. ``done``: run ``run_id`` completed it with
    ``snapshot_ids``. ``version`` guards a take-over.
    """

    status: ClaimStatus
    recovery_point: str
    run_id: str
    lease_until: datetime
    snapshot_ids: tuple[str, ...] = ()
    version: int = 0


# --- recovery-point ids ---------------------------------------------


# Exactly what SmartVault writes: a policy name (§2: never a "/"), a resource id
# (instance and volume ids are letters, digits and "-"), a UTC minute.
_RECOVERY_POINT_RE = re.compile(
    r"(?P<policy>[a-z0-9][a-z0-9-]{0,62})/(?P<resource>[A-Za-z0-9][A-Za-z0-9-]{0,63})/"
    r"(?P<slot>[0-9]{8}T[0-9]{4}Z)"
)


@dataclass(frozen=True)
class RecoveryPointId:
    """``<policy>/<resource-id>/<slot as %Y%m%dT%H%MZ, UTC>``: the one home of that format."""

    policy: str
    resource_id: str
    #: aware, UTC, whole minutes
    slot: datetime

    @staticmethod
    def format(policy: str, resource_id: str, slot: datetime) -> str:
        """The id of ``resource_id``'s recovery point at ``slot``: deterministic, so retries
        find what they made."""
        return f"{policy}/{resource_id}/{slot.astimezone(UTC).strftime(RECOVERY_POINT_SLOT_FORMAT)}"

    @classmethod
    def parse(cls, text: str) -> RecoveryPointId | None:
        """The parts of an id exactly as :meth:`format` writes it; None for anything else."""
        match = _RECOVERY_POINT_RE.fullmatch(text)
        if match is None:
            return None
        try:  # the regex fixed the form; this refuses days that do not exist (20261131)
            slot = datetime.fromisoformat(match["slot"])
        except ValueError:
            return None
        policy, resource_id, _ = match.groups()
        return cls(policy, resource_id, slot)

    def __str__(self) -> str:
        return self.format(self.policy, self.resource_id, self.slot)


def recovery_point_id(policy: str, resource_id: str, slot: datetime) -> str:
    """``<policy>/<resource-id>/<slot as %Y%m%dT%H%MZ>``: :meth:`RecoveryPointId.format`."""
    return RecoveryPointId.format(policy, resource_id, slot)


def read_recovery_point(
    snapshot: Snapshot, resource_type: ResourceType | None
) -> RecoveryPointId | str:
    """The recovery point a managed snapshot is part of, or why it is part of none.

    It is part of one only when its ``smartvault:recovery-point`` tag parses and agrees with
    its own tags (DESIGN §1): the same policy; the resource in ``InstanceId`` (instance
    policies) or its own VolumeId (volume policies; a copy, with ``smartvault:source``, has
    an arbitrary VolumeId and is exempt); the slot in ``smartvault:slot`` (the same instant).
    ``resource_type`` is None when the policy is not loaded: then ``InstanceId`` must agree
    when the snapshot has one, else its VolumeId (unless a copy). The reason names the
    tag and what it disagrees with.
    """
    tags = snapshot.tags
    text = tags.get(TAG_RECOVERY_POINT)
    if not text:
        return f"it has no {TAG_RECOVERY_POINT} tag"
    rp = RecoveryPointId.parse(text)
    if rp is None:
        return (
            f"its {TAG_RECOVERY_POINT} tag {text!r} does not read as "
            "<policy>/<resource-id>/<slot>, with the slot as YYYYMMDDTHHMMZ"
        )
    said = "its " + TAG_RECOVERY_POINT + " tag"  # not an f-string: this is the hot path
    policy = tags.get(TAG_POLICY)
    if rp.policy != policy:
        return f"{said} names policy {rp.policy!r}, but its {TAG_POLICY} tag is {policy!r}"
    instance_id = tags.get(TAG_INSTANCE_ID)
    is_copy = TAG_SOURCE in tags
    if resource_type == "instance" or (resource_type is None and instance_id is not None):
        if instance_id is None:
            return f"{said} names resource {rp.resource_id!r}, but it has no {TAG_INSTANCE_ID} tag"
        if instance_id != rp.resource_id:
            return (
                f"{said} names resource {rp.resource_id!r}, but its {TAG_INSTANCE_ID} tag is "
                f"{instance_id!r}"
            )
    elif not is_copy and snapshot.volume_id != rp.resource_id:
        return (
            f"{said} names resource {rp.resource_id!r}, but it is a snapshot of volume "
            f"{snapshot.volume_id}"
        )
    slot_text = tags.get(TAG_SLOT)
    if slot_text is None:
        return f"{said} names slot {iso_utc(rp.slot)}, but it has no {TAG_SLOT} tag"
    if parse_iso_utc(slot_text) != rp.slot:
        return f"{said} names slot {iso_utc(rp.slot)}, but its {TAG_SLOT} tag is {slot_text!r}"
    return rp
