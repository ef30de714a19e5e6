"""The loop that applies a plan: ordering, pools, deadlines and stopping.

The guarantees (docs/audit-and-apply.md says them for operators):

- No action without its audit record: the table is checked before anything is done, a
  ``pending`` record is written before every create, copy, archive and delete call, and
  when a record cannot be written nothing more is changed in this run.
- No duplicate recovery point or copy: each is claimed first (:mod:`.claims`), looked for
  in EC2 after the claim, and made only when missing, with every tag set at creation.
- Nothing is touched that the action does not name, nor a snapshot that no longer carries
  the action's policy and recovery point tags.
- A failed action never stops the others; a run told to stop starts nothing new and lists
  what it did not start; the next run converges, since the plan is a pure function of
  the account.

Creates run first, in plan order (grouped by region), after the deletes of failed
recovery points whose slot they make again; then deletes, on a bounded thread pool; then
copies and archives, one after another in plan order; restore tests last, after the
sweep of test volumes earlier runs left (:mod:`.verify`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Final

from smartvault.apply.claims import ClaimGuard
from smartvault.apply.create import CreateStep
from smartvault.apply.delete import DEFAULT_MAX_WORKERS
from smartvault.apply.delete import DeleteStep
from smartvault.apply.ledger import RunLedger
from smartvault.apply.pending import close_abandoned_deletes
from smartvault.apply.ports import Audit
from smartvault.apply.ports import Ec2
from smartvault.apply.ports import Volumes
from smartvault.apply.step import RunContext
from smartvault.apply.step import Step
from smartvault.apply.trail import AuditTrail
from smartvault.core.model import Action
from smartvault.core.model import ArchiveAction
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Plan
from smartvault.core.model import VerifyAction
from smartvault.core.report import ActionResult
from smartvault.core.report import RunResult
from smartvault.errors import AuditError

_LOG = logging.getLogger(__name__)

DEFAULT_CLAIM_LEASE: Final = timedelta(minutes=15)


class Executor:
    """Applies plans. One instance per run id; ``apply`` may be called once per plan.

    ``ec2`` makes the snapshot calls (:class:`~smartvault.aws.ec2.Ec2Snapshots`),
    ``volumes`` the volume calls (:class:`~smartvault.aws.volumes.Ec2Volumes`), ``audit``
    holds the records and claims (:class:`~smartvault.aws.audit.AuditLog`); ``clock``
    returns an aware UTC datetime; ``sleep`` waits while a step waits on EC2;
    ``should_stop`` is asked before each action is started; ``on_result`` hears of each
    action as it finishes; ``table_checked``: the caller has just checked that the audit
    table can be written, so it is not asked again; ``sweep_regions``: regions where test
    volumes that earlier restore tests left are deleted even when no test there is due.
    """

    def __init__(
        self,
        ec2: Ec2,
        audit: Audit,
        *,
        volumes: Volumes,
        run_id: str,
        actor: str,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
        on_result: Callable[[ActionResult], None] | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        claim_lease: timedelta = DEFAULT_CLAIM_LEASE,
        table_checked: bool = False,
        sweep_regions: Sequence[str] = (),
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._ec2 = ec2
        self._volumes = volumes
        self._audit = audit
        self._sleep = sleep
        self.run_id = run_id
        self._actor = actor
        self._clock = clock
        self._should_stop = should_stop
        self._on_result = on_result
        self._max_workers = max_workers
        self._lease = claim_lease
        #: the caller checked the audit table just before (a pending record that cannot be
        #: written still stops the run before its change)
        self._table_checked = table_checked
        self._sweep_regions = tuple(sweep_regions)

    def apply(self, plan: Plan) -> RunResult:
        """Carry out every action of ``plan``; never raises for a failed action."""
        ledger = RunLedger(self.run_id, self._should_stop, self._on_result)
        actions: tuple[Action, ...] = tuple(plan.actions)
        if not actions and not self._sweep_regions:
            return RunResult(self.run_id, ())
        try:
            if not self._table_checked:
                self._audit.check_writable()
        except AuditError as exc:
            for index, action in enumerate(actions):
                ledger.finish(
                    index,
                    ActionResult(
                        action,
                        "failed",
                        error=str(exc),
                        reason="not attempted: SmartVault takes no action without its audit record",
                    ),
                )
            return replace(ledger.result(), stopped_early=True, stop_reason=str(exc))

        notes = close_abandoned_deletes(self._audit.records, self._ec2, self.run_id, self._clock())
        for note in notes:
            # Not an action of this plan, so not in the results: the log says it too.
            _LOG.log(logging.INFO if "closed:" in note else logging.WARNING, "%s", note)

        ctx = self._context(ledger)
        claims = ctx.claims
        deletes = DeleteStep(ctx, self._max_workers)
        steps: list[tuple[Callable[[Action], bool], Step[Any, Any]]] = [
            # A failed recovery point of the slot a create makes again goes first: while
            # its snapshots exist the create must not mix new ones in beside them, and
            # the slot would wait for the next run (a failed nightly retried an hour
            # later by the catch-up schedule, not two).
            (_failed_point_remade(actions), deletes),
            (_is(CreateAction), CreateStep(ctx)),
            (_is(DeleteAction), deletes),
        ]
        # Copies, archives and restore tests are rarer than backups: only a plan that has
        # them imports their steps (a scheduled run's cold start).
        if any(isinstance(a, CopyAction) for a in actions):
            from smartvault.apply.copy import CopyStep

            steps.append((_is(CopyAction), CopyStep(ctx)))
        if any(isinstance(a, ArchiveAction) for a in actions):
            from smartvault.apply.archive import ArchiveStep

            steps.append((_is(ArchiveAction), ArchiveStep(ctx)))
        verify_notes: list[str] = []
        if self._sweep_regions or any(isinstance(a, VerifyAction) for a in actions):
            from smartvault.apply.verify import VerifyStep

            verify = VerifyStep(ctx, self._sweep_regions)
            verify_notes = verify.notes
            # Restore tests last: they wait minutes on EC2, so a deadline cuts a test,
            # never a backup, a deletion or a copy; and they test what this run left in
            # place (a point this run deleted or archived is skipped, not restored).
            steps.append((_is(VerifyAction), verify))
        indexed = list(enumerate(actions))
        try:
            for wanted, step in steps:
                _run_step(
                    step,
                    [(i, a) for i, a in indexed if wanted(a) and not ledger.finished(i)],
                    ledger,
                )
        finally:
            # Claims taken but never completed (asked to stop, or a crash in this process).
            claims.release_held()
        return ledger.result((*notes, *verify_notes))

    def context(self) -> RunContext:
        """The services of a run that is no plan (a restore): its records carry this
        executor's run id and actor. Nothing is checked or read here; the caller checks
        the audit table before the first change."""
        return self._context(RunLedger(self.run_id, self._should_stop, self._on_result))

    def _context(self, ledger: RunLedger) -> RunContext:
        trail = AuditTrail(self._audit.records, ledger, actor=self._actor, clock=self._clock)
        claims = ClaimGuard(
            self._audit.claims, trail, run_id=self.run_id, lease=self._lease, clock=self._clock
        )
        return RunContext(
            ec2=self._ec2,
            volumes=self._volumes,
            trail=trail,
            claims=claims,
            ledger=ledger,
            clock=self._clock,
            sleep=self._sleep,
        )


def _is(kind: type[Action]) -> Callable[[Action], bool]:
    return lambda action: isinstance(action, kind)


def _failed_point_remade(actions: Sequence[Action]) -> Callable[[Action], bool]:
    """The deletes of failed recovery points whose slot a create of the plan makes again
    (the same id: a completed point at the slot would leave nothing due)."""
    remade = {(a.region, a.recovery_point) for a in actions if isinstance(a, CreateAction)}
    return lambda action: (
        isinstance(action, DeleteAction) and (action.region, action.recovery_point) in remade
    )


def _run_step(step: Step[Any, Any], items: Sequence[tuple[int, Action]], ledger: RunLedger) -> None:
    for batch in step.batches(items):
        prepared = step.prepare(batch)
        if step.workers > 1:
            _run_pooled(step, batch, prepared, ledger)
            continue
        for index, action in batch:
            if ledger.finished(index):
                continue  # settled while preparing (a claim that could not be written)
            if ledger.stopping():
                ledger.not_started(index, action)
                continue
            _settle(ledger, index, action, step.run(index, action, prepared))


def _run_pooled(
    step: Step[Any, Any], batch: Sequence[tuple[int, Action]], prepared: Any, ledger: RunLedger
) -> None:
    def task(index: int, action: Action) -> ActionResult | None:
        if ledger.stopping():
            return None
        return step.run(index, action, prepared)

    pool = ThreadPoolExecutor(max_workers=step.workers, thread_name_prefix="apply")
    futures: dict[Future[ActionResult | None], tuple[int, Action]] = {
        pool.submit(task, index, action): (index, action) for index, action in batch
    }
    try:
        for future in as_completed(futures):
            index, action = futures[future]
            _settle(ledger, index, action, future.result())
    except BaseException:
        # A crash: queued actions must not start; in-flight ones finish.
        ledger.halt("the run ended with an unexpected error")
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _settle(ledger: RunLedger, index: int, action: Action, result: ActionResult | None) -> None:
    if result is None:
        ledger.not_started(index, action)
    else:
        ledger.finish(index, result)
