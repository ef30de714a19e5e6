"""The copy step: each snapshot of a recovery point copied to another region at most once.

CopySnapshot has no idempotency token, so, as for creates: claim (one claim per recovery
point and target region, ``<recovery point>@<region>``), then look in the target region
for copies already tagged ``smartvault:source`` with each source, then copy only the
missing. An unknown outcome keeps the claim for its lease. When EC2 refuses a copy because
20 are already in flight to a region, nothing more is started towards that region.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from smartvault.apply.claims import Verdict
from smartvault.apply.ports import Ec2
from smartvault.apply.step import Looked
from smartvault.apply.step import LookFirstStep
from smartvault.apply.step import RunContext
from smartvault.apply.step import ours_or_refusal
from smartvault.core.model import ClaimResult
from smartvault.core.model import CopyAction
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import Snapshot
from smartvault.core.model import is_managed
from smartvault.core.model import read_recovery_point
from smartvault.core.report import ActionResult
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import copy_tags
from smartvault.core.tags import device_of
from smartvault.core.times import iso_utc
from smartvault.errors import AuditError
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown

#: EC2's answer when 20 copies into one region are already in flight.
_COPY_LIMIT_CODES: Final = frozenset({"ResourceLimitExceeded"})


class CopyStep(LookFirstStep[CopyAction]):
    """Copies new recovery points to the regions their policy's ``copies`` name."""

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        #: target regions where EC2 refused a copy for too many copies in flight (20)
        self._full: set[str] = set()

    def run(self, index: int, action: CopyAction, prepared: Mapping[str, Looked]) -> ActionResult:
        if action.target_region in self._full:
            result = ActionResult(
                action,
                "skipped",
                reason=f"not started: {action.target_region} already has as many copies in "
                "flight as EC2 allows (ResourceLimitExceeded); the next run copies it",
            )
            return self._ctx.trail.final(action, result)
        return self._copy_one(action, prepared[action.region])

    def _copy_one(self, action: CopyAction, looked_in_source: Looked) -> ActionResult:
        ctx = self._ctx
        target = action.target_region
        looked = ours_or_refusal(ctx.trail, action, looked_in_source, "copy", "copied")
        if isinstance(looked, ActionResult):
            return looked
        gone = [sid for sid in action.snapshot_ids if sid not in looked]
        unusable = [
            sid
            for sid in action.snapshot_ids
            if sid in looked
            and (looked[sid].state != "completed" or looked[sid].storage_tier == "archive")
        ]
        sources = [sid for sid in action.snapshot_ids if sid in looked and sid not in unusable]
        if not sources:
            reasons = []
            if gone:
                reasons.append(f"{', '.join(gone)} no longer exist")
            if unusable:
                reasons.append(f"{', '.join(unusable)} are archived or not completed")
            return ctx.trail.final(
                action,
                ActionResult(action, "skipped", reason="nothing to copy: " + "; ".join(reasons)),
            )

        claim_id = copy_claim_id(action)
        try:
            claim = ctx.claims.acquire(claim_id)
        except AuditError as exc:
            return ActionResult(action, "failed", error=f"nothing copied: {exc}")
        if ctx.claims.verdict(claim) is Verdict.HELD:
            return ctx.trail.final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"another run is copying it: run {claim.run_id} holds its claim "
                    f"{claim_id} until {iso_utc(claim.lease_until)}",
                ),
            )

        # Only after claiming: a copy a crashed or overlapping run made must be seen here.
        try:
            existing = _copies_in(ctx.ec2, target, action, sources)
        except Ec2CallFailed as exc:
            if claim.status == "claimed":
                ctx.claims.release(claim_id)
            return ctx.trail.final(
                action, ActionResult(action, "failed", error=f"nothing copied: {exc}")
            )
        present, errored, missing = _sort_copies(sources, existing)
        details = _copy_details(target, present, errored)
        verdict = ctx.claims.verdict(claim, found=not missing)
        if verdict is Verdict.DONE:
            return ctx.trail.final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    tuple(sorted(present.values())),
                    reason=f"already copied to {target} by run {claim.run_id}",
                ),
                details,
            )
        if verdict is Verdict.RECENT:
            # Copies made moments ago may not be listed yet (EC2 is eventually
            # consistent): copying now could copy twice. A run after the lease may.
            return ctx.trail.final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"copied to {target} by run {claim.run_id} moments ago, but "
                    f"{', '.join(missing)} have no copy listed yet; not copied again before "
                    f"{iso_utc(claim.lease_until)}",
                ),
                details,
            )
        if verdict is Verdict.TAKE_OVER:
            taken = ctx.claims.take_over(action, claim, "nothing copied")
            if isinstance(taken, ActionResult):
                return taken
            return self._copy_missing(
                action, taken, sources, missing, present, looked, details, look_again=True
            )
        if not missing:
            settled = _settle_copied(ctx, action, claim_id, present, errored)
            if settled.audit_error:
                return settled
            return ctx.trail.final(action, settled, details)
        return self._copy_missing(action, claim, sources, missing, present, looked, details)

    def _copy_missing(
        self,
        action: CopyAction,
        claim: ClaimResult,
        sources: Sequence[str],
        missing: Sequence[str],
        present: Mapping[str, str],
        looked: Mapping[str, Snapshot],
        details: dict[str, str],
        *,
        look_again: bool = False,
    ) -> ActionResult:
        """Copy the ``missing`` of ``sources`` (``present``: those found copied). ``look_again``:
        the claim was taken over after that look, which may miss what another run copied."""
        ctx = self._ctx
        claim_id = claim.recovery_point
        target = action.target_region
        if action.kms_key_id:
            details["kms_key_id"] = action.kms_key_id
        pending = ctx.trail.record_of(
            action, "pending", snapshot_ids=tuple(missing), details=details
        )
        started = ctx.claims.start(action, claim, pending, "nothing copied")
        if isinstance(started, ActionResult):
            return started
        ref, claim, taken_over = started
        if look_again or taken_over:
            try:
                existing = _copies_in(ctx.ec2, target, action, sources)
            except Ec2CallFailed as exc:
                ctx.claims.release(claim_id)
                return ctx.trail.update(
                    ref, ActionResult(action, "failed", error=f"nothing copied: {exc}")
                )
            present, errored, missing = _sort_copies(sources, existing)
            details.update(_copy_details(target, present, errored))
            if not missing:
                settled = _settle_copied(ctx, action, claim_id, present, errored)
                return ctx.trail.update(ref, settled, details=details)

        made: dict[str, str] = {}
        unknown: list[str] = []
        errors: list[str] = []
        for position, sid in enumerate(missing):
            try:
                made[sid] = self._call_copy(action, looked[sid])
            except Ec2OutcomeUnknown as exc:
                unknown.append(exc.message)
            except Ec2CallFailed as exc:
                errors.append(exc.message)
                if exc.code in _COPY_LIMIT_CODES:
                    self._full.add(target)
                    rest = missing[position + 1 :]
                    if rest:
                        errors.append(f"{', '.join(rest)} not started")
                    break
        details = {"copies": _pairs(made)}
        copy_ids = tuple(made[s] for s in missing if s in made)
        all_ids = tuple(sorted({*present.values(), *made.values()}))
        if unknown or errors:
            error = "; ".join(unknown + errors) + "; the next plan copies what is missing"
            result = ctx.trail.update(
                ref, ActionResult(action, "failed", copy_ids, error=error), details=details
            )
            if unknown:
                # EC2 may have made a copy it does not list yet: keep the claim for its
                # lease (never hand it back at the end of the run either), so no run copies
                # that snapshot again before its copy shows.
                ctx.claims.keep(claim_id)
            elif made:
                # Copies just made may not be listed yet: a done claim keeps other runs from
                # copying this recovery point again before its lease ends.
                with contextlib.suppress(AuditError):
                    ctx.claims.complete(claim_id, all_ids)
            else:
                ctx.claims.release(claim_id)  # refused: nothing was made
            return result
        result = ctx.trail.update(ref, ActionResult(action, "succeeded", copy_ids), details=details)
        try:
            ctx.claims.complete(claim_id, all_ids)
        except AuditError as exc:
            # The copies exist and carry smartvault:source: later runs find them.
            ctx.trail.halt(exc)
            return replace(result, audit_error=result.audit_error or str(exc))
        return result

    def _call_copy(self, action: CopyAction, source: Snapshot) -> str:
        """One CopySnapshot, in the target region; the new snapshot id."""
        sid = source.snapshot_id
        try:
            return self._ctx.ec2.copy_snapshot(
                action.target_region,
                action.region,
                sid,
                description=f"SmartVault copy of {action.region}/{sid} ({action.recovery_point})",
                tags=copy_tags(
                    source.tags,
                    action.policy,
                    action.recovery_point,
                    f"{action.region}/{sid}",
                    device_of(source.tags, source.volume_id),
                ),
                kms_key_id=action.kms_key_id,
            )
        except Ec2OutcomeUnknown as exc:
            return self._after_unknown(action, sid, exc.message)
        except Ec2CallFailed as exc:
            raise Ec2CallFailed(f"{sid} not copied: {exc}", exc.code) from exc

    def _after_unknown(self, action: CopyAction, sid: str, error: str) -> str:
        """After a server error or a lost connection: the copy may or may not exist."""
        try:
            found = _copies_in(self._ctx.ec2, action.target_region, action, [sid])
        except Ec2CallFailed:
            found = {}
        live = sorted(c.snapshot_id for c in found.get(sid, []) if c.state != "error")
        if live:
            return live[0]
        raise Ec2OutcomeUnknown(
            f"{sid} not copied: {error}. EC2 may still have made the copy; it is not asked "
            "again in this run (CopySnapshot has no idempotency token). Its claim is kept for "
            f"its lease; a run after that finds the copy by its {TAG_SOURCE} tag, or copies it"
        )


