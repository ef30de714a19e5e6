"""Restoring a recovery point, decided without AWS: finding, choosing, the volumes, refusals.

Pure: the caller reads the snapshots, the original volumes that still exist, the
``--attach-to`` instance and the region's zones, and this module decides everything a
restore does (:class:`~smartvault.core.model.restore.RestorePlan`) or why it must not
(:class:`Refused`, raised before anything is created). docs/restore.md says the rules
for operators.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from typing import Final

from smartvault.core.model.account import Instance
from smartvault.core.model.account import Snapshot
from smartvault.core.model.account import Volume
from smartvault.core.model.policy import ResourceType
from smartvault.core.model.recovery_points import RecoveryPointId
from smartvault.core.model.recovery_points import is_managed
from smartvault.core.model.recovery_points import read_recovery_point
from smartvault.core.model.restore import FoundPoint
from smartvault.core.model.restore import PointState
from smartvault.core.model.restore import RestorePlan
from smartvault.core.model.restore import SettingsSource
from smartvault.core.model.restore import VolumePlan
from smartvault.core.model.volumes import VolumeSpec
from smartvault.core.model.volumes import decode_volume_specs
from smartvault.core.planner.lineages import hold_of
from smartvault.core.planner.lineages import verified_at
from smartvault.core.tags import TAG_DEVICE
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_NAME
from smartvault.core.tags import TAG_RESTORED_FROM
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import TAG_VOLUMES
from smartvault.core.tags import TAGS_PER_RESOURCE_MAX
from smartvault.core.tags import aws_reserved
from smartvault.core.tags import device_of
from smartvault.core.tags import smartvault_reserved
from smartvault.core.times import iso_utc

#: Device names a Linux AMI boots from: a volume recorded at one of them was a root volume.
ROOT_DEVICE_NAMES: Final = frozenset({"/dev/sda1", "/dev/xvda"})
#: Data device names offered when none is recorded (AWS recommends /dev/sd[f-p]).
DATA_DEVICE_NAMES: Final = tuple(f"/dev/sd{c}" for c in "fghijklmnop")
#: The types whose IOPS may be set, and the one whose throughput may.
IOPS_TYPES: Final = frozenset({"io1", "io2", "gp3"})
THROUGHPUT_TYPES: Final = frozenset({"gp3"})
DEFAULT_TYPE: Final = "gp3"


class Refused(Exception):
    """A restore that must not go on; the message says why and what to do."""


# --- finding ------------------------------------------------------------------------


def find_points(
    snapshots: Iterable[Snapshot],
    *,
    resource_type: ResourceType | None = None,
    resource_id: str | None = None,
    recovery_point: str | None = None,
) -> list[FoundPoint]:
    """The recovery points the well-formed managed snapshots make, one per region (an
    original and its copies are separate entries), newest first; within one recovery
    point the original before its copies. A malformed snapshot is never part of one."""
    groups: dict[tuple[str, str], list[Snapshot]] = {}
    for snapshot in snapshots:
        if not is_managed(snapshot.tags):
            continue
        rp = read_recovery_point(snapshot, resource_type)
        if isinstance(rp, str):
            continue
        if resource_id is not None and rp.resource_id != resource_id:
            continue
        text = str(rp)
        if recovery_point is not None and text != recovery_point:
            continue
        groups.setdefault((snapshot.region, text), []).append(snapshot)
    points = [_point(region, text, members) for (region, text), members in groups.items()]
    points.sort(key=lambda p: (p.recovery_point, p.is_copy, p.region))
    points.sort(key=lambda p: p.created_at, reverse=True)
    return points


def _point(region: str, text: str, members: list[Snapshot]) -> FoundPoint:
    rp = RecoveryPointId.parse(text)
    assert rp is not None  # read_recovery_point parsed it
    snapshots = tuple(sorted({s.snapshot_id: s for s in members}.values(), key=_by_id))
    states = {s.state for s in snapshots}
    state: PointState = (
        "failed" if "error" in states else "completed" if states == {"completed"} else "pending"
    )
    verified = verified_at(list(snapshots))
    return FoundPoint(
        region=region,
        recovery_point=text,
        policy=rp.policy,
        resource_id=rp.resource_id,
        created_at=min(s.start_time for s in snapshots),
        snapshots=snapshots,
        state=state,
        sources=tuple(s.tags[TAG_SOURCE] for s in snapshots if s.tags.get(TAG_SOURCE)),
        # as the planner reads it: every snapshot carries a readable time, the oldest
        verified=iso_utc(verified) if verified is not None else "",
        held=hold_of(snapshots) or "",
    )


def _by_id(snapshot: Snapshot) -> str:
    return snapshot.snapshot_id


def archived(point: FoundPoint, now: datetime) -> tuple[str, ...]:
    """Its snapshots in the archive tier that are not temporarily restored now."""
    return tuple(
        s.snapshot_id
        for s in point.snapshots
        if s.storage_tier == "archive" and (s.restore_expiry is None or s.restore_expiry <= now)
    )


def tier_text(point: FoundPoint, now: datetime) -> str:
    """``standard``, ``archive``, or ``archive, restored until <time>``."""
    if archived(point, now):
        return "archive"
    expiries = [s.restore_expiry for s in point.snapshots if s.restore_expiry is not None]
    if expiries:
        return f"archive, restored until {iso_utc(min(expiries))}"
    return "standard"


# --- choosing -----------------------------------------------------------------------


def check_resource(recovery_point: str, resource_id: str) -> None:
    """Refuse ``--recovery-point`` naming another resource than ``--instance``/``--volume``."""
    rp = RecoveryPointId.parse(recovery_point)
    if rp is None:
        raise Refused(
            f"{recovery_point!r} is not a recovery point id (<policy>/<resource-id>/"
            f"<YYYYMMDDTHHMMZ>); list them with `smartvault restore --instance ID --list`"
        )
    if rp.resource_id != resource_id:
        raise Refused(
            f"recovery point {recovery_point} is of {rp.resource_id}, not {resource_id}: "
            f"list {resource_id}'s with `smartvault restore {_flag(resource_id)} "
            f"{resource_id} --list`"
        )


def choose_by_id(
    points: Sequence[FoundPoint],
    recovery_point: str,
    *,
    region: str | None,
    searched: Sequence[str],
) -> FoundPoint:
    """The recovery point ``recovery_point`` in the region to restore in: ``region`` when
    given, else the original's, else the one region that has a copy."""
    found = [p for p in points if p.recovery_point == recovery_point]
    if not found:
        rp = RecoveryPointId.parse(recovery_point)
        hint = (
            f"`smartvault restore {_flag(rp.resource_id)} {rp.resource_id} --list`"
            if rp
            else "`smartvault restore --instance ID --list`"
        )
        raise Refused(
            f"no recovery point {recovery_point} in {_regions(searched)}: list them with "
            f"{hint} (add regions with --region)"
        )
    return _in_region(found, recovery_point, region)


