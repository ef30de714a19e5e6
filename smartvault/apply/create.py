"""The create step: claim, then look, then create, with every tag set at creation.

The look must come after the claim (or a crashed run's snapshot could be missed), and one
look per chunk of 200 creates keeps the DescribeSnapshots calls few and inside the
filter's value limit. CreateSnapshots has no idempotency token: it is sent once (again
only after throttling), and a lost answer keeps the claim for its lease so that no run
creates the recovery point again before its snapshots show.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Final

from smartvault.apply.claims import Verdict
from smartvault.apply.step import RunContext
from smartvault.core.model import ClaimResult
from smartvault.core.model import CreateAction
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import Snapshot
from smartvault.core.model import Volume
from smartvault.core.model import VolumeSpec
from smartvault.core.model import encode_volume_specs
from smartvault.core.model import is_managed
from smartvault.core.model import read_recovery_point
from smartvault.core.report import ActionResult
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import TAG_VOLUMES
from smartvault.core.tags import create_tags
from smartvault.core.times import iso_utc
from smartvault.errors import AuditError
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown
from smartvault.errors import Ec2Throttled

#: Creates claimed and looked up together: DescribeSnapshots takes 200 filter values.
CHUNK: Final = 200


@dataclass
class Claimed:
    """A chunk after its claims, its one look in EC2, and the read of its volumes."""

    claims: dict[int, ClaimResult] = field(default_factory=dict)
    found: dict[str, list[Snapshot]] = field(default_factory=dict)
    look_error: str = ""
    #: resource id -> its volumes' ``smartvault:volumes`` value, and the whole value if cut
    volume_specs: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def volumes_tag(self, resource_id: str) -> tuple[str, dict[str, str]]:
        """The ``smartvault:volumes`` value of a create (empty when there is none), and what
        its audit record says of it: the whole value when it was cut, or why it is missing."""
        if resource_id not in self.volume_specs:
            why = self.volumes_error or "none of its volumes was listed"
            return "", {"volumes_not_recorded": why}
        text, full = self.volume_specs[resource_id]
        return text, ({TAG_VOLUMES: full} if full is not None else {})

    #: why the volumes could not be read (the recovery points are made all the same)
    volumes_error: str = ""


class CreateStep:
    """Makes the recovery points that are due, each at most once."""

    workers = 1

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx

    def batches(
        self, items: Sequence[tuple[int, CreateAction]]
    ) -> Iterator[Sequence[tuple[int, CreateAction]]]:
        by_region: dict[str, list[tuple[int, CreateAction]]] = {}
        for index, action in items:
            by_region.setdefault(action.region, []).append((index, action))
        for region_items in by_region.values():
            for start in range(0, len(region_items), CHUNK):
                yield region_items[start : start + CHUNK]

    def prepare(self, batch: Sequence[tuple[int, CreateAction]]) -> Claimed:
        ctx = self._ctx
        claimed = Claimed()
        for index, action in batch:
            if ctx.ledger.stopping():
                break
            try:
                claimed.claims[index] = ctx.claims.acquire(action.recovery_point)
            except AuditError as exc:
                ctx.ledger.finish(
                    index, ActionResult(action, "failed", error=f"not created: {exc}")
                )
                break
        creates = [a for i, a in batch if i in claimed.claims]
        try:
            claimed.found = self._find(creates)
        except Ec2CallFailed as exc:
            claimed.look_error = str(exc)
            return claimed
        try:
            claimed.volume_specs = self._volume_specs(creates)
        except Ec2CallFailed as exc:
            # A backup without the record is better than no backup: a restore then takes
            # the volumes' settings from the volumes, while they exist.
            claimed.volumes_error = str(exc)
        return claimed

    def run(self, index: int, action: CreateAction, prepared: Claimed) -> ActionResult | None:
        claim = prepared.claims.get(index)
        if claim is None:
            return None
        if prepared.look_error:
            self._ctx.claims.release(action.recovery_point)
            return self._ctx.trail.final(
                action,
                ActionResult(action, "failed", error=f"not created: {prepared.look_error}"),
            )
        specs = prepared.volumes_tag(action.resource_id)
        return self._create_one(action, claim, prepared.found.get(action.recovery_point, []), specs)

    def _create_one(
        self,
        action: CreateAction,
        claim: ClaimResult,
        found: list[Snapshot],
        specs: tuple[str, dict[str, str]],
    ) -> ActionResult:
        ctx = self._ctx
        if ctx.claims.verdict(claim) is Verdict.HELD:
            return ctx.trail.final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"another run is creating it: run {claim.run_id} holds its claim "
                    f"until {iso_utc(claim.lease_until)}",
                ),
            )
        existing = self._settle_existing(action, claim, found)
        if existing is not None:
            return existing if existing.audit_error else ctx.trail.final(action, existing)
        verdict = ctx.claims.verdict(claim)
        if verdict is Verdict.RECENT:
            return ctx.trail.final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"created by run {claim.run_id} moments ago, but its snapshots "
                    f"are not listed yet; not created again before "
                    f"{iso_utc(claim.lease_until)}",
                ),
            )
        if verdict is Verdict.TAKE_OVER:
            taken = ctx.claims.take_over(action, claim, "not created")
            if isinstance(taken, ActionResult):
                return taken
            return self._create(action, taken, specs, look_again=True)
        return self._create(action, claim, specs)

    def _settle_existing(
        self, action: CreateAction, claim: ClaimResult, snapshots: Sequence[Snapshot]
    ) -> ActionResult | None:
        """The result when snapshots of the recovery point exist already (the claim completed
        or handed back as fits), still to be recorded; None when there are none."""
        rp = action.recovery_point
        errored = sorted(s.snapshot_id for s in snapshots if s.state == "error")
        live = tuple(sorted(s.snapshot_id for s in snapshots if s.state != "error"))
        if errored:
            # A failed recovery point: its policy deletes it (and that delete releases
            # the claim); creating beside it would mix good and failed snapshots under
            # one recovery point id.
            self._ctx.claims.release(rp)
            return ActionResult(
                action,
                "skipped",
                snapshot_ids=tuple(errored),
                reason=f"its snapshots {', '.join(errored)} are in state error; the slot "
                "is tried again once its policy has deleted them",
            )
        if not live:
            return None
        if claim.status != "claimed":
            return ActionResult(
                action, "skipped", live, reason=f"already created by run {claim.run_id}"
            )
        reason = f"already exists: {', '.join(live)} (made by an earlier run that did not finish)"
        try:
            self._ctx.claims.complete(rp, live)
        except AuditError as exc:
            self._ctx.trail.halt(exc)
            return ActionResult(action, "skipped", live, reason=reason, audit_error=str(exc))
        return ActionResult(action, "skipped", live, reason=reason)

    def _create(
        self,
        action: CreateAction,
        claim: ClaimResult,
        specs: tuple[str, dict[str, str]],
        *,
        look_again: bool = False,
    ) -> ActionResult:
        """Create the claimed recovery point. ``specs``: its ``smartvault:volumes`` value
        (empty when there is none) and what its audit record says of it (see
        :meth:`Claimed.volumes_tag`). ``look_again``: the claim was taken over after the chunk's
        look-up, so that look-up may miss what another run made."""
        ctx = self._ctx
        rp = action.recovery_point
        volumes_text, volumes_details = specs
        details = {**action.full_tag_values, **volumes_details}
        pending = ctx.trail.record_of(action, "pending", details=details)
        started = ctx.claims.start(action, claim, pending, "not created")
        if isinstance(started, ActionResult):
            return started
        ref, claim, taken_over = started
        if look_again or taken_over:
            try:
                found = self._find([action])
            except Ec2CallFailed as exc:
                ctx.claims.release(rp)
                return ctx.trail.update(
                    ref, ActionResult(action, "failed", error=f"not created: {exc}")
                )
            existing = self._settle_existing(action, claim, found.get(rp, []))
            if existing is not None:
                return ctx.trail.update(ref, existing)
        try:
            snapshot_ids = self._call_create(action, volumes_text)
        except Ec2OutcomeUnknown as exc:
            # EC2 may have made it without listing it yet: keep the claim for its lease
            # (never hand it back at the end of the run either), so no run creates it
            # again before the snapshot shows; the run after the lease finds it by its tag.
            ctx.claims.keep(rp)
            return ctx.trail.update(ref, ActionResult(action, "failed", error=str(exc)))
        except Ec2CallFailed as exc:
            ctx.claims.release(rp)  # refused: nothing was made
            return ctx.trail.update(ref, ActionResult(action, "failed", error=str(exc)))
        result = ctx.trail.update(ref, ActionResult(action, "succeeded", snapshot_ids))
        try:
            ctx.claims.complete(rp, snapshot_ids)
        except AuditError as exc:
            # The snapshots exist and carry the recovery point tag: later runs find them.
            ctx.trail.halt(exc)
            return replace(result, audit_error=result.audit_error or str(exc))
        return result

    def _call_create(self, action: CreateAction, volumes_text: str) -> tuple[str, ...]:
        """One CreateSnapshots (CreateSnapshot for a volume); raises Ec2CallFailed with the
        action's message, Ec2OutcomeUnknown when EC2 may have made it unseen."""
        ec2 = self._ctx.ec2
        planned = {**action.tags, TAG_VOLUMES: volumes_text} if volumes_text else action.tags
        tags = create_tags(planned, action.policy, action.recovery_point)
        description = f"SmartVault {action.recovery_point} ({action.policy}, {action.resource_id})"
        try:
            if action.resource_type == "instance":
                return ec2.create_snapshots(
                    action.region,
                    action.resource_id,
                    exclude_boot_volume=action.exclude_boot_volume,
                    description=description,
                    tags=tags,
                )
            return ec2.create_snapshot(
                action.region, action.resource_id, description=description, tags=tags
            )
        except Ec2OutcomeUnknown as exc:
            return self._after_unknown(action, exc.message)
        except Ec2Throttled as exc:
            raise Ec2CallFailed(f"not created: {exc}; the next run tries again") from exc
        except Ec2CallFailed as exc:
            raise Ec2CallFailed(f"not created: {exc}", exc.code) from exc

    def _after_unknown(self, action: CreateAction, error: str) -> tuple[str, ...]:
        """After a server error or a lost connection: the snapshot may or may not exist.

        It is never asked for again in this run; a snapshot EC2 did make is found by its
        recovery point tag (now, or by the next run, which claims the slot and looks before
        creating).
        """
        try:
            found = self._find([action]).get(action.recovery_point, [])
        except Ec2CallFailed:
            found = []
        live = tuple(sorted(s.snapshot_id for s in found if s.state != "error"))
        if live:
            return live
        raise Ec2OutcomeUnknown(
            f"not created: {error}. EC2 may still have made it; it is not asked again in this "
            "run (CreateSnapshots has no idempotency token). Its claim is kept for its lease; "
            "a run after that finds it by its recovery point tag, or creates it"
        )

    def _volume_specs(self, creates: Sequence[CreateAction]) -> dict[str, tuple[str, str | None]]:
        """Each create's ``smartvault:volumes`` value, from one read of the volumes of the
        chunk (per resource type): what a restore needs once the volumes are gone."""
        if not creates:
            return {}
        region = creates[0].region
        volumes = self._ctx.volumes
        instance_ids = sorted({a.resource_id for a in creates if a.resource_type == "instance"})
        volume_ids = sorted({a.resource_id for a in creates if a.resource_type == "volume"})
        read: list[Volume] = []
        if instance_ids:
            read += volumes.volumes(region, "attachment.instance-id", instance_ids)
        if volume_ids:
            read += volumes.volumes(region, "volume-id", volume_ids)
        by_id = {v.volume_id: v for v in read}
        values: dict[str, tuple[str, str | None]] = {}
        for action in creates:
            specs = _specs_of(action, by_id)
            if specs:
                values[action.resource_id] = encode_volume_specs(specs)
        return values

    def _find(self, creates: Sequence[CreateAction]) -> dict[str, list[Snapshot]]:
        """The snapshots that are part of these creates' recovery points, by recovery point.

        Found by their tag, then kept only when every tag agrees with it, as the planner
        reads them (DESIGN §1): a snapshot someone else tagged with the id (of another
        volume, a copy, another slot) is not the recovery point, so it can neither
        suppress the backup nor be reported as it.
        """
        if not creates:
            return {}
        wanted = {action.recovery_point: action for action in creates}
        found: dict[str, list[Snapshot]] = {}
        region = creates[0].region
        for snapshot in self._ctx.ec2.find(region, f"tag:{TAG_RECOVERY_POINT}", sorted(wanted)):
            action = wanted.get(snapshot.tags.get(TAG_RECOVERY_POINT, ""))
            if action is not None and _part_of(snapshot, action):
                found.setdefault(action.recovery_point, []).append(snapshot)
        return found