def copy_claim_id(action: CopyAction) -> str:
    """The claim of one recovery point's copy to one region (creates claim the bare id)."""
    return f"{action.recovery_point}@{action.target_region}"


def _settle_copied(
    ctx: RunContext,
    action: CopyAction,
    claim_id: str,
    present: Mapping[str, str],
    errored: Sequence[str],
) -> ActionResult:
    """Nothing left to copy: every source has a copy, or one in state error. The claim is
    completed or handed back as fits; the result is still to be recorded."""
    target = action.target_region
    copy_ids = tuple(sorted(present.values()))
    if present and not errored:
        reason = (
            f"already copied to {target}: {_pairs(present)} (made by an earlier run that "
            "did not finish)"
        )
        try:
            ctx.claims.complete(claim_id, copy_ids)
        except AuditError as exc:
            ctx.trail.halt(exc)
            return ActionResult(action, "skipped", copy_ids, reason=reason, audit_error=str(exc))
        return ActionResult(action, "skipped", copy_ids, reason=reason)
    ctx.claims.release(claim_id)
    reason = (
        f"the copies of {', '.join(errored)} in {target} are in state error; copied "
        "again once the copy retention has deleted them"
    )
    return ActionResult(action, "skipped", copy_ids, reason=reason)


def _copies_in(
    ec2: Ec2, region: str, action: CopyAction, source_ids: Sequence[str]
) -> dict[str, list[Snapshot]]:
    """The copies of ``action``'s recovery point in ``region``, by source id.

    Found by their ``smartvault:source`` tag, then kept only when they are copies of
    this recovery point as the planner reads them (managed, the recovery point's id,
    every tag agreeing with it): a snapshot someone else tagged as the copy is not the
    copy, so it can neither stop the real one nor be reported as it.
    """
    prefix = f"{action.region}/"
    values = sorted({prefix + sid for sid in source_ids})
    found: dict[str, list[Snapshot]] = {}
    for snapshot in ec2.find(region, f"tag:{TAG_SOURCE}", values):
        source = snapshot.tags.get(TAG_SOURCE, "")
        if source.startswith(prefix) and _copy_of(snapshot, action):
            found.setdefault(source[len(prefix) :], []).append(snapshot)
    return found