def choose_newest(
    points: Sequence[FoundPoint],
    resource_id: str,
    *,
    before: datetime,
    region: str | None,
    searched: Sequence[str],
) -> FoundPoint:
    """The newest completed recovery point of ``resource_id`` created before ``before``
    (in ``region`` when given), in the region :func:`choose_by_id` would pick."""
    eligible = [
        p
        for p in points
        if p.resource_id == resource_id
        and p.state == "completed"
        and p.created_at < before
        and (region is None or p.region == region)
    ]
    if not eligible:
        where = region or _regions(searched)
        raise Refused(
            f"no completed recovery point of {resource_id} before {iso_utc(before)} in "
            f"{where}: list them with `smartvault restore {_flag(resource_id)} {resource_id} "
            "--list` (add regions with --region)"
        )
    newest = max(eligible, key=lambda p: p.created_at)
    same = [p for p in eligible if p.recovery_point == newest.recovery_point]
    return _in_region(same, newest.recovery_point, region)


def _in_region(found: Sequence[FoundPoint], recovery_point: str, region: str | None) -> FoundPoint:
    if region is not None:
        for point in found:
            if point.region == region:
                return point
        raise Refused(
            f"recovery point {recovery_point} is not in {region}; it is in "
            f"{', '.join(sorted(p.region for p in found))}: pass one of them as --region"
        )
    originals = [p for p in found if not p.is_copy]
    if originals:
        return originals[0]
    if len(found) == 1:
        return found[0]
    raise Refused(
        f"recovery point {recovery_point} exists only as copies, in "
        f"{', '.join(sorted(p.region for p in found))}: choose one with --region"
    )


def _flag(resource_id: str) -> str:
    return "--volume" if resource_id.startswith("vol-") else "--instance"


def _regions(regions: Sequence[str]) -> str:
    return ", ".join(regions) or "no region"