def _part_of(snapshot: Snapshot, action: CreateAction) -> bool:
    """Whether ``snapshot`` is one of the originals of ``action``'s recovery point."""
    if not is_managed(snapshot.tags) or TAG_SOURCE in snapshot.tags:
        return False
    found = read_recovery_point(snapshot, action.resource_type)
    return isinstance(found, RecoveryPointId) and str(found) == action.recovery_point


def _specs_of(action: CreateAction, volumes: dict[str, Volume]) -> dict[str, VolumeSpec]:
    """The specs of the volumes a create snapshots: by device name for an instance (the
    key a copy finds through its ``smartvault:device``), by volume id for a volume."""
    if action.resource_type == "volume":
        volume = volumes.get(action.resource_id)
        return {action.resource_id: _spec(volume)} if volume is not None else {}
    specs: dict[str, VolumeSpec] = {}
    # The volumes the planner saw (all attached ones when it named none).
    wanted = set(action.volume_ids)
    for volume in volumes.values():
        if wanted and volume.volume_id not in wanted:
            continue
        for attachment in volume.attachments:
            if attachment.instance_id == action.resource_id and attachment.device:
                specs[attachment.device] = _spec(volume)
    return specs


def _spec(volume: Volume) -> VolumeSpec:
    # gp2, st1, sc1 and standard take no IOPS or throughput at creation: record none.
    iops = volume.iops if volume.volume_type in ("gp3", "io1", "io2") else None
    throughput = volume.throughput if volume.volume_type == "gp3" else None
    return VolumeSpec(volume.volume_type, iops, throughput, dict(volume.tags))
