"""The audit trail of one run: the pending record first, the final record after.

Every action's record goes through :class:`AuditTrail`. When a record cannot be written,
the trail halts the run (nothing more is changed without its record) and the action's
result says what is missing from the log.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from typing import cast

from smartvault.apply.ledger import RunLedger
from smartvault.apply.ports import Records
from smartvault.core.model import Action
from smartvault.core.model import AuditAction
from smartvault.core.model import AuditRecord
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import Outcome
from smartvault.core.report import ActionResult
from smartvault.errors import AuditError


class AuditTrail:
    """Writes the records of one run (``run_id``, ``actor``) and halts it when it cannot."""

    def __init__(
        self,
        records: Records,
        ledger: RunLedger,
        *,
        actor: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._records = records
        self._ledger = ledger
        self._actor = actor
        self._clock = clock

    def record_of(self, action: Action, outcome: Outcome, **fields: Any) -> AuditRecord:
        """The record of ``action`` at this moment; ``fields`` fill in or override."""
        return AuditRecord(
            run_id=self._ledger.run_id,
            timestamp=self._clock(),
            action=cast(AuditAction, action.type),
            outcome=outcome,
            policy=action.policy,
            region=action.region,
            resource_id=action.resource_id,
            recovery_point=action.recovery_point,
            reason=fields.pop("reason", action.reason),
            actor=self._actor,
            **fields,
        )

    def pending(self, record: AuditRecord) -> AuditRecordRef:
        """Write the ``pending`` record before the change; raises AuditError (run halted)."""
        try:
            return self._records.write(record)
        except AuditError as exc:
            self._ledger.halt(str(exc))
            raise

    def final(
        self, action: Action, result: ActionResult, details: Mapping[str, str] | None = None
    ) -> ActionResult:
        """Record an action that needed no EC2 change (skipped, or failed before starting)."""
        try:
            self._records.write(
                self.record_of(
                    action,
                    result.outcome,
                    reason=result.reason or action.reason,
                    snapshot_ids=result.snapshot_ids,
                    error=result.error,
                    details=dict(details or {}),
                )
            )
        except AuditError as exc:
            self._ledger.halt(str(exc))
            return replace(result, audit_error=str(exc))
        return result

    def update(self, ref: AuditRecordRef, result: ActionResult, **kwargs: Any) -> ActionResult:
        """Turn the pending record into the final one; a failure halts the run."""
        try:
            self._records.update_outcome(
                ref,
                result.outcome,
                error=result.error,
                snapshot_ids=result.snapshot_ids,
                reason=result.reason or None,
                **kwargs,
            )
        except AuditError as exc:
            self._ledger.halt(str(exc))
            return replace(
                result,
                audit_error=f"its audit record was left 'pending' ({ref.pk} {ref.sk}): {exc}",
            )
        return result

    @property
    def actor(self) -> str:
        """Who this run acts for, as every record names them."""
        return self._actor

    def settle(
        self,
        ref: AuditRecordRef,
        outcome: Outcome,
        *,
        error: str = "",
        snapshot_ids: tuple[str, ...] = (),
        reason: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> str:
        """Turn the pending record of work that is no plan action (a restore) into its
        final one; what is missing from the log when it cannot ("" when written)."""
        try:
            self._records.update_outcome(
                ref, outcome, error=error, snapshot_ids=snapshot_ids, reason=reason, details=details
            )
        except AuditError as exc:
            self._ledger.halt(str(exc))
            return f"its audit record was left 'pending' ({ref.pk} {ref.sk}): {exc}"
        return ""

    def halt(self, exc: AuditError) -> None:
        """The audit table failed outside a record (a claim): start nothing more."""
        self._ledger.halt(str(exc))
