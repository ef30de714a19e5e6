"""Apply a plan through EC2, with an audit record for every action.

The guarantees (docs/audit-and-apply.md says them for operators):

- No action without its audit record: the table is checked before anything is done, a
  ``pending`` record is written before every create and delete call, and when a record
  cannot be written nothing more is changed in this run.
- No duplicate recovery point: a create first claims its recovery point id in the audit
  table (a conditional write with a lease), then looks in EC2 for snapshots already
  tagged with it, and only then calls ``CreateSnapshots``/``CreateSnapshot`` with every
  tag set at creation. A rerun after a crash finds what the crashed run made.
- Nothing is deleted that the action does not name, nor a snapshot that no longer carries
  the action's policy and recovery point tags.
- Copies are guarded like creates (claim ``<recovery point>@<target region>``, look for
  ``smartvault:source`` in the target region, copy only the missing; an unknown outcome
  keeps the claim for its lease); archives and copies touch only snapshots that still
  carry the action's tags.
- A failed action never stops the others; a run told to stop starts nothing new and lists
  what it did not start; the next run converges, since the plan is a pure function of
  the account.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import Final
from typing import TypeVar
from typing import cast

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from smartvault.audit import AuditLog
from smartvault.audit import AuditRecordRef
from smartvault.audit import ClaimResult
from smartvault.aws import DeadlineReached
from smartvault.core.model import Action
from smartvault.core.model import ArchiveAction
from smartvault.core.model import AuditAction
from smartvault.core.model import AuditRecord
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Outcome
from smartvault.core.model import Plan
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import is_managed
from smartvault.core.model import read_recovery_point
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_NAME
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import TAGS_PER_RESOURCE_MAX
from smartvault.core.times import iso_utc
from smartvault.errors import AuditError
from smartvault.inventory import snapshot_from_api

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import SnapshotTypeDef
    from mypy_boto3_ec2.type_defs import TagTypeDef

T = TypeVar("T")
_LOG = logging.getLogger(__name__)

#: Our own bound on retries of one call, on top of botocore's adaptive retry mode.
MAX_ATTEMPTS: Final = 5
THROTTLING_CODES: Final = frozenset(
    {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}
)
#: How many values one DescribeSnapshots filter takes (FilterLimitExceeded beyond).
FILTER_VALUES_MAX: Final = 200
#: EC2's mutating bucket refills at 5 calls/s per region and action; 4 workers keep a
#: steady flow of DeleteSnapshot calls near that rate without burning the 100-call
#: burst that CreateSnapshot(s) share with us, and botocore's adaptive mode slows the
#: clients down further when EC2 answers RequestLimitExceeded.
DEFAULT_MAX_WORKERS: Final = 4
DEFAULT_CLAIM_LEASE: Final = timedelta(minutes=15)
#: A ``pending`` delete record older than this belongs to no live run: a run writes it just
#: before its DeleteSnapshot calls and updates it right after them (at most 5 attempts per
#: snapshot with backoff capped at 20 s), which takes minutes, and a Lambda lives 15.
PENDING_DELETE_GRACE: Final = timedelta(hours=1)
#: How far back apply looks for them: one DynamoDB Query per UTC day.
PENDING_DELETE_LOOKBACK: Final = timedelta(days=7)
_DESCRIPTION_MAX = 255
#: EC2's answer to a second ModifySnapshotTier on a snapshot archived or being archived.
_TIER_STATE_CODES: Final = frozenset({"IncorrectState"})
#: EC2's answer when 20 copies into one region are already in flight.
_COPY_LIMIT_CODES: Final = frozenset({"ResourceLimitExceeded"})


@dataclass(frozen=True)
class ActionResult:
    """What became of one action. ``audit_error``: the action's record is incomplete."""

    action: Action
    outcome: Outcome
    snapshot_ids: tuple[str, ...] = ()
    error: str = ""
    reason: str = ""
    audit_error: str = ""

    @property
    def needs_attention(self) -> bool:
        return self.outcome == "failed" or bool(self.audit_error)


@dataclass(frozen=True)
class RunResult:
    """Every action's result (in plan order) and the actions this run did not start."""

    run_id: str
    results: tuple[ActionResult, ...]
    stopped_early: bool = False
    not_started: tuple[Action, ...] = ()
    #: why the run stopped early: asked to stop, or the audit log could not be written
    stop_reason: str = ""
    #: what became of records earlier runs left ``pending`` (closed, or why not checked)
    notes: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        counts = {"succeeded": 0, "failed": 0, "skipped": 0}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        counts["not_started"] = len(self.not_started)
        return counts

    @property
    def failed(self) -> tuple[ActionResult, ...]:
        """Failed actions, and actions whose audit record could not be completed."""
        return tuple(r for r in self.results if r.needs_attention)

    @property
    def ok(self) -> bool:
        return not self.failed


