"""The verify step: a restore test turns a recovery point into volumes and times them.

For each ``verify`` action, after a look at its snapshots (gone, no longer SmartVault's,
archived or not completed: nothing is made):

1. claim ``<recovery point>#verify@<region>`` (:mod:`.claims`), so overlapping runs never test one
   point twice; the claim's lease is renewed while the test waits;
2. write the ``verify`` record ``pending``;
3. make one test volume per snapshot, in the region's first available zone, tagged at
   creation with exactly ``CreatedBy=SmartVault``, ``smartvault:verify=<recovery point>``,
   ``smartvault:policy`` and a ``Name`` (never the original volume's tags, so no volume
   policy ever selects a test volume), each with an idempotency token of the run and the
   snapshot;
4. wait until every one is ``available``, never past the action's timeout nor once the
   run is stopping;
5. all available: the time from the first CreateVolume to the last ``available`` (the
   RTO of making the volumes) goes in the record, the snapshots are tagged
   ``smartvault:verified=<time>``, and the test volumes are deleted. Anything else is a
   failed verification (never tagged), or, when the run had to stop, an interrupted one
   that the next run starts again. Test volumes EC2 will not delete yet (still
   ``creating``) are left to the sweep.

**The sweep.** Before its tests, a run that verifies in a region (and ``smartvault
verify`` in every region it works in) deletes the test volumes earlier runs left behind:
volumes tagged ``CreatedBy=SmartVault`` with a ``smartvault:verify`` tag whose claim no
live run holds. A volume someone attached (``in-use``) is left alone and reported, as is
one whose tag names no recovery point. Each deletion has its own ``verify`` audit record,
``pending`` first.

docs/restore-tests.md says all this for operators.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Final

from smartvault.apply.claims import Verdict
from smartvault.apply.step import Looked
from smartvault.apply.step import RunContext
from smartvault.apply.step import look_by_region
from smartvault.apply.step import ours_or_refusal
from smartvault.apply.waiting import Waited
from smartvault.apply.waiting import wait_available
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import ClaimResult
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import Snapshot
from smartvault.core.model import VerifyAction
from smartvault.core.model import Volume
from smartvault.core.report import ActionResult
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_NAME
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_VERIFIED
from smartvault.core.tags import TAG_VERIFY
from smartvault.core.times import iso_utc
from smartvault.errors import AuditError
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown

_LOG = logging.getLogger(__name__)

#: The type of every test volume: the cheapest SSD, at its baseline (3,000 IOPS, 125
#: MiB/s, no extra charge). The time a volume takes to become ``available`` does not
#: depend on its type or IOPS; provisioning a recorded io2 at 64,000 IOPS would cost far
#: more for the same answer (docs/restore-tests.md).
TEST_VOLUME_TYPE: Final = "gp3"
#: gp3 holds at most 16 TiB; a larger snapshot is tested as io2 at its lowest IOPS.
GP3_MAX_GIB: Final = 16 * 1024
LARGE_TEST_VOLUME_TYPE: Final = "io2"
LARGE_TEST_VOLUME_IOPS: Final = 100
#: Volume states in which a test volume is gone or going: nothing left to do.
_GONE: Final = frozenset({"deleting", "deleted"})


def verify_claim_id(recovery_point: str, region: str) -> str:
    """The claim of one recovery point's restore test in one region (creates claim the bare
    id, copies ``<id>@<region>``). The region is part of it: a copy carries its source's
    recovery point id, and the original and each copy are tested on their own."""
    return f"{recovery_point}#verify@{region}"


def test_volume_tags(policy: str, recovery_point: str) -> dict[str, str]:
    """Exactly the tags of a test volume: SmartVault's, the point under test, a Name."""
    return {
        TAG_CREATED_BY: CREATED_BY_VALUE,
        TAG_VERIFY: recovery_point,
        TAG_POLICY: policy,
        TAG_NAME: f"SmartVault restore test of {recovery_point}",
    }


