"""Restoring a recovery point: the reads it is decided on, and the audited changes.

The decisions are :mod:`smartvault.core.restore`'s; this module reads what they need
(the snapshots, the original volumes, the ``--attach-to`` instance, the zones) and
carries out a :class:`~smartvault.core.model.restore.RestorePlan`:

- its ``restore`` audit record is written ``pending`` before the first CreateVolume, and
  is ``succeeded`` or ``failed`` at the end, naming every volume made;
- each CreateVolume carries a client token of this run and its snapshot, so a call that
  is retried never makes a second volume;
- the volumes are waited for (within ``--wait``) before any is attached, and a failure
  part-way leaves what was made in place, named, for the person to use or delete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from smartvault.apply.ports import Ec2
from smartvault.apply.step import RunContext
from smartvault.apply.waiting import wait_available
from smartvault.core import restore as decide
from smartvault.core.model import AuditRecord
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import Instance
from smartvault.core.model import Snapshot
from smartvault.core.model import Volume
from smartvault.core.model.policy import ResourceType
from smartvault.core.model.restore import FoundPoint
from smartvault.core.model.restore import MadeVolume
from smartvault.core.model.restore import RestorePlan
from smartvault.core.model.restore import VolumePlan
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_RESTORED_FROM
from smartvault.errors import AuditError
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown

#: EC2 keeps a ClientToken to 64 ASCII characters.
CLIENT_TOKEN_MAX = 64


# --- reads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """The recovery points found, and the regions that could not be read (with why)."""

    points: tuple[FoundPoint, ...]
    regions: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...] = ()


def search(
    ec2: Ec2,
    regions: Sequence[str],
    *,
    resource_type: ResourceType | None,
    resource_id: str | None = None,
    recovery_point: str | None = None,
) -> Search:
    """The recovery points of ``resource_id`` (or the one ``recovery_point``) in every
    region, copies included. One DescribeSnapshots per region, filtered by tag: the
    instance's ``InstanceId``, or for a volume ``smartvault:recovery-point`` matching
    ``*/<volume-id>/*`` (EC2 honours ``*`` in filter values)."""
    if recovery_point is not None:
        filter_name, values = f"tag:{TAG_RECOVERY_POINT}", [recovery_point]
    elif resource_type == "volume":
        filter_name, values = f"tag:{TAG_RECOVERY_POINT}", [f"*/{resource_id}/*"]
    else:
        filter_name, values = f"tag:{TAG_INSTANCE_ID}", [str(resource_id)]
    snapshots: list[Snapshot] = []
    unreadable: list[tuple[str, str]] = []
    for region in regions:
        try:
            snapshots.extend(ec2.find(region, filter_name, values))
        except Ec2CallFailed as exc:
            unreadable.append((region, str(exc)))
    points = decide.find_points(
        snapshots,
        resource_type=resource_type,
        resource_id=resource_id,
        recovery_point=recovery_point,
    )
    return Search(tuple(points), tuple(regions), tuple(unreadable))


@dataclass(frozen=True)
class Looked:
    """What a restore is decided on, besides the recovery point itself."""

    zones: tuple[str, ...]
    originals: dict[str, Volume]
    instance: Instance | None


def look(ctx: RunContext, point: FoundPoint, attach_to: str | None) -> Looked:
    """The region's zones, the original volumes that still exist (for an original point
    only: a copy's VolumeId names nothing) and the ``attach_to`` instance."""
    region = point.region
    originals: dict[str, Volume] = {}
    if not point.is_copy:
        ids = sorted({s.volume_id for s in point.snapshots if s.volume_id.startswith("vol-")})
        if ids:
            found = ctx.volumes.volumes(region, "volume-id", ids)
            originals = {v.volume_id: v for v in found}
    instance = ctx.volumes.instance(region, attach_to) if attach_to else None
    return Looked(ctx.volumes.zones(region), originals, instance)


# --- changes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Thawed:
    """What bringing archived snapshots back did: hours AWS said, per snapshot."""

    hours: tuple[tuple[str, int | None], ...]
    #: snapshots already on their way back (EC2 said so)
    already: tuple[str, ...] = ()
    error: str = ""
    audit_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.audit_error


@dataclass(frozen=True)
class Restored:
    """How a restore ended: the volumes made (with where each was attached)."""

    made: tuple[MadeVolume, ...]
    error: str = ""
    audit_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.audit_error


class RestoreStep:
    """Carries out one :class:`RestorePlan`, audited, in the context of one run."""

    def __init__(
        self, ctx: RunContext, *, on_progress: Callable[[str], None] = lambda _line: None
    ) -> None:
        self._ctx = ctx
        self._progress = on_progress

    def bring_back(self, plan: RestorePlan, days: int) -> Thawed:
        """RestoreSnapshotTier (temporary, ``days``) for each archived snapshot; audited.
        Never waits: AWS takes hours, and the same restore is run again when done."""
        ref = self._pending(
            plan,
            f"restore {len(plan.archived)} snapshot(s) from the archive tier for {days} days",
            {"archived": ",".join(plan.archived)},
        )
        hours: list[tuple[str, int | None]] = []
        already: list[str] = []
        for snapshot_id in plan.archived:
            try:
                took = self._ctx.volumes.restore_from_archive(plan.region, snapshot_id, days)
            except Ec2CallFailed as exc:
                if exc.code == "IncorrectState":  # a restore already under way
                    already.append(snapshot_id)
                    continue
                error = f"{exc}" + (
                    f"; already asked for: {', '.join(s for s, _ in hours)}" if hours else ""
                )
                audit_error = self._ctx.trail.settle(ref, "failed", error=error)
                return Thawed(tuple(hours), tuple(already), error, audit_error)
            hours.append((snapshot_id, took))
        audit_error = self._ctx.trail.settle(
            ref,
            "succeeded",
            reason="brought back from the archive tier; no volume made yet: run the restore "
            "again when they are back",
            details={"hours": json.dumps(dict(hours), sort_keys=True)},
        )
        return Thawed(tuple(hours), tuple(already), audit_error=audit_error)

    def run(self, plan: RestorePlan, *, wait: timedelta) -> Restored:
        """Create every volume, wait until all are ``available`` (at most ``wait``), attach
        them; the audit record says what was planned, made and attached."""
        ctx = self._ctx
        planned = [_planned(v) for v in plan.volumes]
        try:
            ref = self._pending(
                plan,
                f"restore {plan.point.recovery_point} to {len(plan.volumes)} new volume(s) in "
                f"{plan.zone}" + (f", attached to {plan.attach_to}" if plan.attach_to else ""),
                {"planned": json.dumps(planned, sort_keys=True)},
            )
        except AuditError as exc:
            return Restored((), f"nothing was made: {exc}")
        made: list[MadeVolume] = []
        by_snapshot: dict[str, VolumePlan] = {v.snapshot_id: v for v in plan.volumes}
        for volume in plan.volumes:
            try:
                new = ctx.volumes.create_volume(
                    plan.region,
                    volume.snapshot_id,
                    zone=volume.zone,
                    volume_type=volume.volume_type,
                    tags=volume.tags,
                    client_token=self._token(volume.snapshot_id),
                    iops=volume.iops,
                    throughput=volume.throughput,
                )
            except Ec2CallFailed as exc:
                maybe = (
                    f"; a volume from {volume.snapshot_id} may have been made: look for volumes "
                    f"tagged {TAG_RESTORED_FROM}={plan.point.recovery_point}"
                    if isinstance(exc, Ec2OutcomeUnknown)
                    else ""
                )
                return self._failed(ref, plan, made, f"{exc}{maybe}")
            made.append(MadeVolume(new.volume_id, volume.snapshot_id, None))
        ids = [m.volume_id for m in made]
        started = ctx.clock()
        until = started + wait

        def sleep(seconds: float) -> None:
            elapsed = int((ctx.clock() - started).total_seconds())
            self._progress(
                f"waiting for {len(ids)} volume(s) to become available ({elapsed}s of at most "
                f"{int(wait.total_seconds())}s)"
            )
            ctx.sleep(seconds)

        waited = wait_available(
            ctx.volumes, plan.region, ids, until=until, clock=ctx.clock, sleep=sleep
        )
        if waited.end != "available":
            states = ", ".join(
                f"{v} {waited.volumes[v].state if v in waited.volumes else 'not listed'}"
                for v in waited.not_available() or [i for i in ids if i not in waited.volumes]
            )
            why = {
                "timed_out": f"not available after --wait {int(wait.total_seconds())}s: {states}",
                "error": waited.detail,
                "unreadable": f"could not read the new volumes: {waited.detail}",
                "stopped": f"stopped while waiting: {states}",
            }[waited.end]
            return self._failed(ref, plan, made, why)
        attached: list[MadeVolume] = []
        for index, item in enumerate(made):
            device = by_snapshot[item.snapshot_id].attach_device
            if plan.attach_to and device:
                try:
                    ctx.volumes.attach(plan.region, item.volume_id, plan.attach_to, device)
                except Ec2CallFailed as exc:
                    return self._failed(ref, plan, [*attached, *made[index:]], str(exc))
                item = MadeVolume(item.volume_id, item.snapshot_id, device)
            attached.append(item)
        audit_error = ctx.trail.settle(
            ref,
            "succeeded",
            snapshot_ids=plan.snapshot_ids,
            details={"volumes": json.dumps([_made(m) for m in attached], sort_keys=True)},
        )
        return Restored(tuple(attached), audit_error=audit_error)

    def _pending(self, plan: RestorePlan, reason: str, details: dict[str, str]) -> AuditRecordRef:
        ctx = self._ctx
        point = plan.point
        return ctx.trail.pending(
            AuditRecord(
                run_id=ctx.ledger.run_id,
                timestamp=ctx.clock(),
                action="restore",
                outcome="pending",
                policy=point.policy,
                region=point.region,
                resource_id=point.resource_id,
                recovery_point=point.recovery_point,
                snapshot_ids=point.snapshot_ids,
                reason=reason,
                actor=ctx.trail.actor,
                details={**details, "attach_to": plan.attach_to or "", "zone": plan.zone},
            )
        )

    def _failed(
        self, ref: AuditRecordRef, plan: RestorePlan, made: Sequence[MadeVolume], why: str
    ) -> Restored:
        error = f"{why}; {made_text(plan.region, made)}"
        audit_error = self._ctx.trail.settle(
            ref,
            "failed",
            error=error,
            snapshot_ids=plan.snapshot_ids,
            details={"volumes": json.dumps([_made(m) for m in made], sort_keys=True)},
        )
        return Restored(tuple(made), error, audit_error)

    def _token(self, snapshot_id: str) -> str:
        """One per run and snapshot: a retried CreateVolume returns the volume it made."""
        return f"{self._ctx.ledger.run_id}-{snapshot_id}"[:CLIENT_TOKEN_MAX]


def made_text(region: str, made: Sequence[MadeVolume]) -> str:
    """Every volume made so far, for the person to use or delete."""
    if not made:
        return "no volume was made"
    listed = ", ".join(
        f"{m.volume_id} (from {m.snapshot_id}"
        + (f", attached at {m.device})" if m.device else ", not attached)")
        for m in made
    )
    return (
        f"volumes made in {region}: {listed}: use them, or delete each with "
        f"`aws ec2 delete-volume --region {region} --volume-id VOLUME`"
    )


def _planned(volume: VolumePlan) -> dict[str, object]:
    return {
        "snapshot_id": volume.snapshot_id,
        "size_gib": volume.size_gib,
        "type": volume.volume_type,
        "iops": volume.iops,
        "throughput": volume.throughput,
        "encrypted": volume.encrypted,
        "kms_key_id": volume.kms_key_id,
        "zone": volume.zone,
        "device": volume.attach_device,
        "settings_from": volume.settings_from,
    }


def _made(volume: MadeVolume) -> dict[str, str | None]:
    return {
        "volume_id": volume.volume_id,
        "snapshot_id": volume.snapshot_id,
        "device": volume.device,
    }
