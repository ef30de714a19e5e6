"""Holding and releasing a recovery point: find its snapshots, then tag them, audited.

What a hold means is the planner's (:mod:`smartvault.core.planner.decisions`); this
module changes the tags, the way every change of SmartVault is made:

- one ``hold`` or ``release`` audit record per region touched, written ``pending``
  before its CreateTags or DeleteTags call and ``succeeded`` or ``failed`` after it,
  naming the snapshots, the reason and who acted: no snapshot's hold changes without
  its record;
- when a record cannot be written, nothing more is changed (the regions not reached are
  said so);
- ``release`` touches only the snapshots that carry a hold tag; a region where none does
  needs no change and gets no record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from typing import Protocol

from smartvault.apply.step import RunContext
from smartvault.core.model import AuditRecord
from smartvault.core.model import Outcome
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import ResourceType
from smartvault.core.model import Snapshot
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_HOLD_BY
from smartvault.errors import AuditError
from smartvault.errors import Ec2CallFailed

Verb = Literal["hold", "release"]


class HoldTags(Protocol):
    """The calls of :class:`~smartvault.aws.holds.Ec2Holds`."""

    def point_snapshots(
        self, region: str, recovery_point: str, resource_type: ResourceType | None
    ) -> list[Snapshot]: ...

    def hold(self, region: str, snapshot_ids: Sequence[str], reason: str, by: str) -> None: ...

    def release(self, region: str, snapshot_ids: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class Found:
    """A recovery point's snapshots in each region searched where it has any, and the
    regions that could not be read (with why)."""

    regions: tuple[str, ...]
    snapshots: tuple[tuple[str, tuple[Snapshot, ...]], ...]
    unreadable: tuple[tuple[str, str], ...] = ()

    @property
    def held(self) -> bool:
        """Any snapshot carries a hold tag (a reason, or only who set it)."""
        return any(_carries_hold(s) for _, members in self.snapshots for s in members)

    def reasons(self) -> tuple[str, ...]:
        """The hold reasons on the snapshots now, sorted, each once."""
        return tuple(
            sorted({r for _, ms in self.snapshots for s in ms if (r := s.tags.get(TAG_HOLD))})
        )


def find(
    tags: HoldTags, regions: Sequence[str], recovery_point: str, resource_type: ResourceType | None
) -> Found:
    """The snapshots of ``recovery_point`` in every region (one read per region)."""
    found: list[tuple[str, tuple[Snapshot, ...]]] = []
    unreadable: list[tuple[str, str]] = []
    for region in regions:
        try:
            members = tags.point_snapshots(region, recovery_point, resource_type)
        except Ec2CallFailed as exc:
            unreadable.append((region, str(exc)))
            continue
        if members:
            found.append((region, tuple(members)))
    return Found(tuple(regions), tuple(found), tuple(unreadable))


@dataclass(frozen=True)
class Changed:
    """What holding or releasing did in one region."""

    region: str
    snapshot_ids: tuple[str, ...]
    #: ``succeeded``, ``failed``, or ``skipped`` for a region not reached because the
    #: audit table failed first
    outcome: Outcome
    error: str = ""
    #: what is missing from the audit log, when its record could not be finished
    audit_error: str = ""


def change(
    ctx: RunContext,
    tags: HoldTags,
    verb: Verb,
    found: Found,
    recovery_point: str,
    *,
    reason: str = "",
    by: str = "",
) -> list[Changed]:
    """Hold (``reason``, ``by``) or release the snapshots found, region by region."""
    rp = RecoveryPointId.parse(recovery_point)
    assert rp is not None  # the command checked it
    done: list[Changed] = []
    stopped = ""
    for region, members in found.snapshots:
        targets = members if verb == "hold" else tuple(s for s in members if _carries_hold(s))
        ids = tuple(s.snapshot_id for s in targets)
        if not ids:
            continue
        if stopped:
            done.append(Changed(region, ids, "skipped", error=f"not changed: {stopped}"))
            continue
        before = sorted({s.tags[TAG_HOLD] for s in targets if s.tags.get(TAG_HOLD)})
        before_by = sorted({s.tags[TAG_HOLD_BY] for s in targets if s.tags.get(TAG_HOLD_BY)})
        details = {"hold_by": by} if verb == "hold" else {"held_by": "; ".join(before_by)}
        if before:
            details["replaced" if verb == "hold" else "released"] = "; ".join(before)
        record = AuditRecord(
            run_id=ctx.ledger.run_id,
            timestamp=ctx.clock(),
            action=verb,
            outcome="pending",
            policy=rp.policy,
            region=region,
            resource_id=rp.resource_id,
            recovery_point=recovery_point,
            snapshot_ids=ids,
            reason=reason if verb == "hold" else "released: " + ("; ".join(before) or "no reason"),
            actor=ctx.trail.actor,
            details=details,
        )
        try:
            ref = ctx.trail.pending(record)
        except AuditError as exc:
            stopped = f"the audit record could not be written: {exc}"
            done.append(Changed(region, ids, "failed", error=f"nothing changed: {exc}"))
            continue
        try:
            if verb == "hold":
                tags.hold(region, ids, reason, by)
            else:
                tags.release(region, ids)
        except Ec2CallFailed as exc:
            audit_error = ctx.trail.settle(ref, "failed", error=str(exc), snapshot_ids=ids)
            done.append(Changed(region, ids, "failed", str(exc), audit_error))
            continue
        audit_error = ctx.trail.settle(ref, "succeeded", snapshot_ids=ids)
        if audit_error:
            stopped = audit_error
        done.append(Changed(region, ids, "succeeded", audit_error=audit_error))
    return done


def _carries_hold(snapshot: Snapshot) -> bool:
    return TAG_HOLD in snapshot.tags or TAG_HOLD_BY in snapshot.tags