def test_volume_kind(snapshot: Snapshot) -> tuple[str, int | None]:
    """The type (and IOPS, when it must be named) of the test volume of ``snapshot``."""
    if snapshot.volume_size_gib > GP3_MAX_GIB:
        return LARGE_TEST_VOLUME_TYPE, LARGE_TEST_VOLUME_IOPS
    return TEST_VOLUME_TYPE, None


@dataclass(frozen=True)
class _Prepared:
    looked: Mapping[str, Looked]


class VerifyStep:
    """Restore tests, one after another in plan order, after the sweep of their regions.

    ``sweep_regions``: regions swept even when no test there is due (``smartvault
    verify``, or a run whose policies verify). ``notes`` says what the sweep did.
    """

    workers = 1

    def __init__(self, ctx: RunContext, sweep_regions: Sequence[str] = ()) -> None:
        self._ctx = ctx
        self._sweep_regions = tuple(sweep_regions)
        self.notes: list[str] = []

    def batches(
        self, items: Sequence[tuple[int, VerifyAction]]
    ) -> Iterator[Sequence[tuple[int, VerifyAction]]]:
        if items or self._sweep_regions:
            yield items

    def prepare(self, batch: Sequence[tuple[int, VerifyAction]]) -> _Prepared:
        regions = sorted({*self._sweep_regions, *(a.region for _, a in batch)})
        for region in regions:
            if self._ctx.ledger.stopping():
                break
            for note in sweep_test_volumes(self._ctx, region):
                self.notes.append(note)
                _LOG.log(
                    logging.INFO if note.startswith("deleted") else logging.WARNING, "%s", note
                )
        return _Prepared(
            look_by_region(self._ctx.ec2, ((a.region, a.snapshot_ids) for _, a in batch))
        )

    def run(self, index: int, action: VerifyAction, prepared: _Prepared) -> ActionResult | None:
        ctx = self._ctx
        looked = ours_or_refusal(
            ctx.trail, action, prepared.looked[action.region], "test", "tested"
        )
        if isinstance(looked, ActionResult):
            return looked
        why_not = _not_testable(action, looked)
        if why_not:
            return ctx.trail.final(action, ActionResult(action, "skipped", reason=why_not))
        claim_id = verify_claim_id(action.recovery_point, action.region)
        try:
            claim = ctx.claims.acquire(claim_id)
        except AuditError as exc:
            return ActionResult(action, "failed", error=f"not tested: {exc}")
        verdict = ctx.claims.verdict(claim)
        if verdict is Verdict.HELD:
            reason = (
                f"another run is testing it: run {claim.run_id} holds its claim {claim_id} "
                f"until {iso_utc(claim.lease_until)}"
            )
            return ctx.trail.final(action, ActionResult(action, "skipped", reason=reason))
        if verdict is Verdict.RECENT:
            reason = (
                f"tested moments ago by run {claim.run_id} (its claim {claim_id} is done); "
                f"not tested again before {iso_utc(claim.lease_until)}"
            )
            return ctx.trail.final(action, ActionResult(action, "skipped", reason=reason))
        if verdict is Verdict.TAKE_OVER:
            # A test that finished long ago: the plan says another one is due now.
            taken = ctx.claims.take_over(action, claim, "not tested")
            if isinstance(taken, ActionResult):
                return taken
            claim = taken
        return _Test(ctx, action, looked).run(claim)


def _not_testable(action: VerifyAction, looked: Mapping[str, Snapshot]) -> str:
    """Why the recovery point cannot be tested now ("" when it can)."""
    ids = action.snapshot_ids
    gone = [sid for sid in ids if sid not in looked]
    if gone:
        return f"not tested: {', '.join(gone)} no longer exist"
    archived = [sid for sid in ids if looked[sid].storage_tier == "archive"]
    if archived:
        return (
            f"not tested: {', '.join(archived)} are in the archive tier; a restore test "
            "never brings snapshots back from it (that takes hours and is billed per GiB)"
        )
    unfinished = [sid for sid in ids if looked[sid].state != "completed"]
    if unfinished:
        states = ", ".join(f"{sid} is {looked[sid].state}" for sid in unfinished)
        return f"not tested: {states}, not completed"
    return ""