# --- the volumes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the restore is asked to do with the volumes."""

    #: ``--az``
    zone: str | None = None
    #: ``--attach-to``
    attach_to: str | None = None
    #: ``--force``: attach to a running instance
    force: bool = False


def plan_restore(
    point: FoundPoint,
    *,
    now: datetime,
    zones: Sequence[str],
    originals: Mapping[str, Volume],
    instance: Instance | None,
    target: Target,
) -> RestorePlan:
    """Every volume ``point`` restores to and where each is attached, or :class:`Refused`.

    ``zones``: the region's available zones; ``originals``: the original volumes that
    still exist, by id (read for an original point only: a copy's VolumeId means
    nothing); ``instance``: the ``--attach-to`` instance as read in the point's region
    (None: not there).
    """
    if point.state != "completed":
        bad = [s.snapshot_id for s in point.snapshots if s.state != "completed"]
        raise Refused(
            f"recovery point {point.recovery_point} in {point.region} is {point.state} "
            f"({', '.join(bad)} not completed): choose another with --list"
        )
    if target.attach_to is not None:
        _check_instance(point, instance, target)
    zone, zone_note = _zone(point, zones, originals, instance, target)
    volumes = [_volume(point, snapshot, originals, zone) for snapshot in point.snapshots]
    if target.attach_to is not None and instance is not None:
        volumes = _attachments(volumes, instance)
    return RestorePlan(
        point=point,
        zone=zone,
        zone_note=zone_note,
        volumes=tuple(volumes),
        attach_to=target.attach_to,
        archived=archived(point, now),
    )


def _check_instance(point: FoundPoint, instance: Instance | None, target: Target) -> None:
    name = target.attach_to
    if instance is None:
        raise Refused(
            f"instance {name} is not in {point.region}, where recovery point "
            f"{point.recovery_point} is: attach to an instance in {point.region}, or restore "
            "a copy in the instance's region (--region)"
        )
    if target.zone is not None and instance.availability_zone != target.zone:
        raise Refused(
            f"instance {name} is in {instance.availability_zone}, not {target.zone}: a "
            f"volume attaches only in its own zone; pass --az {instance.availability_zone} "
            "or leave --az out"
        )
    if instance.state == "running" and not target.force:
        raise Refused(
            f"instance {name} is running: attaching copies of its filesystems while it runs "
            "risks one filesystem mounted twice (same UUID), which corrupts it; stop the "
            "instance, or pass --force if the volumes will be mounted at new mount points"
        )
    if instance.state not in ("running", "stopped"):
        raise Refused(
            f"instance {name} is {instance.state}: wait until it is stopped (or running, "
            "with --force), then run again"
        )


def _zone(
    point: FoundPoint,
    zones: Sequence[str],
    originals: Mapping[str, Volume],
    instance: Instance | None,
    target: Target,
) -> tuple[str, str]:
    if target.zone is not None:
        if target.zone not in zones:
            raise Refused(
                f"zone {target.zone} is not an available zone of {point.region}, where "
                f"recovery point {point.recovery_point} is; its zones are "
                f"{', '.join(zones) or 'none'}"
            )
        return target.zone, "--az"
    if target.attach_to is not None and instance is not None:
        return instance.availability_zone, f"the zone of {instance.instance_id} (--attach-to)"
    for snapshot in point.snapshots:
        original = originals.get(snapshot.volume_id)
        if original is not None and original.availability_zone:
            return (
                original.availability_zone,
                f"the zone of the original volume {original.volume_id}",
            )
    if not zones:
        raise Refused(f"{point.region} has no available zone to restore in")
    return zones[0], f"the first available zone of {point.region} (pass --az to choose another)"