class _Failed(Exception):
    """One call or action failed; the message says what and what to do."""

    def __init__(self, message: str, code: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        #: AWS's own message, for reasons built from it
        self.detail = detail or message


class _Unknown(_Failed):
    """A create whose outcome is unknown: EC2 may have made the snapshots."""


@dataclass
class _RunState:
    results: dict[int, ActionResult] = field(default_factory=dict)
    not_started: dict[int, Action] = field(default_factory=dict)
    #: claims this run holds and has not completed (released if the run ends early)
    held_claims: set[str] = field(default_factory=set)
    stop_reason: str = ""
    halted: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Executor:
    """Applies plans. One instance per run id; ``apply`` may be called once per plan.

    ``ec2_clients(region)`` returns the EC2 client of a region (configured with botocore's
    adaptive retries); ``clock`` returns an aware UTC datetime; ``sleep`` waits between
    our own retries; ``should_stop`` is asked before each action is started.
    """

    def __init__(
        self,
        ec2_clients: Callable[[str], EC2Client],
        audit: AuditLog,
        *,
        run_id: str,
        actor: str,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
        on_result: Callable[[ActionResult], None] | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        claim_lease: timedelta = DEFAULT_CLAIM_LEASE,
        rng: random.Random | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._ec2_factory = ec2_clients
        self._clients: dict[str, EC2Client] = {}
        self._clients_lock = threading.Lock()
        self._audit = audit
        self.run_id = run_id
        self._actor = actor
        self._clock = clock
        self._sleep = sleep
        self._should_stop = should_stop
        self._on_result = on_result
        self._max_workers = max_workers
        self._lease = claim_lease
        self._rng = rng or random.Random()
        self._state = _RunState()

    # --- the run ------------------------------------------------------------------

    def apply(self, plan: Plan) -> RunResult:
        """Carry out every action of ``plan``; never raises for a failed action.

        Creates run first, in plan order (grouped by region); then deletes, on a bounded
        thread pool; then copies and archives, one after another in plan order.
        """
        self._state = state = _RunState()
        actions: tuple[Action, ...] = tuple(plan.actions)
        if not actions:
            return RunResult(self.run_id, ())
        try:
            self._audit.check_writable()
        except AuditError as exc:
            for index, action in enumerate(actions):
                self._finish(
                    index,
                    ActionResult(
                        action,
                        "failed",
                        error=str(exc),
                        reason="not attempted: SmartVault takes no action without its audit record",
                    ),
                )
            return RunResult(
                self.run_id,
                tuple(state.results[i] for i in sorted(state.results)),
                stopped_early=True,
                stop_reason=str(exc),
            )

        notes = self._close_abandoned_deletes()
        for note in notes:
            # Not an action of this plan, so not in the results: the log says it too.
            if "closed:" in note:
                _LOG.info("%s", note)
            else:
                _LOG.warning("%s", note)
        indexed = list(enumerate(actions))
        try:
            self._apply_creates([(i, a) for i, a in indexed if isinstance(a, CreateAction)])
            self._apply_deletes([(i, a) for i, a in indexed if isinstance(a, DeleteAction)])
            self._apply_copies([(i, a) for i, a in indexed if isinstance(a, CopyAction)])
            self._apply_archives([(i, a) for i, a in indexed if isinstance(a, ArchiveAction)])
        finally:
            # Claims taken but never completed (asked to stop, or a crash in this process):
            # hand them back now rather than make the next run wait for the lease.
            for rp in sorted(state.held_claims):
                # Best effort: if this fails too, the lease still ends the claim.
                with contextlib.suppress(Exception):
                    self._audit.release_claim(rp, self.run_id)
        return RunResult(
            self.run_id,
            tuple(state.results[i] for i in sorted(state.results)),
            stopped_early=bool(state.not_started),
            not_started=tuple(state.not_started[i] for i in sorted(state.not_started)),
            stop_reason=state.stop_reason if state.not_started else "",
            notes=notes,
        )

    def _close_abandoned_deletes(self) -> tuple[str, ...]:
        """Give delete records a killed run left ``pending`` their outcome, from EC2 as it is.

        A run killed between its DeleteSnapshot calls and the record's update leaves the
        record ``pending`` for good: the next plan no longer names snapshots that are gone.
        Records older than :data:`PENDING_DELETE_GRACE` (no live run is still on them), up
        to :data:`PENDING_DELETE_LOOKBACK` back, are looked up: when none of their snapshots
        exists any more, ``succeeded`` ("found gone"); when some do, ``failed`` (the plan
        deletes them again if retention still says so). Only ever a conditional update of
        the original record; any failure is a note, never a reason to stop the backups.
        """
        now = self._clock()
        try:
            pending = self._audit.pending_deletes(
                now - PENDING_DELETE_LOOKBACK, now - PENDING_DELETE_GRACE
            )
        except AuditError as exc:
            return (f"delete records left pending by earlier runs were not checked: {exc}",)
        notes: list[str] = []
        by_region: dict[str, list[tuple[AuditRecordRef, AuditRecord]]] = {}
        for ref, record in pending:
            if record.snapshot_ids:
                by_region.setdefault(record.region, []).append((ref, record))
        for region, entries in sorted(by_region.items()):
            ids = sorted({sid for _, r in entries for sid in r.snapshot_ids})
            try:
                existing = self._snapshots_by_id(self._ec2(region), ids)
            except _Failed as exc:
                notes.append(
                    f"{len(entries)} delete records left pending in {region} were not "
                    f"checked: {exc}"
                )
                continue
            for ref, record in entries:
                notes.append(self._close_abandoned(ref, record, existing, now))
        return tuple(n for n in notes if n)

    def _close_abandoned(
        self,
        ref: AuditRecordRef,
        record: AuditRecord,
        existing: Mapping[str, SnapshotTypeDef],
        now: datetime,
    ) -> str:
        left = [sid for sid in record.snapshot_ids if sid in existing]
        gone = [sid for sid in record.snapshot_ids if sid not in existing]
        when = iso_utc(now)
        details = {"resolved_by": self.run_id, "found_gone": ",".join(gone)}
        if left:
            outcome: Outcome = "failed"
            error = (
                f"the delete did not finish: run {record.run_id} stopped during it; found at "
                f"{when} by run {self.run_id} that {', '.join(left)} still exist (planned "
                "again while retention says so)"
            )
            details["still_exist"] = ",".join(left)
        else:
            outcome, error = "succeeded", ""
            details["resolution"] = (
                f"found gone at {when} by run {self.run_id}: the delete had landed, but run "
                f"{record.run_id} stopped before recording it"
            )
        try:
            closed = self._audit.close_pending(ref, outcome, error=error, details=details)
        except AuditError as exc:
            return f"pending delete record {ref.pk} {ref.sk} left pending: {exc}"
        if not closed:
            return ""  # its own run recorded it in the meantime
        return f"pending delete record {ref.pk} {ref.sk} of run {record.run_id} closed: {outcome}"

    def _stopping(self) -> bool:
        state = self._state
        if state.halted.is_set():
            return True
        if self._should_stop():
            with state.lock:
                if not state.stop_reason:
                    state.stop_reason = "asked to stop (time limit): the next run does the rest"
            return True
        return False

    def _halt(self, reason: str) -> None:
        """Start nothing more: the audit log cannot be written."""
        state = self._state
        with state.lock:
            if not state.halted.is_set():
                state.stop_reason = (
                    f"stopped: the audit log could not be written ({reason}); nothing more "
                    "was changed"
                )
                state.halted.set()

    def _finish(self, index: int, result: ActionResult) -> None:
        with self._state.lock:
            self._state.results[index] = result
        if self._on_result is not None:
            self._on_result(result)

    def _skip_start(self, index: int, action: Action) -> None:
        with self._state.lock:
            self._state.not_started[index] = action

    def _ec2(self, region: str) -> EC2Client:
        with self._clients_lock:
            client = self._clients.get(region)
            if client is None:
                client = self._clients[region] = self._ec2_factory(region)
            return client

    def _record(self, action: Action, outcome: Outcome, **fields: Any) -> AuditRecord:
        return AuditRecord(
            run_id=self.run_id,
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

    def _write_final(
        self, action: Action, result: ActionResult, details: Mapping[str, str] | None = None
    ) -> ActionResult:
        """Record an action that needed no EC2 call (skipped before starting)."""
        try:
            self._audit.record(
                self._record(
                    action,
                    result.outcome,
                    reason=result.reason or action.reason,
                    snapshot_ids=result.snapshot_ids,
                    error=result.error,
                    details=dict(details or {}),
                )
            )
        except AuditError as exc:
            self._halt(str(exc))
            return _with(result, audit_error=str(exc))
        return result

    def _update(self, ref: AuditRecordRef, result: ActionResult, **kwargs: Any) -> ActionResult:
        """Turn the pending record into the final one; a failure halts the run."""
        try:
            self._audit.update_outcome(
                ref,
                result.outcome,
                error=result.error,
                snapshot_ids=result.snapshot_ids,
                reason=result.reason or None,
                **kwargs,
            )
        except AuditError as exc:
            self._halt(str(exc))
            return _with(
                result,
                audit_error=f"its audit record was left 'pending' ({ref.pk} {ref.sk}): {exc}",
            )
        return result

    # --- creates --------------------------------------------------------------------

    def _apply_creates(self, items: list[tuple[int, CreateAction]]) -> None:
        by_region: dict[str, list[tuple[int, CreateAction]]] = {}
        for index, action in items:
            by_region.setdefault(action.region, []).append((index, action))
        for region_items in by_region.values():
            # Claim, then look, then create, a chunk at a time: the look must come after
            # the claim (or a crashed run's snapshot could be missed), and one look per
            # chunk keeps the DescribeSnapshots calls few and within the 200-value limit.
            for chunk in _chunks(region_items, FILTER_VALUES_MAX):
                self._create_chunk(chunk)

    def _create_chunk(self, chunk: Sequence[tuple[int, CreateAction]]) -> None:
        state = self._state
        claims: dict[int, ClaimResult] = {}
        for index, action in chunk:
            if self._stopping():
                break
            try:
                claim = self._audit.claim(action.recovery_point, self.run_id, self._lease)
            except AuditError as exc:
                self._halt(str(exc))
                self._finish(index, ActionResult(action, "failed", error=f"not created: {exc}"))
                break
            if claim.status == "claimed":
                with state.lock:
                    state.held_claims.add(action.recovery_point)
            claims[index] = claim
        region = chunk[0][1].region
        try:
            found = self._snapshots_by_recovery_point(
                self._ec2(region), [a for i, a in chunk if i in claims]
            )
            look_error = ""
        except _Failed as exc:
            found, look_error = {}, str(exc)
        for index, action in chunk:
            if index in state.results:
                continue
            taken = claims.get(index)
            if taken is None or self._stopping():
                self._skip_start(index, action)
                continue
            if look_error:
                result = ActionResult(action, "failed", error=f"not created: {look_error}")
                self._release(action.recovery_point)
                self._finish(index, self._write_final(action, result))
                continue
            self._finish(index, self._create_one(action, taken, found.get(action.recovery_point)))

    def _create_one(
        self, action: CreateAction, claim: ClaimResult, found: list[SnapshotTypeDef] | None
    ) -> ActionResult:
        if claim.status == "held":
            return self._write_final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"another run is creating it: run {claim.run_id} holds its claim "
                    f"until {iso_utc(claim.lease_until)}",
                ),
            )
        existing = self._settle_existing(action, claim, found or [])
        if existing is not None:
            return existing if existing.audit_error else self._write_final(action, existing)
        if claim.status == "done":
            if self._clock() < claim.lease_until:
                # Completed moments ago, yet not listed: EC2's DescribeSnapshots is
                # eventually consistent, so "gone" cannot be told from "not listed yet".
                # Taking it over now could make the recovery point twice; a run after
                # the lease can.
                return self._write_final(
                    action,
                    ActionResult(
                        action,
                        "skipped",
                        reason=f"created by run {claim.run_id} moments ago, but its snapshots "
                        f"are not listed yet; not created again before "
                        f"{iso_utc(claim.lease_until)}",
                    ),
                )
            # Done, but its snapshots are gone: the slot may be taken again, by one run only.
            taken = self._take_over(action, claim, "not created")
            if isinstance(taken, ActionResult):
                return taken
            return self._create(action, taken, look_again=True)
        return self._create(action, claim)

    def _settle_existing(
        self, action: CreateAction, claim: ClaimResult, snapshots: Sequence[SnapshotTypeDef]
    ) -> ActionResult | None:
        """The result when snapshots of the recovery point exist already (the claim completed
        or handed back as fits), still to be recorded; None when there are none."""
        rp = action.recovery_point
        errored = sorted(s["SnapshotId"] for s in snapshots if s.get("State") == "error")
        live = sorted(s["SnapshotId"] for s in snapshots if s.get("State") != "error")
        if errored:
            # A failed recovery point: its policy deletes it (and that delete releases
            # the claim); creating beside it would mix good and failed snapshots under
            # one recovery point id.
            self._release(rp)
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
                action, "skipped", tuple(live), reason=f"already created by run {claim.run_id}"
            )
        reason = f"already exists: {', '.join(live)} (made by an earlier run that did not finish)"
        try:
            self._audit.complete_claim(rp, self.run_id, live)
            self._forget_claim(rp)
        except AuditError as exc:
            self._halt(str(exc))
            return ActionResult(action, "skipped", tuple(live), reason=reason, audit_error=str(exc))
        return ActionResult(action, "skipped", tuple(live), reason=reason)

    def _take_over(
        self, action: Action, done: ClaimResult, not_done: str
    ) -> ClaimResult | ActionResult:
        """Take over a ``done`` claim whose snapshots are gone, so one run (only) may make
        them again; the ActionResult to report when this run must not go on."""
        try:
            claim = self._audit.take_over_claim(done, self.run_id, self._lease)
        except AuditError as exc:
            self._halt(str(exc))
            return ActionResult(action, "failed", error=f"{not_done}: {exc}")
        if claim.status != "claimed":
            # Another run took it over first: that run makes it, not this one.
            return self._write_final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"another run ({claim.run_id}) took over its claim first",
                ),
            )
        with self._state.lock:
            self._state.held_claims.add(claim.recovery_point)
        return claim

    def _start_claimed(
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
            ref = self._audit.record(pending)
        except AuditError as exc:
            self._release(claim_id)
            self._halt(str(exc))
            return ActionResult(action, "failed", error=f"{not_done}: {exc}")
        taken_over = False
        if self._clock() >= claim.lease_until - self._lease / 2:
            try:
                renewed = self._audit.renew_claim(claim, self.run_id, self._lease)
                if renewed is None:
                    # Not ours any more: our lease lapsed and another run took the claim,
                    # then finished, released it or died holding it.
                    renewed = self._audit.claim(claim_id, self.run_id, self._lease)
                    taken_over = renewed.status == "claimed"
            except AuditError as exc:
                self._halt(str(exc))
                return self._update(ref, ActionResult(action, "failed", error=f"{not_done}: {exc}"))
            if renewed.status != "claimed":
                self._forget_claim(claim_id)
                return self._update(
                    ref,
                    ActionResult(
                        action,
                        "skipped",
                        reason=f"its claim passed to run {renewed.run_id} while this run waited",
                    ),
                )
            claim = renewed
            with self._state.lock:
                self._state.held_claims.add(claim_id)
        return ref, claim, taken_over

    def _create(
        self, action: CreateAction, claim: ClaimResult, *, look_again: bool = False
    ) -> ActionResult:
        """Create the claimed recovery point. ``look_again``: the claim was taken over after
        the chunk's look-up, so that look-up may miss what another run made."""
        rp = action.recovery_point
        started = self._start_claimed(
            action,
            claim,
            self._record(action, "pending", details=dict(action.full_tag_values)),
            "not created",
        )
        if isinstance(started, ActionResult):
            return started
        ref, claim, taken_over = started
        if look_again or taken_over:
            try:
                found = self._snapshots_by_recovery_point(self._ec2(action.region), [action])
            except _Failed as exc:
                self._release(rp)
                return self._update(
                    ref, ActionResult(action, "failed", error=f"not created: {exc}")
                )
            existing = self._settle_existing(action, claim, found.get(rp, []))
            if existing is not None:
                return self._update(ref, existing)
        try:
            snapshot_ids = self._call_create(action)
        except _Unknown as exc:
            # EC2 may have made it without listing it yet: keep the claim for its lease
            # (never hand it back at the end of the run either), so no run creates it
            # again before the snapshot shows; the run after the lease finds it by its tag.
            self._forget_claim(rp)
            return self._update(ref, ActionResult(action, "failed", error=str(exc)))
        except _Failed as exc:
            self._release(rp)  # refused: nothing was made
            return self._update(ref, ActionResult(action, "failed", error=str(exc)))
        result = self._update(ref, ActionResult(action, "succeeded", snapshot_ids))
        try:
            self._audit.complete_claim(rp, self.run_id, snapshot_ids)
            self._forget_claim(rp)
        except AuditError as exc:
            # The snapshots exist and carry the recovery point tag: later runs find them.
            self._halt(str(exc))
            return _with(result, audit_error=result.audit_error or str(exc))
        return result

    def _call_create(self, action: CreateAction) -> tuple[str, ...]:
        ec2 = self._ec2(action.region)
        tags = _tags_for(action)
        description = (
            f"SmartVault {action.recovery_point} ({action.policy}, {action.resource_id})"
        )[:_DESCRIPTION_MAX]
        tag_specs: list[Any] = [{"ResourceType": "snapshot", "Tags": tags}]
        for attempt in range(MAX_ATTEMPTS):
            try:
                if action.resource_type == "instance":
                    response = ec2.create_snapshots(
                        InstanceSpecification={
                            "InstanceId": action.resource_id,
                            "ExcludeBootVolume": action.exclude_boot_volume,
                        },
                        Description=description,
                        TagSpecifications=tag_specs,
                    )
                    return tuple(s["SnapshotId"] for s in response.get("Snapshots", []))
                single = ec2.create_snapshot(
                    VolumeId=action.resource_id,
                    Description=description,
                    TagSpecifications=tag_specs,
                )
                return (single["SnapshotId"],)
            except ClientError as exc:
                if _code(exc) in THROTTLING_CODES:
                    last = _describe_error(exc)  # refused before anything was made: retry
                elif _status(exc) >= 500:
                    return self._after_unknown_create(action, _describe_error(exc))
                else:
                    raise _Failed(f"not created: {_describe_error(exc)}", _code(exc)) from exc
            except DeadlineReached as exc:  # never sent: known not to exist
                raise _Failed(f"not created: {exc}", "DeadlineReached") from exc
            except BotoCoreError as exc:
                return self._after_unknown_create(action, f"{type(exc).__name__}: {exc}")
            if attempt + 1 < MAX_ATTEMPTS:
                self._sleep(self._backoff(attempt))
        raise _Failed(
            f"not created: EC2 kept throttling CreateSnapshots in {action.region} after "
            f"{MAX_ATTEMPTS} attempts ({last}); the next run tries again"
        )

    def _after_unknown_create(self, action: CreateAction, error: str) -> tuple[str, ...]:
        """After a server error or a lost connection: the snapshot may or may not exist.

        CreateSnapshot(s) has no ClientToken, so it is never called again in this run; a
        snapshot EC2 did make is found by its recovery point tag (now, or by the next run,
        which claims the slot and looks before creating).
        """
        try:
            found = self._snapshots_by_recovery_point(self._ec2(action.region), [action]).get(
                action.recovery_point, []
            )
        except _Failed:
            found = []
        live = tuple(sorted(s["SnapshotId"] for s in found if s.get("State") != "error"))
        if live:
            return live
        raise _Unknown(
            f"not created: {error}. EC2 may still have made it; it is not asked again in this "
            "run (CreateSnapshots has no idempotency token). Its claim is kept for its lease; "
            "a run after that finds it by its recovery point tag, or creates it"
        )

    def _release(self, rp: str) -> None:
        """Give back this run's claim, best effort: its lease ends it anyway."""
        try:
            self._audit.release_claim(rp, self.run_id)
        except AuditError:
            return
        self._forget_claim(rp)

    def _forget_claim(self, rp: str) -> None:
        with self._state.lock:
            self._state.held_claims.discard(rp)

    def _snapshots_by_recovery_point(
        self, ec2: EC2Client, creates: Sequence[CreateAction]
    ) -> dict[str, list[SnapshotTypeDef]]:
        """The snapshots that are part of these creates' recovery points, by recovery point.

        Found by their tag, then kept only when every tag agrees with it, as the planner
        reads them (DESIGN §1): a snapshot someone else tagged with the id (of another
        volume, a copy, another slot) is not the recovery point, so it can neither
        suppress the backup nor be reported as it.
        """
        wanted = {action.recovery_point: action for action in creates}
        found: dict[str, list[SnapshotTypeDef]] = {}
        for chunk in _chunks(sorted(wanted), FILTER_VALUES_MAX):
            for snapshot in self._describe_snapshots(
                ec2, {"Name": f"tag:{TAG_RECOVERY_POINT}", "Values": list(chunk)}
            ):
                tags = _tag_map(snapshot.get("Tags", []))
                action = wanted.get(tags.get(TAG_RECOVERY_POINT, ""))
                if action is not None and _part_of(snapshot, action):
                    found.setdefault(action.recovery_point, []).append(snapshot)
        return found

    def _describe_snapshots(
        self, ec2: EC2Client, snapshot_filter: Mapping[str, Any]
    ) -> Iterator[SnapshotTypeDef]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "OwnerIds": ["self"],
                "Filters": [snapshot_filter],
                "MaxResults": 1000,
            }
            if token:
                kwargs["NextToken"] = token
            page = self._retrying(
                "read snapshots (DescribeSnapshots)",
                functools.partial(ec2.describe_snapshots, **kwargs),
            )
            yield from page.get("Snapshots", [])
            token = page.get("NextToken")
            if not token:
                return

    # --- deletes ----------------------------------------------------------------------

    def _apply_deletes(self, items: list[tuple[int, DeleteAction]]) -> None:
        if not items:
            return
        looked: dict[str, dict[str, SnapshotTypeDef] | str] = {}
        for region in sorted({a.region for _, a in items}):
            ids = sorted({s for _, a in items if a.region == region for s in a.snapshot_ids})
            try:
                looked[region] = self._snapshots_by_id(self._ec2(region), ids)
            except _Failed as exc:
                looked[region] = str(exc)
        pool = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="delete")
        futures: dict[Future[ActionResult | None], tuple[int, DeleteAction]] = {
            pool.submit(self._delete_one, action, looked[action.region]): (index, action)
            for index, action in items
        }
        try:
            for future in as_completed(futures):
                index, action = futures[future]
                result = future.result()
                if result is None:
                    self._skip_start(index, action)
                else:
                    self._finish(index, result)
        except BaseException:
            # A crash: queued deletes must not start; in-flight ones finish.
            self._halt("the run ended with an unexpected error")
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _snapshots_by_id(self, ec2: EC2Client, ids: Sequence[str]) -> dict[str, SnapshotTypeDef]:
        found: dict[str, SnapshotTypeDef] = {}
        # A snapshot-id *filter*, not SnapshotIds=: a missing id must not fail the call.
        for chunk in _chunks(ids, FILTER_VALUES_MAX):
            for snapshot in self._describe_snapshots(
                ec2, {"Name": "snapshot-id", "Values": list(chunk)}
            ):
                found[snapshot["SnapshotId"]] = snapshot
        return found

    def _ours_or_refusal(
        self,
        action: DeleteAction | ArchiveAction | CopyAction,
        looked: dict[str, SnapshotTypeDef] | str,
        verb: str,
        done: str,
    ) -> dict[str, SnapshotTypeDef] | ActionResult:
        """The snapshots as just read, or the final result when the action must not go on:
        they could not be read (``failed``), or some lost SmartVault's tags since planning
        (``skipped``: never touch a snapshot SmartVault does not own)."""
        if isinstance(looked, str):
            return self._write_final(
                action, ActionResult(action, "failed", error=f"nothing {done}: {looked}")
            )
        foreign = [
            sid for sid in action.snapshot_ids if sid in looked and not _ours(looked[sid], action)
        ]
        if foreign:
            return self._write_final(
                action,
                ActionResult(action, "skipped", reason=_not_ours(action, foreign, verb, done)),
            )
        return looked

    def _delete_one(
        self, action: DeleteAction, looked: dict[str, SnapshotTypeDef] | str
    ) -> ActionResult | None:
        """Delete one recovery point; None when it was not started (asked to stop)."""
        if self._stopping():
            return None
        checked = self._ours_or_refusal(action, looked, "delete", "deleted")
        if isinstance(checked, ActionResult):
            return checked
        looked = checked
        was_failed = any(
            looked[s].get("State") == "error" for s in action.snapshot_ids if s in looked
        )
        try:
            ref = self._audit.record(
                self._record(action, "pending", snapshot_ids=tuple(action.snapshot_ids))
            )
        except AuditError as exc:
            self._halt(str(exc))
            return ActionResult(action, "failed", error=f"nothing deleted: {exc}")

        ec2 = self._ec2(action.region)
        deleted: list[str] = []
        gone: list[str] = []
        in_use: list[str] = []
        errors: list[str] = []
        for sid in action.snapshot_ids:
            if sid not in looked:
                gone.append(sid)  # already deleted (by a person, or a run that crashed)
                continue
            try:
                self._retrying(
                    f"delete {sid}", functools.partial(ec2.delete_snapshot, SnapshotId=sid)
                )
                deleted.append(sid)
            except _Failed as exc:
                if exc.code == "InvalidSnapshot.NotFound":
                    gone.append(sid)
                elif exc.code == "InvalidSnapshot.InUse":
                    in_use.append(exc.detail)
                else:
                    errors.append(exc.message)
        details = {
            "deleted": ",".join(deleted),
            "already_gone": ",".join(gone),
        }
        if errors:
            result = ActionResult(
                action,
                "failed",
                tuple(action.snapshot_ids),
                error="; ".join(errors) + "; the next run tries again",
            )
        elif in_use:
            details["in_use"] = "; ".join(in_use)
            result = ActionResult(
                action,
                "skipped",
                tuple(action.snapshot_ids),
                reason="in use by an AMI registered after planning, so kept: " + "; ".join(in_use),
            )
        else:
            result = ActionResult(action, "succeeded", tuple(action.snapshot_ids))
        result = self._update(ref, result, details=details)
        if result.outcome == "succeeded" and was_failed:
            # A failed recovery point's slot may be attempted again: drop its claim (only
            # a done one: never pull a live claim from under a run that is creating).
            try:
                self._audit.release_claim(action.recovery_point, only_done=True)
            except AuditError as exc:
                return _with(result, audit_error=result.audit_error or str(exc))
        return result

    # --- copies -------------------------------------------------------------------------

    def _apply_copies(self, items: list[tuple[int, CopyAction]]) -> None:
        if not items:
            return
        looked = self._look_by_region((a.region, a.snapshot_ids) for _, a in items)
        #: target regions where EC2 refused a copy for too many copies in flight (20)
        full: set[str] = set()
        for index, action in items:
            if self._stopping():
                self._skip_start(index, action)
                continue
            if action.target_region in full:
                result = ActionResult(
                    action,
                    "skipped",
                    reason=f"not started: {action.target_region} already has as many copies in "
                    "flight as EC2 allows (ResourceLimitExceeded); the next run copies it",
                )
                self._finish(index, self._write_final(action, result))
                continue
            self._finish(index, self._copy_one(action, looked[action.region], full))

    def _copy_one(
        self, action: CopyAction, looked: dict[str, SnapshotTypeDef] | str, full: set[str]
    ) -> ActionResult:
        """Copy the snapshots of one recovery point to the target region, each at most once.

        CopySnapshot has no idempotency token, so, as for creates: claim (one claim per
        recovery point and target region), then look in the target region for copies
        already tagged ``smartvault:source`` with each source, then copy only the missing.
        """
        target = action.target_region
        checked = self._ours_or_refusal(action, looked, "copy", "copied")
        if isinstance(checked, ActionResult):
            return checked
        looked = checked
        gone = [sid for sid in action.snapshot_ids if sid not in looked]
        unusable = [
            sid
            for sid in action.snapshot_ids
            if sid in looked
            and (
                looked[sid].get("State") != "completed"
                or looked[sid].get("StorageTier", "standard") == "archive"
            )
        ]
        sources = [sid for sid in action.snapshot_ids if sid in looked and sid not in unusable]
        if not sources:
            reasons = []
            if gone:
                reasons.append(f"{', '.join(gone)} no longer exist")
            if unusable:
                reasons.append(f"{', '.join(unusable)} are archived or not completed")
            return self._write_final(
                action,
                ActionResult(action, "skipped", reason="nothing to copy: " + "; ".join(reasons)),
            )

        claim_id = _copy_claim_id(action)
        try:
            claim = self._audit.claim(claim_id, self.run_id, self._lease)
        except AuditError as exc:
            self._halt(str(exc))
            return ActionResult(action, "failed", error=f"nothing copied: {exc}")
        if claim.status == "held":
            return self._write_final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    reason=f"another run is copying it: run {claim.run_id} holds its claim "
                    f"{claim_id} until {iso_utc(claim.lease_until)}",
                ),
            )
        if claim.status == "claimed":
            with self._state.lock:
                self._state.held_claims.add(claim_id)

        # Only after claiming: a copy a crashed or overlapping run made must be seen here.
        target_ec2 = self._ec2(target)
        try:
            existing = self._copies_in(target_ec2, action, sources)
        except _Failed as exc:
            if claim.status == "claimed":
                self._release(claim_id)
            return self._write_final(
                action, ActionResult(action, "failed", error=f"nothing copied: {exc}")
            )
        present, errored, missing = _sort_copies(sources, existing)
        details = _copy_details(target, present, errored)

        if claim.status == "done":
            if not missing:
                return self._write_final(
                    action,
                    ActionResult(
                        action,
                        "skipped",
                        tuple(sorted(present.values())),
                        reason=f"already copied to {target} by run {claim.run_id}",
                    ),
                    details,
                )
            if self._clock() < claim.lease_until:
                # Copies made moments ago may not be listed yet (EC2 is eventually
                # consistent): copying now could copy twice. A run after the lease may.
                return self._write_final(
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
            taken = self._take_over(action, claim, "nothing copied")
            if isinstance(taken, ActionResult):
                return taken
            return self._copy_missing(
                action, taken, sources, missing, present, looked, details, full, look_again=True
            )

        if not missing:
            settled = self._settle_copied(action, claim_id, present, errored)
            if settled.audit_error:
                return settled
            return self._write_final(action, settled, details)
        return self._copy_missing(action, claim, sources, missing, present, looked, details, full)

    def _settle_copied(
        self, action: CopyAction, claim_id: str, present: Mapping[str, str], errored: Sequence[str]
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
                self._audit.complete_claim(claim_id, self.run_id, copy_ids)
                self._forget_claim(claim_id)
            except AuditError as exc:
                self._halt(str(exc))
                return ActionResult(
                    action, "skipped", copy_ids, reason=reason, audit_error=str(exc)
                )
            return ActionResult(action, "skipped", copy_ids, reason=reason)
        self._release(claim_id)
        reason = (
            f"the copies of {', '.join(errored)} in {target} are in state error; copied "
            "again once the copy retention has deleted them"
        )
        return ActionResult(action, "skipped", copy_ids, reason=reason)

    def _copy_missing(
        self,
        action: CopyAction,
        claim: ClaimResult,
        sources: Sequence[str],
        missing: Sequence[str],
        present: Mapping[str, str],
        looked: Mapping[str, SnapshotTypeDef],
        details: dict[str, str],
        full: set[str],
        *,
        look_again: bool = False,
    ) -> ActionResult:
        """Copy the ``missing`` of ``sources`` (``present``: those found copied). ``look_again``:
        the claim was taken over after that look, which may miss what another run copied."""
        claim_id = claim.recovery_point
        target = action.target_region
        if action.kms_key_id:
            details["kms_key_id"] = action.kms_key_id
        started = self._start_claimed(
            action,
            claim,
            self._record(action, "pending", snapshot_ids=tuple(missing), details=details),
            "nothing copied",
        )
        if isinstance(started, ActionResult):
            return started
        ref, claim, taken_over = started
        if look_again or taken_over:
            try:
                existing = self._copies_in(self._ec2(target), action, sources)
            except _Failed as exc:
                self._release(claim_id)
                return self._update(
                    ref, ActionResult(action, "failed", error=f"nothing copied: {exc}")
                )
            present, errored, missing = _sort_copies(sources, existing)
            details.update(_copy_details(target, present, errored))
            if not missing:
                return self._update(
                    ref, self._settle_copied(action, claim_id, present, errored), details=details
                )

        made: dict[str, str] = {}
        unknown: list[str] = []
        errors: list[str] = []
        for position, sid in enumerate(missing):
            try:
                made[sid] = self._call_copy(action, looked[sid])
            except _Unknown as exc:
                unknown.append(exc.message)
            except _Failed as exc:
                errors.append(exc.message)
                if exc.code in _COPY_LIMIT_CODES:
                    full.add(target)
                    rest = missing[position + 1 :]
                    if rest:
                        errors.append(f"{', '.join(rest)} not started")
                    break
        details = {"copies": _pairs(made)}
        copy_ids = tuple(made[s] for s in missing if s in made)
        all_ids = tuple(sorted({*present.values(), *made.values()}))
        if unknown or errors:
            result = self._update(
                ref,
                ActionResult(
                    action,
                    "failed",
                    copy_ids,
                    error="; ".join(unknown + errors) + "; the next plan copies what is missing",
                ),
                details=details,
            )
            if unknown:
                # EC2 may have made a copy it does not list yet: keep the claim for its
                # lease (never hand it back at the end of the run either), so no run copies
                # that snapshot again before its copy shows.
                self._forget_claim(claim_id)
            elif made:
                # Copies just made may not be listed yet: a done claim keeps other runs from
                # copying this recovery point again before its lease ends.
                with contextlib.suppress(AuditError):
                    self._audit.complete_claim(claim_id, self.run_id, all_ids)
                    self._forget_claim(claim_id)
            else:
                self._release(claim_id)  # refused: nothing was made
            return result
        result = self._update(ref, ActionResult(action, "succeeded", copy_ids), details=details)
        try:
            self._audit.complete_claim(claim_id, self.run_id, all_ids)
            self._forget_claim(claim_id)
        except AuditError as exc:
            # The copies exist and carry smartvault:source: later runs find them.
            self._halt(str(exc))
            return _with(result, audit_error=result.audit_error or str(exc))
        return result

    def _call_copy(self, action: CopyAction, source: SnapshotTypeDef) -> str:
        """One CopySnapshot, in the target region; the new snapshot id."""
        sid = source["SnapshotId"]
        ec2 = self._ec2(action.target_region)
        kwargs: dict[str, Any] = {
            "SourceRegion": action.region,
            "SourceSnapshotId": sid,
            "Description": (f"SmartVault copy of {action.region}/{sid} ({action.recovery_point})")[
                :_DESCRIPTION_MAX
            ],
            "TagSpecifications": [{"ResourceType": "snapshot", "Tags": _copy_tags(action, source)}],
        }
        if action.kms_key_id:
            kwargs["Encrypted"] = True
            kwargs["KmsKeyId"] = action.kms_key_id
        last = ""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return ec2.copy_snapshot(**kwargs)["SnapshotId"]
            except ClientError as exc:
                if _code(exc) in THROTTLING_CODES:
                    last = _describe_error(exc)  # refused before anything was made: retry
                elif _status(exc) >= 500:
                    return self._after_unknown_copy(action, sid, _describe_error(exc))
                else:
                    raise _Failed(f"{sid} not copied: {_describe_error(exc)}", _code(exc)) from exc
            except DeadlineReached as exc:  # never sent: known not to exist
                raise _Failed(f"{sid} not copied: {exc}", "DeadlineReached") from exc
            except BotoCoreError as exc:
                return self._after_unknown_copy(action, sid, f"{type(exc).__name__}: {exc}")
            if attempt + 1 < MAX_ATTEMPTS:
                self._sleep(self._backoff(attempt))
        raise _Failed(
            f"{sid} not copied: EC2 kept throttling CopySnapshot in {action.target_region} "
            f"after {MAX_ATTEMPTS} attempts ({last})"
        )

    def _after_unknown_copy(self, action: CopyAction, sid: str, error: str) -> str:
        """After a server error or a lost connection: the copy may or may not exist."""
        try:
            found = self._copies_in(self._ec2(action.target_region), action, [sid])
        except _Failed:
            found = {}
        live = sorted(c["SnapshotId"] for c in found.get(sid, []) if c.get("State") != "error")
        if live:
            return live[0]
        raise _Unknown(
            f"{sid} not copied: {error}. EC2 may still have made the copy; it is not asked "
            "again in this run (CopySnapshot has no idempotency token). Its claim is kept for "
            f"its lease; a run after that finds the copy by its {TAG_SOURCE} tag, or copies it"
        )

    def _copies_in(
        self, ec2: EC2Client, action: CopyAction, source_ids: Sequence[str]
    ) -> dict[str, list[SnapshotTypeDef]]:
        """The copies of ``action``'s recovery point in the region of ``ec2``, by source id.

        Found by their ``smartvault:source`` tag, then kept only when they are copies of
        this recovery point as the planner reads them (managed, the recovery point's id,
        every tag agreeing with it): a snapshot someone else tagged as the copy is not the
        copy, so it can neither stop the real one nor be reported as it.
        """
        source_region = action.region
        prefix = f"{source_region}/"
        values = sorted({prefix + sid for sid in source_ids})
        found: dict[str, list[SnapshotTypeDef]] = {}
        for chunk in _chunks(values, FILTER_VALUES_MAX):
            for snapshot in self._describe_snapshots(
                ec2, {"Name": f"tag:{TAG_SOURCE}", "Values": list(chunk)}
            ):
                tags = _tag_map(snapshot.get("Tags", []))
                source = tags.get(TAG_SOURCE, "")
                if source.startswith(prefix) and _copy_of(snapshot, action):
                    found.setdefault(source[len(prefix) :], []).append(snapshot)
        return found

    # --- archives -----------------------------------------------------------------------

    def _apply_archives(self, items: list[tuple[int, ArchiveAction]]) -> None:
        if not items:
            return
        looked = self._look_by_region((a.region, a.snapshot_ids) for _, a in items)
        for index, action in items:
            if self._stopping():
                self._skip_start(index, action)
                continue
            self._finish(index, self._archive_one(action, looked[action.region]))

    def _archive_one(
        self, action: ArchiveAction, looked: dict[str, SnapshotTypeDef] | str
    ) -> ActionResult:
        checked = self._ours_or_refusal(action, looked, "archive", "archived")
        if isinstance(checked, ActionResult):
            return checked
        looked = checked
        gone = [sid for sid in action.snapshot_ids if sid not in looked]
        already = [
            sid
            for sid in action.snapshot_ids
            if sid in looked and looked[sid].get("StorageTier") == "archive"
        ]
        # Temporarily restored from the archive by a person, for use: EC2 archives it again
        # by itself when the restore period ends; archiving it now would take it away.
        restored = [
            sid
            for sid in action.snapshot_ids
            if sid in looked and sid not in already and looked[sid].get("RestoreExpiryTime")
        ]
        todo = [
            sid for sid in action.snapshot_ids if sid in looked and sid not in already + restored
        ]
        archived: list[str] = []
        errors: list[str] = []
        ref: AuditRecordRef | None = None
        if todo:
            try:
                ref = self._audit.record(
                    self._record(action, "pending", snapshot_ids=tuple(action.snapshot_ids))
                )
            except AuditError as exc:
                self._halt(str(exc))
                return ActionResult(action, "failed", error=f"nothing archived: {exc}")
            ec2 = self._ec2(action.region)
            for sid in todo:
                try:
                    # Safe to repeat, so _retrying retries 5xx answers too: the call names
                    # an absolute end state (the archive tier), not a change to add. A
                    # repeat of a call that had landed is accepted again or answered
                    # IncorrectState (already archived or being archived), which counts as
                    # done: nothing is made twice, and the archive's billing starts once.
                    self._retrying(
                        f"archive {sid}",
                        functools.partial(
                            ec2.modify_snapshot_tier, SnapshotId=sid, StorageTier="archive"
                        ),
                    )
                    archived.append(sid)
                except _Failed as exc:
                    if exc.code == "InvalidSnapshot.NotFound":
                        gone.append(sid)
                    elif exc.code in _TIER_STATE_CODES and self._archived_or_archiving(
                        ec2, sid, exc.detail
                    ):
                        already.append(sid)
                    else:
                        errors.append(exc.message)
        details = {
            "archived": ",".join(archived),
            "already_archived": ",".join(already),
            "already_gone": ",".join(gone),
        }
        if restored:
            details["temporarily_restored"] = ",".join(restored)
        ids = tuple(action.snapshot_ids)
        if errors:
            result = ActionResult(
                action, "failed", ids, error="; ".join(errors) + "; the next run tries again"
            )
        elif restored:
            result = ActionResult(
                action,
                "skipped",
                ids,
                reason=f"{', '.join(restored)} temporarily restored from the archive tier: left "
                "as they are (EC2 archives them again when the restore period ends)",
            )
        else:
            result = ActionResult(action, "succeeded", ids)
        if ref is None:
            return self._write_final(action, result, details)
        return self._update(ref, result, details=details)

    def _archived_or_archiving(self, ec2: EC2Client, sid: str, message: str) -> bool:
        """After IncorrectState: is the snapshot archived, or on its way there?"""
        if "archiv" in message.lower():
            return True
        try:
            found = self._snapshots_by_id(ec2, [sid])
        except _Failed:
            return False
        return found.get(sid, {}).get("StorageTier") == "archive"

    def _look_by_region(
        self, wanted: Iterable[tuple[str, Sequence[str]]]
    ) -> dict[str, dict[str, SnapshotTypeDef] | str]:
        """The named snapshots of each region as EC2 lists them now, or why not readable."""
        ids_by_region: dict[str, set[str]] = {}
        for region, ids in wanted:
            ids_by_region.setdefault(region, set()).update(ids)
        looked: dict[str, dict[str, SnapshotTypeDef] | str] = {}
        for region in sorted(ids_by_region):
            try:
                looked[region] = self._snapshots_by_id(
                    self._ec2(region), sorted(ids_by_region[region])
                )
            except _Failed as exc:
                looked[region] = str(exc)
        return looked

    # --- retries --------------------------------------------------------------------------

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """Call, retrying throttling and server errors (up to MAX_ATTEMPTS, with jitter).

        Only for calls that are safe to repeat. Raises _Failed(message, error code).
        """
        for attempt in range(MAX_ATTEMPTS):
            try:
                return call()
            except ClientError as exc:
                code = _code(exc)
                retryable = code in THROTTLING_CODES or _status(exc) >= 500
                if not retryable or attempt + 1 == MAX_ATTEMPTS:
                    raise _Failed(
                        f"could not {what}: {_describe_error(exc)}",
                        code,
                        str(exc.response.get("Error", {}).get("Message") or code),
                    ) from exc
            except DeadlineReached as exc:  # trying again could only run past the deadline
                raise _Failed(f"could not {what}: {exc}", "DeadlineReached") from exc
            except BotoCoreError as exc:
                if attempt + 1 == MAX_ATTEMPTS:
                    raise _Failed(
                        f"could not {what}: {type(exc).__name__}: {exc}", type(exc).__name__
                    ) from exc
            self._sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: 0..min(20, 2^attempt) seconds."""
        return self._rng.uniform(0, min(20.0, 2.0**attempt))


# --- helpers ----------------------------------------------------------------------------


def _tags_for(action: CreateAction) -> list[TagTypeDef]:
    """The planner's tags, with the three tags SmartVault's own safety rests on forced."""
    tags = dict(action.tags)
    tags[TAG_CREATED_BY] = CREATED_BY_VALUE
    tags[TAG_POLICY] = action.policy
    tags[TAG_RECOVERY_POINT] = action.recovery_point
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _copy_claim_id(action: CopyAction) -> str:
    """The claim of one recovery point's copy to one region (creates claim the bare id)."""
    return f"{action.recovery_point}@{action.target_region}"


def _copy_tags(action: CopyAction, source: SnapshotTypeDef) -> list[TagTypeDef]:
    """The source's tags (AWS reserves ``aws:*``), SmartVault's own forced, plus the source."""
    source_tags = _tag_map(source.get("Tags", []))
    own = {
        TAG_CREATED_BY: CREATED_BY_VALUE,
        TAG_POLICY: action.policy,
        TAG_RECOVERY_POINT: action.recovery_point,
        TAG_SOURCE: f"{action.region}/{source['SnapshotId']}",
    }
    # SmartVault's keys and Name first; the others (copied user tags) in key order until
    # EC2's 50-tag limit, which a source already at 50 would otherwise break on every run.
    first = [
        k for k in source_tags if k.startswith("smartvault:") or k in (TAG_INSTANCE_ID, TAG_NAME)
    ]
    rest = sorted(k for k in source_tags if k not in first)
    tags: dict[str, str] = {}
    for key in [*first, *rest]:
        if key.lower().startswith("aws:") or key in own:
            continue
        if len(tags) + len(own) >= TAGS_PER_RESOURCE_MAX:
            break
        tags[key] = source_tags[key]
    tags.update(own)
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _not_ours(
    action: DeleteAction | ArchiveAction | CopyAction, foreign: Sequence[str], verb: str, done: str
) -> str:
    """Why snapshots that lost SmartVault's tags since planning are left alone."""
    return (
        f"not SmartVault's to {verb} any more: {', '.join(foreign)} lack the tags "
        f"{TAG_CREATED_BY}={CREATED_BY_VALUE}, {TAG_POLICY}={action.policy} and "
        f"{TAG_RECOVERY_POINT}={action.recovery_point}; nothing {done}"
    )


def _sort_copies(
    sources: Sequence[str], existing: Mapping[str, Sequence[SnapshotTypeDef]]
) -> tuple[dict[str, str], list[str], list[str]]:
    """The sources with a live copy (source → copy), with only a copy in state error, and
    with none, from the copies found in the target region."""
    present: dict[str, str] = {}
    errored: list[str] = []
    missing: list[str] = []
    for sid in sources:
        copies = existing.get(sid, [])
        live = sorted(c["SnapshotId"] for c in copies if c.get("State") != "error")
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


def _ours(snapshot: SnapshotTypeDef, action: DeleteAction | ArchiveAction | CopyAction) -> bool:
    tags = _tag_map(snapshot.get("Tags", []))
    return (
        is_managed(tags)
        and tags.get(TAG_POLICY) == action.policy
        and tags.get(TAG_RECOVERY_POINT) == action.recovery_point
    )


def _part_of(snapshot: SnapshotTypeDef, action: CreateAction) -> bool:
    """Whether ``snapshot`` is one of the originals of ``action``'s recovery point."""
    tags = _tag_map(snapshot.get("Tags", []))
    if not is_managed(tags) or TAG_SOURCE in tags:
        return False
    found = read_recovery_point(snapshot_from_api(snapshot, action.region), action.resource_type)
    return isinstance(found, RecoveryPointId) and str(found) == action.recovery_point


def _copy_of(snapshot: SnapshotTypeDef, action: CopyAction) -> bool:
    """Whether ``snapshot`` is a copy of ``action``'s recovery point (in its target region)."""
    tags = _tag_map(snapshot.get("Tags", []))
    if not is_managed(tags) or TAG_SOURCE not in tags:
        return False
    found = read_recovery_point(snapshot_from_api(snapshot, action.target_region), None)
    return isinstance(found, RecoveryPointId) and str(found) == action.recovery_point


def _tag_map(tags: Iterable[TagTypeDef]) -> dict[str, str]:
    return {t.get("Key", ""): t.get("Value", "") for t in tags}


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _describe_error(exc: ClientError) -> str:
    message = exc.response.get("Error", {}).get("Message") or "no message"
    status = _status(exc)
    suffix = f" (HTTP {status})" if status >= 500 else ""
    return f"{_code(exc)}: {message}{suffix}"


def _with(result: ActionResult, **changes: Any) -> ActionResult:
    return replace(result, **changes)