class _Test:
    """One restore test, from the pending record to the last test volume deleted."""

    def __init__(
        self, ctx: RunContext, action: VerifyAction, looked: Mapping[str, Snapshot]
    ) -> None:
        self.ctx = ctx
        self.action = action
        self.looked = looked
        self.claim_id = verify_claim_id(action.recovery_point, action.region)
        self.details: dict[str, str] = {}

    def run(self, claim: ClaimResult) -> ActionResult | None:
        ctx, action = self.ctx, self.action
        try:
            zones = ctx.volumes.zones(action.region)
        except Ec2CallFailed as exc:
            return self._refused(f"not tested: {exc}")
        if not zones:
            return self._refused(f"not tested: {action.region} lists no available zone")
        zone = zones[0]
        kinds = {sid: test_volume_kind(self.looked[sid]) for sid in action.snapshot_ids}
        self.details.update(
            zone=zone, volume_type=",".join(sorted({kind for kind, _ in kinds.values()}))
        )
        pending = ctx.trail.record_of(
            action, "pending", snapshot_ids=action.snapshot_ids, details=dict(self.details)
        )
        started = ctx.claims.start(action, claim, pending, "not tested")
        if isinstance(started, ActionResult):
            return started
        ref = started[0]

        first_create = ctx.clock()
        made: list[str] = []
        for sid in action.snapshot_ids:
            if ctx.ledger.stopping():
                self._interrupted(ref, made, "before all its test volumes were made")
                return None
            try:
                made.append(self._create(sid, zone, kinds[sid]))
            except Ec2CallFailed as exc:
                return self._failed(ref, made, f"{exc.message}; nothing verified")
        self.details["test_volumes"] = ",".join(made)

        waited, lost = self._wait(made, first_create)
        if lost:
            return self._failed(ref, made, f"test abandoned: {lost}; nothing verified")
        if waited.end == "stopped":
            self._interrupted(ref, made, "while its test volumes were being made")
            return None
        if waited.end != "available":
            return self._failed(ref, made, self._not_available(waited))
        return self._available(ref, made, (ctx.clock() - first_create).total_seconds())

    # --- the calls ------------------------------------------------------------------

    def _create(self, sid: str, zone: str, kind: tuple[str, int | None]) -> str:
        """One CreateVolume; the new volume's id."""
        volume_type, iops = kind
        action = self.action

        def create() -> str:
            return self.ctx.volumes.create_volume(
                action.region,
                sid,
                zone=zone,
                volume_type=volume_type,
                iops=iops,
                tags=test_volume_tags(action.policy, action.recovery_point),
                client_token=f"verify:{self.ctx.ledger.run_id}:{sid}",
            ).volume_id

        try:
            return create()
        except Ec2OutcomeUnknown:
            # EC2 keeps the token: asking again returns the volume the lost answer was
            # about (or makes the one volume), never a second one.
            return create()

    def _wait(self, ids: Sequence[str], first_create: datetime) -> tuple[Waited, str]:
        """Wait for ``ids`` until the action's timeout, renewing the claim every half
        lease (a test may outlast one); the wait, and why the claim was lost if it was."""
        ctx = self.ctx
        limit = first_create + self.action.timeout
        while True:
            until = min(limit, ctx.clock() + ctx.claims.lease / 2)
            waited = wait_available(
                ctx.volumes,
                self.action.region,
                ids,
                until=until,
                stopping=ctx.ledger.stopping,
                clock=ctx.clock,
                sleep=ctx.sleep,
            )
            if waited.end != "timed_out" or until >= limit:
                return waited, ""
            try:  # the holder claiming again renews its lease
                renewed = ctx.claims.acquire(self.claim_id)
            except AuditError as exc:
                return waited, f"its claim could not be renewed ({exc})"
            if renewed.status != "claimed" or renewed.run_id != ctx.ledger.run_id:
                return waited, f"its claim {self.claim_id} passed to run {renewed.run_id}"

    def _not_available(self, waited: Waited) -> str:
        if waited.end == "error":
            return f"{waited.detail}; nothing verified"
        if waited.end == "unreadable":
            return f"the test volumes could not be read: {waited.detail}; nothing verified"
        late = waited.not_available()
        states = sorted({waited.volumes[v].state for v in late if v in waited.volumes})
        seen = f" (still {', '.join(states)})" if states else ""
        return f"{', '.join(late)} not available after {_span(self.action.timeout)}{seen}"

    def _available(self, ref: AuditRecordRef, made: Sequence[str], rto: float) -> ActionResult:
        ctx, action = self.ctx, self.action
        verified_at = iso_utc(ctx.clock())
        self.details["rto_seconds"] = f"{rto:.1f}"
        try:
            ctx.volumes.mark_verified(action.region, action.snapshot_ids, verified_at)
        except Ec2CallFailed as exc:
            return self._failed(
                ref,
                made,
                f"the test volumes were available after {rto:.0f} s, but the snapshots could "
                f"not be tagged {TAG_VERIFIED}: {exc}",
            )
        self.details["verified_at"] = verified_at
        self._clean_up(made)
        with contextlib.suppress(AuditError):  # the tag is there; the lease ends the claim
            ctx.claims.complete(self.claim_id, action.snapshot_ids)
        result = ActionResult(action, "succeeded", action.snapshot_ids)
        return ctx.trail.update(ref, result, details=self.details)

    # --- endings --------------------------------------------------------------------

    def _refused(self, error: str) -> ActionResult:
        """Nothing was made and nothing recorded yet."""
        self.ctx.claims.release(self.claim_id)
        result = ActionResult(self.action, "failed", self.action.snapshot_ids, error=error)
        return self.ctx.trail.final(self.action, result, self.details)

    def _failed(self, ref: AuditRecordRef, made: Sequence[str], error: str) -> ActionResult:
        self._clean_up(made)
        self.ctx.claims.release(self.claim_id)
        result = ActionResult(self.action, "failed", self.action.snapshot_ids, error=error)
        return self.ctx.trail.update(ref, result, details=self.details)

    def _interrupted(self, ref: AuditRecordRef, made: Sequence[str], when: str) -> None:
        """The run is stopping: the test is recorded as interrupted, and counts in the run
        result as not started (nothing of it is kept; the next run starts it again)."""
        self._clean_up(made)
        self.ctx.claims.release(self.claim_id)
        reason = (
            f"interrupted {when}: the run had to stop (time limit); nothing verified, "
            "the next run tests it again"
        )
        self.ctx.trail.update(
            ref,
            ActionResult(self.action, "skipped", self.action.snapshot_ids, reason=reason),
            details=self.details,
        )

    def _clean_up(self, made: Sequence[str]) -> None:
        """Delete this test's volumes, and any other of its recovery point that a lost
        answer may have made; what EC2 will not delete yet is left to the sweep."""
        ctx, region = self.ctx, self.action.region
        ids = set(made)
        with contextlib.suppress(Ec2CallFailed):  # the ids this run knows are enough
            ids.update(
                v.volume_id
                for v in ctx.volumes.volumes(
                    region, f"tag:{TAG_VERIFY}", [self.action.recovery_point]
                )
                if _is_test_volume(v)
                and v.snapshot_id in self.action.snapshot_ids
                and v.state not in _GONE
                and not _attached(v)
            )
        left: list[str] = []
        for volume_id in sorted(ids):
            try:
                ctx.volumes.delete_volume(region, volume_id)
            except Ec2CallFailed as exc:
                if exc.code != "InvalidVolume.NotFound":
                    left.append(f"{volume_id} ({exc.detail})")
        if left:
            self.details["left_for_sweep"] = "; ".join(left)


