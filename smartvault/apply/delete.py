"""The delete step: a recorded ``pending`` before the DeleteSnapshot calls, always.

No snapshot is deleted without its record. Deletes run on a small pool: EC2's mutating
bucket refills at about 5 calls a second per region, and 4 workers keep a steady flow near
that rate without burning the burst that creates share with us (botocore's adaptive mode
slows the clients further when EC2 answers RequestLimitExceeded; bench/bench_apply.py
measures the rate). A throttled delete waits and is sent again (:mod:`smartvault.aws.calls`);
one the run's deadline kept from being sent is ``skipped``, not failed: the next run
deletes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from smartvault.apply.step import Looked
from smartvault.apply.step import LookFirstStep
from smartvault.apply.step import RunContext
from smartvault.apply.step import ours_or_refusal
from smartvault.core.model import DeleteAction
from smartvault.core.report import ActionResult
from smartvault.errors import AuditError
from smartvault.errors import Ec2CallFailed

DEFAULT_MAX_WORKERS: Final = 4


class DeleteStep(LookFirstStep[DeleteAction]):
    """Deletes the snapshots of recovery points retention no longer keeps."""

    def __init__(self, ctx: RunContext, workers: int = DEFAULT_MAX_WORKERS) -> None:
        super().__init__(ctx)
        self.workers = workers

    def run(
        self, index: int, action: DeleteAction, prepared: Mapping[str, Looked]
    ) -> ActionResult | None:
        ctx = self._ctx
        looked = ours_or_refusal(
            ctx.trail, action, prepared[action.region], "delete", "deleted", unless_held=True
        )
        if isinstance(looked, ActionResult):
            return looked
        was_failed = any(looked[s].state == "error" for s in action.snapshot_ids if s in looked)
        # A person lifted the breaker for this run: each record says so, and by which rule.
        lifted = (
            {"safety_lifted": f"--allow-deletes: {action.safety_lifted}"}
            if action.safety_lifted is not None
            else {}
        )
        try:
            ref = ctx.trail.pending(
                ctx.trail.record_of(
                    action, "pending", snapshot_ids=tuple(action.snapshot_ids), details=lifted
                )
            )
        except AuditError as exc:
            return ActionResult(action, "failed", error=f"nothing deleted: {exc}")

        deleted: list[str] = []
        gone: list[str] = []
        in_use: list[str] = []
        #: not sent: the run's deadline came first (nothing asked of EC2, nothing failed)
        unsent: list[str] = []
        errors: list[str] = []
        for sid in action.snapshot_ids:
            if sid not in looked:
                gone.append(sid)  # already deleted (by a person, or a run that crashed)
                continue
            try:
                ctx.ec2.delete(action.region, sid)
                deleted.append(sid)
            except Ec2CallFailed as exc:
                if exc.code == "InvalidSnapshot.NotFound":
                    gone.append(sid)
                elif exc.code == "InvalidSnapshot.InUse":
                    in_use.append(exc.detail)
                elif exc.code == "DeadlineReached":
                    unsent.append(sid)
                else:
                    errors.append(exc.message)
        details = {"deleted": ",".join(deleted), "already_gone": ",".join(gone), **lifted}
        ids = tuple(action.snapshot_ids)
        if errors:
            result = ActionResult(
                action, "failed", ids, error="; ".join(errors) + "; the next run tries again"
            )
        elif unsent:
            details["not_sent"] = ",".join(unsent)
            result = ActionResult(
                action,
                "skipped",
                ids,
                reason=f"{len(unsent)} snapshot(s) not deleted: too little time was left before "
                "the run's deadline to send the call; the next run deletes them",
            )
        elif in_use:
            details["in_use"] = "; ".join(in_use)
            result = ActionResult(
                action,
                "skipped",
                ids,
                reason="in use by an AMI registered after planning, so kept: " + "; ".join(in_use),
            )
        else:
            result = ActionResult(action, "succeeded", ids)
        result = ctx.trail.update(ref, result, details=details)
        if result.outcome == "succeeded" and was_failed:
            # A failed recovery point's slot may be attempted again: drop its claim (only
            # a done one: never pull a live claim from under a run that is creating).
            try:
                ctx.claims.release_done(action.recovery_point)
            except AuditError as exc:
                return replace(result, audit_error=result.audit_error or str(exc))
        return result
