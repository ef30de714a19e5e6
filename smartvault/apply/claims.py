"""The one claim guard: held, done, lease and take-over decided in one place.

CreateSnapshots and CopySnapshot have no idempotency token, so a recovery point (and each
recovery point's copy to a region) is claimed in the audit table before EC2 is asked:

- ``claimed``: this run holds it; it looks in EC2, then makes only what is missing.
- ``held``: another run holds a live lease; this run leaves it alone.
- ``done`` and found in EC2: nothing to do.
- ``done`` moments ago (lease still running) yet not found: DescribeSnapshots is eventually
  consistent, so "gone" cannot be told from "not listed yet"; a run after the lease may.
- ``done`` long ago and gone: the slot is taken over, by one run only (a versioned write).

A claim whose call had an unknown outcome is *kept* for its lease, never handed back: the
next run finds the snapshot by its tags or makes it.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import TypeVar

from smartvault.apply.ports import Claims
from smartvault.apply.trail import AuditTrail
from smartvault.core.model import Action
from smartvault.core.model import AuditRecord
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import ClaimResult
from smartvault.core.report import ActionResult
from smartvault.errors import AuditError

T = TypeVar("T")


class Verdict(enum.Enum):
    """What a step may do with a claim."""

    PROCEED = "proceed"  # this run holds it: look, then make what is missing
    HELD = "held"  # another run holds a live lease
    DONE = "done"  # completed, and what it made is there
    RECENT = "recent"  # completed moments ago, not listed yet: wait for the lease
    TAKE_OVER = "take over"  # completed long ago, and gone: may be made again


class ClaimGuard:
    """The claims one run takes, and what it does with them."""

    def __init__(
        self,
        claims: Claims,
        trail: AuditTrail,
        *,
        run_id: str,
        lease: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._claims = claims
        self._trail = trail
        self._run_id = run_id
        self.lease = lease
        self._clock = clock
        #: claims this run holds and has not completed (released if the run ends early)
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def acquire(self, claim_id: str) -> ClaimResult:
        """Claim ``claim_id``; raises AuditError after halting the run."""
        claim = self._audited(lambda: self._claims.acquire(claim_id, self._run_id, self.lease))
        if claim.status == "claimed":
            self._hold(claim_id)
        return claim

    def verdict(self, claim: ClaimResult, *, found: bool = False) -> Verdict:
        """The decision for ``claim``; ``found``: everything it stands for exists in EC2."""
        if claim.status == "held":
            return Verdict.HELD
        if claim.status == "claimed":
            return Verdict.PROCEED
        if found:
            return Verdict.DONE
        if self._clock() < claim.lease_until:
            return Verdict.RECENT
        return Verdict.TAKE_OVER

    def take_over(
        self, action: Action, done: ClaimResult, not_done: str
    ) -> ClaimResult | ActionResult:
        """Take over a ``done`` claim whose snapshots are gone, so one run (only) may make
        them again; the ActionResult to report when this run must not go on."""
        try:
            claim = self._audited(lambda: self._claims.take_over(done, self._run_id, self.lease))
        except AuditError as exc:
            return ActionResult(action, "failed", error=f"{not_done}: {exc}")
        if claim.status != "claimed":
            # Another run took it over first: that run makes it, not this one.
            return self._trail.final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"another run ({claim.run_id}) took over its claim first",
                ),
            )
        self._hold(claim.recovery_point)
        return claim

    def start(
        self, action: Action, claim: ClaimResult, pending: AuditRecord, not_done: str
    ) -> tuple[AuditRecordRef, ClaimResult, bool] | ActionResult:
        """Write the ``pending`` record of a claimed create or copy, then renew its lease
        if half of it is used; the ActionResult to report when the action must not go on.

        A long run may outlive half its lease: renewing it (only the holder can) before
        the call keeps any other run from taking the claim while this one works. The third
        value is True when the claim had to be taken over instead, because another run
        held it in the meantime: what that run made is not in this run's look-up, so the
        caller must look in EC2 again before making anything.
        """
        claim_id = claim.recovery_point
        try:
            ref = self._trail.pending(pending)
        except AuditError as exc:
            self.release(claim_id)
            return ActionResult(action, "failed", error=f"{not_done}: {exc}")
        if self._clock() < claim.lease_until - self.lease / 2:
            return ref, claim, False
        try:
            renewed = self._audited(lambda: self._claims.renew(claim, self._run_id, self.lease))
            taken_over = False
            if renewed is None:
                # Not ours any more: our lease lapsed and another run took the claim,
                # then finished, released it or died holding it.
                renewed = self._audited(
                    lambda: self._claims.acquire(claim_id, self._run_id, self.lease)
                )
                taken_over = renewed.status == "claimed"
        except AuditError as exc:
            return self._trail.update(
                ref, ActionResult(action, "failed", error=f"{not_done}: {exc}")
            )
        if renewed.status != "claimed":
            self.keep(claim_id)
            return self._trail.update(
                ref,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"its claim passed to run {renewed.run_id} while this run waited",
                ),
            )
        self._hold(claim_id)
        return ref, renewed, taken_over

    def complete(self, claim_id: str, snapshot_ids: Sequence[str]) -> None:
        """Mark the claim done with what was made; raises AuditError (the caller decides
        whether that halts the run: the snapshots exist and carry their tags)."""
        self._claims.complete(claim_id, self._run_id, snapshot_ids)
        self.keep(claim_id)

    def release(self, claim_id: str) -> None:
        """Give back this run's claim, best effort: its lease ends it anyway."""
        try:
            self._claims.release(claim_id, self._run_id)
        except AuditError:
            return
        self.keep(claim_id)

    def release_done(self, claim_id: str) -> None:
        """Drop a ``done`` claim (never a live one) so a failed slot may be tried again."""
        self._claims.release(claim_id, only_done=True)

    def keep(self, claim_id: str) -> None:
        """Stop tracking the claim: completed, or kept on purpose until its lease ends."""
        with self._lock:
            self._held.discard(claim_id)

    def release_held(self) -> None:
        """Hand back every claim taken and not completed (asked to stop, or a crash in
        this process), rather than make the next run wait for the lease."""
        with self._lock:
            held = sorted(self._held)
        for claim_id in held:
            # Best effort: if this fails too, the lease still ends the claim.
            with contextlib.suppress(Exception):
                self._claims.release(claim_id, self._run_id)

    def _hold(self, claim_id: str) -> None:
        with self._lock:
            self._held.add(claim_id)

    def _audited(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except AuditError as exc:
            self._trail.halt(exc)
            raise