def _volume(
    point: FoundPoint, snapshot: Snapshot, originals: Mapping[str, Volume], zone: str
) -> VolumePlan:
    tags = snapshot.tags
    instance_point = TAG_INSTANCE_ID in tags
    if instance_point:
        device = tags.get(TAG_DEVICE) if point.is_copy else device_of(tags, snapshot.volume_id)
    else:
        device = None
    spec = _recorded(tags, device, point.resource_id, instance_point)
    original = None if point.is_copy else originals.get(snapshot.volume_id)
    source: SettingsSource
    if spec is not None:
        source, note = "recorded", f"recorded at backup ({TAG_VOLUMES})"
    elif original is not None:
        spec = VolumeSpec(original.volume_type, original.iops, original.throughput, original.tags)
        source, note = "original", f"from the original volume {original.volume_id}"
    else:
        spec = VolumeSpec(DEFAULT_TYPE)
        source = "default"
        note = (
            f"not recorded ({TAG_VOLUMES}) and the original volume is gone: "
            "gp3 at its baseline (3,000 IOPS, 125 MiB/s)"
        )
    return VolumePlan(
        snapshot_id=snapshot.snapshot_id,
        size_gib=snapshot.volume_size_gib,
        volume_type=spec.volume_type,
        iops=spec.iops if spec.volume_type in IOPS_TYPES else None,
        throughput=spec.throughput if spec.volume_type in THROUGHPUT_TYPES else None,
        encrypted=snapshot.encrypted,
        kms_key_id=snapshot.kms_key_id,
        zone=zone,
        tags=restored_tags(spec.tags, point.recovery_point),
        settings_from=source,
        settings_note=note,
        device=device,
        root=device in ROOT_DEVICE_NAMES,
    )


def _recorded(
    tags: Mapping[str, str], device: str | None, resource_id: str, instance_point: bool
) -> VolumeSpec | None:
    specs = decode_volume_specs(tags.get(TAG_VOLUMES))
    if instance_point:
        return specs.get(device) if device else None
    if resource_id in specs:
        return specs[resource_id]
    return next(iter(specs.values())) if len(specs) == 1 else None


def restored_tags(recorded: Mapping[str, str], recovery_point: str) -> dict[str, str]:
    """The recorded volume tags less ``aws:*`` and SmartVault's own keys (a restored
    volume must never look like a backup's or a restore test's, which the deployment
    role may delete), plus ``smartvault:restored-from``; at most EC2's 50 tags."""
    kept = sorted(k for k in recorded if not aws_reserved(k) and not smartvault_reserved(k))
    kept.sort(key=lambda k: k != TAG_NAME)
    tags = {k: recorded[k] for k in kept[: TAGS_PER_RESOURCE_MAX - 1]}
    tags[TAG_RESTORED_FROM] = recovery_point
    return tags


def _attachments(volumes: list[VolumePlan], instance: Instance) -> list[VolumePlan]:
    """Each volume at its original device name; the root volume made, not attached."""
    roots = set(ROOT_DEVICE_NAMES)
    if instance.root_device_name:
        roots.add(instance.root_device_name)
    used = {_same_device(d.device_name): d for d in instance.block_devices}
    planned: list[VolumePlan] = []
    chosen: set[str] = set()
    for volume in volumes:
        if volume.device in roots:
            planned.append(
                replace(
                    volume,
                    root=True,
                    attach_note=(
                        f"the original root volume ({volume.device}): made, not attached; "
                        "see docs/restore.md to use it as a root volume"
                    ),
                )
            )
            continue
        if volume.device is not None:
            key = _same_device(volume.device)
            if key in used:
                taken = used[key]
                raise Refused(
                    f"device {volume.device} is taken on {instance.instance_id} (by "
                    f"{taken.volume_id} at {taken.device_name}): detach it, or attach to "
                    "another instance; nothing was created"
                )
            chosen.add(key)
            planned.append(replace(volume, attach_device=volume.device))
            continue
        free = [
            d
            for d in DATA_DEVICE_NAMES
            if _same_device(d) not in used
            and _same_device(d) not in chosen
            and d not in {v.device for v in volumes}
        ]
        if not free:
            raise Refused(
                f"no free device name /dev/sdf-/dev/sdp on {instance.instance_id} for the "
                f"volume from {volume.snapshot_id}: detach a volume or attach to another instance"
            )
        chosen.add(_same_device(free[0]))
        planned.append(
            replace(
                volume,
                attach_device=free[0],
                attach_note="no device name recorded: the first free data device name",
            )
        )
    return planned


def _same_device(name: str) -> str:
    """``/dev/sdf`` and ``/dev/xvdf`` (and ``sdf``) are one device to a Xen instance."""
    short = name.removeprefix("/dev/")
    return "sd" + short[3:] if short.startswith("xvd") else short


def free_device(instance: Instance | None, taken: Iterable[str] = ()) -> str:
    """The first data device name free on ``instance`` (as read) and not in ``taken``."""
    used = {_same_device(d.device_name) for d in instance.block_devices} if instance else set()
    used.update(_same_device(d) for d in taken)
    return next((d for d in DATA_DEVICE_NAMES if _same_device(d) not in used), "/dev/sdf")