def _sort_copies(
    sources: Sequence[str], existing: Mapping[str, Sequence[Snapshot]]
) -> tuple[dict[str, str], list[str], list[str]]:
    """The sources with a live copy (source → copy), with only a copy in state error, and
    with none, from the copies found in the target region."""
    present: dict[str, str] = {}
    errored: list[str] = []
    missing: list[str] = []
    for sid in sources:
        copies = existing.get(sid, [])
        live = sorted(c.snapshot_id for c in copies if c.state != "error")
        if live:
            present[sid] = live[0]
        elif copies:
            errored.append(sid)  # its failed copy is deleted by the copy retention first
        else:
            missing.append(sid)
    return present, errored, missing


def _copy_details(
    target: str, present: Mapping[str, str], errored: Sequence[str]
) -> dict[str, str]:
    details = {"target_region": target, "already_copied": _pairs(present)}
    if errored:
        details["copy_in_error"] = ",".join(errored)
    return details


def _pairs(mapping: Mapping[str, str]) -> str:
    """``src=copy,src=copy``, sorted: a source → copy map as one audit detail string."""
    return ",".join(f"{k}={v}" for k, v in sorted(mapping.items()))


def _copy_of(snapshot: Snapshot, action: CopyAction) -> bool:
    """Whether ``snapshot`` is a copy of ``action``'s recovery point (in its target region)."""
    if not is_managed(snapshot.tags) or TAG_SOURCE not in snapshot.tags:
        return False
    found = read_recovery_point(snapshot, None)
    return isinstance(found, RecoveryPointId) and str(found) == action.recovery_point