# --- the sweep -----------------------------------------------------------------------


def sweep_test_volumes(ctx: RunContext, region: str) -> list[str]:
    """Delete the test volumes earlier runs left in ``region``; one note per volume
    deleted or left (and why)."""
    try:
        found = ctx.volumes.volumes(region, "tag-key", [TAG_VERIFY])
    except Ec2CallFailed as exc:
        return [f"test volumes left by earlier restore tests in {region} were not checked: {exc}"]
    by_point: dict[str, list[Volume]] = {}
    for volume in found:
        if _is_test_volume(volume) and volume.state not in _GONE:
            by_point.setdefault(volume.tags[TAG_VERIFY], []).append(volume)
    notes: list[str] = []
    for point, volumes in sorted(by_point.items()):
        if ctx.ledger.stopping():
            notes.append(f"test volumes in {region} not all checked: the run is stopping")
            break
        notes.extend(_sweep_point(ctx, region, point, volumes))
    return notes


def _sweep_point(ctx: RunContext, region: str, point: str, volumes: Iterable[Volume]) -> list[str]:
    parsed = RecoveryPointId.parse(point)
    notes: list[str] = []
    deletable: list[Volume] = []
    for volume in sorted(volumes, key=lambda v: v.volume_id):
        where = f"test volume {volume.volume_id} in {region}"
        if parsed is None:
            notes.append(
                f"{where} left alone: its {TAG_VERIFY} tag {point!r} names no recovery point; "
                "delete it yourself if it is not needed"
            )
        elif _attached(volume):
            users = ", ".join(a.instance_id for a in volume.attachments) or "an instance"
            notes.append(
                f"{where} (restore test of {point}) left alone: it is attached to {users}; "
                "detach and delete it when you are done with it (it is billed until then)"
            )
        else:
            deletable.append(volume)
    if not deletable or parsed is None:
        return notes
    claim_id = verify_claim_id(point, region)
    try:
        claim = ctx.claims.acquire(claim_id)
    except AuditError as exc:
        return [*notes, f"test volumes of {point} in {region} left: {exc}"]
    if claim.status == "held":
        ids = ", ".join(v.volume_id for v in deletable)
        return [
            *notes,
            f"test volumes {ids} in {region} left: run {claim.run_id} is testing {point}",
        ]
    try:
        for volume in deletable:
            notes.append(_delete_left_over(ctx, parsed, volume))
            if ctx.ledger.stopping():
                break
    finally:
        if claim.status == "claimed":
            ctx.claims.release(claim_id)
    return notes


def _delete_left_over(ctx: RunContext, point: RecoveryPointId, volume: Volume) -> str:
    what = (
        f"test volume {volume.volume_id} ({volume.state}) of a restore test of {point} "
        f"in {volume.region}"
    )
    if volume.state == "creating":
        return f"{what} left: EC2 deletes no volume that is still creating; a later run deletes it"
    record = VerifyAction(
        region=volume.region,
        policy=volume.tags.get(TAG_POLICY) or point.policy,
        resource_id=point.resource_id,
        recovery_point=str(point),
        snapshot_ids=(volume.snapshot_id,) if volume.snapshot_id else (),
        created_at=ctx.clock(),
        reason=f"delete test volume {volume.volume_id}, left behind by an earlier restore test",
    )
    details = {"test_volume": volume.volume_id, "left_over": "true"}
    try:
        ref = ctx.trail.pending(
            ctx.trail.record_of(
                record, "pending", snapshot_ids=record.snapshot_ids, details=details
            )
        )
    except AuditError as exc:
        return f"{what} left: {exc}"
    try:
        ctx.volumes.delete_volume(volume.region, volume.volume_id)
    except Ec2CallFailed as exc:
        if exc.code != "InvalidVolume.NotFound":
            ctx.trail.update(
                ref, ActionResult(record, "failed", record.snapshot_ids, error=str(exc))
            )
            return f"{what} left: {exc}"
    ctx.trail.update(ref, ActionResult(record, "succeeded", record.snapshot_ids))
    return f"deleted {what}, left behind by an earlier run"


def _is_test_volume(volume: Volume) -> bool:
    return volume.tags.get(TAG_CREATED_BY) == CREATED_BY_VALUE and TAG_VERIFY in volume.tags


def _attached(volume: Volume) -> bool:
    return volume.state == "in-use" or bool(volume.attachments)


def _span(span: timedelta) -> str:
    """``30m``, ``2h``, ``90s``: a timeout as policies write it."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
