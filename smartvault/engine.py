"""The composition root: one pipeline, :meth:`Engine.run`, for the CLI and the Lambda.

A run loads the policies, checks the names it was asked for, plans (or checks a saved
plan against a fresh one), shows the plan, and unless it is a dry run checks the audit
table, confirms, applies, audits and notifies. Every check is made here, once and in
that order, whichever door the run came through (without its audit table a person's run
stops before the confirmation, a scheduled one reports every action failed, so that it
is notified; neither changes anything). The CLI and the Lambda differ only in
how they build a :class:`RunRequest` (flags, or an event and the environment) and how
they show what happens (a terminal, or JSON log lines). Clients are created lazily,
never at import time.
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING

from smartvault import files
from smartvault.apply.run import Executor
from smartvault.apply.step import RunContext
from smartvault.aws.audit import AuditLog
from smartvault.aws.ec2 import Ec2Snapshots
from smartvault.aws.inventory import read_everything
from smartvault.aws.inventory import read_inventory
from smartvault.aws.queries import regions_to_read
from smartvault.aws.session import AwsSession
from smartvault.aws.sns import publish
from smartvault.aws.volumes import Ec2Volumes
from smartvault.core import planner
from smartvault.core import preflight
from smartvault.core.fleet import Shard
from smartvault.core.model import AuditRecord
from smartvault.core.model import Plan
from smartvault.core.model import PolicySet
from smartvault.core.report import ActionResult
from smartvault.core.report import NotifyResult
from smartvault.core.report import RunReport
from smartvault.core.report import RunResult
from smartvault.core.report import notifications_due
from smartvault.deadline import Deadline
from smartvault.errors import AuditError
from smartvault.errors import AwsError
from smartvault.errors import ConfigError
from smartvault.errors import PlanFileError
from smartvault.formats import policy
from smartvault.settings import Settings

if TYPE_CHECKING:  # a person's commands only: kept off the Lambda's import path
    from smartvault.aws.holds import Ec2Holds
    from smartvault.core.compare import Side
    from smartvault.core.coverage import Coverage
    from smartvault.formats.policy.validated import Manifest

DEFAULT_POLICY_PATHS = ("policies",)
DEFAULT_MAX_PLAN_AGE = timedelta(hours=24)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while reading the account and planning.

    Reading keeps a record per snapshot and a plan builds several objects per recovery
    point, and neither frees almost any until it returns, so the collector keeps
    rescanning the whole inventory for cycles there are none of: a third of the time of
    reading 100,000 snapshots, and again of planning them. Reference counting still
    frees everything; the previous state is restored, whatever happens.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id(now: datetime) -> str:
    """Sortable by time, unique across overlapping runs: ``20261128T170002Z-3f9a1c2e``."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _never() -> bool:
    return False


def _ignore(*_: object) -> None:
    return None


@dataclass(frozen=True)
class RunRequest:
    """What one run is asked to do, and the hooks through which its door shows it.

    The confirmation is a hook, not a split of ``run`` into a plan and an apply phase:
    with phases each door would chain them itself and could again leave a check out
    between them (the drift this replaced). Here the order is written once, and a door
    can only add what it shows and what it asks.
    """

    #: policy files or directories; empty: :data:`DEFAULT_POLICY_PATHS`
    paths: tuple[str, ...] = ()
    #: only these policies' part of the plan (planned with every policy); empty: all
    policies: tuple[str, ...] = ()
    #: where ``policies`` came from, for the error that names an unknown one
    policies_named_in: str = "the request"
    #: only actions of these types (``("verify",)`` for ``smartvault verify``); empty: all.
    #: With ``verify`` among them, the test volumes earlier runs left are swept in every
    #: region of the run, even when no test is due.
    action_types: tuple[str, ...] = ()
    dry_run: bool = False
    #: policies whose deletion circuit breaker (``safety``) a person lifts for this run
    #: (``--allow-deletes``); never set by the Lambda. A saved plan carries its own.
    allow_deletes: tuple[str, ...] = ()
    #: a saved plan (``plan --out``), applied only if planning again at its time agrees
    saved_plan: str | None = None
    #: a plan made earlier in this process and shown to a person (a fleet's shard), checked
    #: and applied as a saved plan is
    planned: Plan | None = None
    #: plan at this time instead of now (a fleet's shard: every round of one tick plans at
    #: the tick's time); never more than a few minutes ahead of the clock, nor a day behind
    at: datetime | None = None
    max_plan_age: timedelta = DEFAULT_MAX_PLAN_AGE
    #: who applies, in every audit record: ``cli:user@host``, ``lambda:function``
    actor: str = "unknown"
    #: default: a new one, once everything is checked
    run_id: str | None = None
    #: asked before each action; True once no new action may start
    should_stop: Callable[[], bool] = _never
    #: shows the plan: called before anything is asked of the audit table
    on_plan: Callable[[Plan], None] = _ignore
    #: the last call before the first change, with the run id; raise to change nothing
    before_apply: Callable[[Plan, str], None] = _ignore
    on_result: Callable[[ActionResult], None] | None = None
    #: True (a person): an audit table that cannot be written refuses the run before
    #: ``before_apply`` asks anything. False (a schedule): the run goes on and reports every
    #: action failed with the reason, so the policies' failure notifications still go out.
    #: Either way nothing is changed without its audit record.
    refuse_without_audit_table: bool = True

    def with_plan(self, plan: Plan) -> RunRequest:
        """This request, to apply ``plan`` (made and shown before) once it is checked."""
        return replace(self, planned=plan, saved_plan=None, at=None)


class Engine:
    """Loads, plans and applies with one AWS session; shared by the CLI and the Lambda."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        session: AwsSession | None = None,
        deadline: Deadline | None = None,
        validated: Manifest | None = None,
        home: AwsSession | None = None,
    ) -> None:
        """``validated``: the manifest of a deployment package's policies, for runs that
        read them (:meth:`load_policies`). ``home``: the session that keeps the audit
        table and sends notifications, when it is not ``session`` (a fleet's shard works in
        another account: :meth:`for_shard`)."""
        self.settings = settings
        self._home = home
        self._validated = validated
        self._clock = clock
        self._deadline = deadline
        # Near a deadline, a backoff is cut short rather than sleeping into it.
        self._sleep = deadline.bounded_sleep(sleep) if deadline else sleep
        self._session = session

    @property
    def session(self) -> AwsSession:
        if self._session is None:
            self._session = AwsSession.from_settings(self.settings, deadline=self._deadline)
        return self._session

    @property
    def home(self) -> AwsSession:
        """The session of the audit table and the notifications: :attr:`session`, but for
        a shard, the fleet's own (the hub's)."""
        return self._home or self.session

    def for_shard(self, shard: Shard, role_name: str, run_id: str) -> Engine:
        """An engine for one shard of a fleet: it reads, plans and applies in the shard's
        account and region, as ``role_name`` there (assumed with this engine's
        credentials), and keeps the audit records, the claims and the notifications
        where this engine keeps them. Nothing is asked of AWS until it is used."""
        spoke = self.home.assume_role(
            shard.account,
            role_name,
            regions=(shard.region,),
            session_name=f"smartvault-{run_id}",
        )
        return Engine(
            replace(self.settings, regions=(shard.region,), audit_region=self.audit_region()),
            clock=self._clock,
            sleep=self._sleep,
            session=spoke,
            deadline=self._deadline,
            validated=self._validated,
            home=self.home,
        )

    def now(self) -> datetime:
        return self._clock()

    def run(self, request: RunRequest) -> RunReport:
        """Load, plan, show, and unless a dry run: check, confirm, apply, audit, notify.

        Raises before any change: ``ConfigError`` (a missing path, an unknown policy
        name), ``PolicyError``, ``PlanFileError`` (a saved plan that is unreadable or
        stale), ``AuditError`` (an audit table that cannot be written), or whatever
        ``request.before_apply`` raises. A failed action never raises: see the report.
        """
        policies = self.load_policies(request.paths, validated=self._validated)
        paths = request.paths or DEFAULT_POLICY_PATHS
        unknown = preflight.unknown_policies(
            request.policies, policies, paths, request.policies_named_in
        )
        if unknown:
            raise ConfigError(unknown)
        unknown = preflight.unknown_policies(
            request.allow_deletes, policies, paths, "--allow-deletes"
        )
        if unknown:
            raise ConfigError(unknown)
        selected: frozenset[tuple[str, str, str]] = frozenset()
        if request.saved_plan or request.planned:
            if request.allow_deletes and not request.planned:
                raise ConfigError(
                    "--allow-deletes cannot be given with --plan: a saved plan carries the "
                    "policies whose safety it lifts (its allow_deletes); make the plan again "
                    "with `smartvault plan --allow-deletes POLICY --out FILE`"
                )
            plan = request.planned or _read_plan(request.saved_plan or "")
            self.check_saved_plan(plan, policies, request.max_plan_age)
        else:
            at = request.at
            if at is not None:
                problem = preflight.run_at_problem(at, self._clock())
                if problem:
                    raise ConfigError(problem)
            plan, selected = self._plan_selecting(policies, at, allow_deletes=request.allow_deletes)
        if request.policies:
            plan = preflight.only_policies(plan, request.policies)
        if request.action_types:
            plan = _only_action_types(plan, request.action_types)
        request.on_plan(plan)
        if request.dry_run:
            return RunReport(plan=plan, selected=selected, policies=policies)
        audit = self.audit_log(account_id=plan.account_id)
        if request.refuse_without_audit_table:
            audit.check_writable()  # before asking: a missing table would fail every action
        run_id = request.run_id or new_run_id(self._clock())
        request.before_apply(plan, run_id)
        result = self._apply(plan, audit, run_id, request, _sweep_regions(plan, policies, request))
        notifications = self._notify(plan, policies, result, audit, request.actor)
        return RunReport(
            plan=plan,
            result=result,
            notifications=notifications,
            selected=selected,
            policies=policies,
        )

    @staticmethod
    def load_policies(paths: Sequence[str] = (), *, validated: Manifest | None = None) -> PolicySet:
        """Every policy of ``paths`` (default ``./policies``), before any AWS call: raises
        ``ConfigError`` for a path that is not there, ``PolicyError`` for invalid ones.
        A file ``validated`` lists as packaged skips the schema step (same result)."""
        # Only what is not there at all: a link loop or an unreadable file is a problem below.
        missing = [p for p in paths or DEFAULT_POLICY_PATHS if not os.path.lexists(p)]
        if missing:
            where = "" if paths else " (the default; run from the folder that holds policies/)"
            raise ConfigError(
                f"no such file or directory: {', '.join(missing)}{where}: "
                "name the policy files or directories to use"
            )
        return policy.load_policies(paths or DEFAULT_POLICY_PATHS, validated=validated)

    def plan(
        self, policies: PolicySet, at: datetime | None = None, allow_deletes: Sequence[str] = ()
    ) -> Plan:
        """Read the account and plan at ``at`` (default: now), with the deletion circuit
        breaker of the ``allow_deletes`` policies lifted. Never writes to AWS."""
        return self._plan_selecting(policies, at, allow_deletes)[0]

    def _plan_selecting(
        self, policies: PolicySet, at: datetime | None = None, allow_deletes: Sequence[str] = ()
    ) -> tuple[Plan, frozenset[tuple[str, str, str]]]:
        """The plan, and what each policy selected in the same inventory (for metrics)."""
        now = self._clock()
        with collector_paused():
            inventory = read_inventory(self.session, policies, self.session.regions())
            return planner.plan_selecting(
                policies, inventory, at or now, generated_at=now, allow_deletes=allow_deletes
            )

    def plan_compared(
        self,
        policies: PolicySet,
        then: PolicySet,
        at: datetime | None = None,
        allow_deletes: Sequence[str] = (),
    ) -> tuple[Side, Side]:
        """Plan ``policies`` and ``then`` (the policies at a git revision) over ONE read of
        the account, at the same ``at``: every difference between the two is the edit's.

        The inventory is read with both sets' selectors, so a resource only ``then``
        selects (a narrowed selector) is there for its plan; each set is then planned over
        the regions it would read itself. Selectors both sets share cost no second query;
        each selector only ``then`` has costs one paginated Describe call per region.
        ``allow_deletes`` applies to both plans alike.
        """
        from smartvault.core.compare import Side
        from smartvault.core.compare import within_regions

        now = self._clock()
        working = self.session.regions()
        both = PolicySet(policies=(*policies.policies, *then.policies))
        sides = []
        with collector_paused():
            inventory = read_inventory(self.session, both, working)
            for one in (policies, then):
                own = within_regions(inventory, regions_to_read(one, working))
                plan, selected = planner.plan_selecting(
                    one, own, at or now, generated_at=now, allow_deletes=allow_deletes
                )
                sides.append(Side(plan, selected, one))
        return sides[0], sides[1]

    def check_saved_plan(
        self, saved: Plan, policies: PolicySet, max_age: timedelta = DEFAULT_MAX_PLAN_AGE
    ) -> None:
        """Refuse a saved plan that is evaluated in the future, too old, or no longer what
        planning would do: re-made at its own ``at`` over the current account and
        policies, any difference in its actions makes it stale, and nothing is done."""
        refusal = preflight.saved_plan_out_of_time(saved, self._clock(), max_age)
        if refusal is None:  # only then is the account read again
            # With the same second key the person turned when saving it.
            fresh = self.plan(policies, at=saved.at, allow_deletes=saved.allow_deletes)
            # Saved plans are a person's (`apply --plan`): the Lambda never loads this.
            from smartvault.core.plan_diff import compare_actions

            differences = compare_actions(saved, fresh)
            # Stale: was it applied already? One read of the audit log since its `at`.
            stale = differences and fresh.account_id == saved.account_id
            records = self._records_since(saved.at) if stale else []
            refusal = preflight.saved_plan_mismatch(saved, fresh, differences, records)
        if refusal:
            raise PlanFileError(refusal)

    def _records_since(self, since: datetime) -> list[AuditRecord]:
        """The audit records since ``since``, or none when the log cannot be read: they
        only explain a refusal, which stands without them."""
        try:
            return self.audit_log().records.query(since, self._clock())
        except AuditError:
            return []

    def audit_region(self) -> str:
        return self.settings.audit_region or self.home.regions()[0]

    def audit_log(self, account_id: str = "") -> AuditLog:
        """The audit table; ``account_id``: the account its records' actions are in."""
        return AuditLog(
            self.home.client("dynamodb", self.audit_region()),
            self.settings.audit_table,
            clock=self._clock,
            ttl_days=self.settings.audit_ttl_days,
            sleep=self._sleep,
            account_id=account_id,
        )

    def restore_context(self, actor: str) -> RunContext:
        """The services a restore runs with (a new run id; records by ``actor``). Making it
        asks nothing of AWS: a dry run needs no audit table."""
        executor = Executor(
            Ec2Snapshots(self.session.ec2_for_changes, sleep=self._sleep),
            self.audit_log(),
            volumes=Ec2Volumes(self.session.ec2_for_changes, sleep=self._sleep),
            run_id=new_run_id(self._clock()),
            actor=actor,
            clock=self._clock,
            sleep=self._sleep,
        )
        return executor.context()

    def hold_tags(self) -> Ec2Holds:
        """The EC2 calls of ``hold`` and ``release``: a person's, never the function's."""
        from smartvault.aws.holds import Ec2Holds

        return Ec2Holds(self.session.ec2_for_changes, sleep=self._sleep)

    def _apply(
        self,
        plan: Plan,
        audit: AuditLog,
        run_id: str,
        request: RunRequest,
        sweep_regions: Sequence[str],
    ) -> RunResult:
        """Carry out every action of ``plan``, auditing each (the executor never raises)."""
        executor = Executor(
            Ec2Snapshots(self.session.ec2_for_changes, sleep=self._sleep),
            audit,
            volumes=Ec2Volumes(self.session.ec2_for_changes, sleep=self._sleep),
            run_id=run_id,
            actor=request.actor,
            clock=self._clock,
            sleep=self._sleep,
            should_stop=request.should_stop,
            on_result=request.on_result,
            table_checked=request.refuse_without_audit_table,  # checked by run() just now
            sweep_regions=sweep_regions,
        )
        return executor.apply(plan)

    def _notify(
        self, plan: Plan, policies: PolicySet, result: RunResult, audit: AuditLog, actor: str
    ) -> tuple[NotifyResult, ...]:
        """One message per policy that asks for it; a failed publish never fails the backups."""
        sent: list[NotifyResult] = []
        for note in notifications_due(plan, policies, result):
            topic = note.topic_arn
            region = topic.split(":")[3] if topic.count(":") >= 5 else self.audit_region()
            outcome: NotifyResult
            try:
                publish(self.home.client("sns", region), topic, note.subject, note.body)
                outcome = NotifyResult(note.policy, topic, sent=True)
            except AwsError as exc:
                outcome = NotifyResult(note.policy, topic, sent=False, error=str(exc))
            sent.append(outcome)
            record = note.audit_record(
                outcome, run_id=result.run_id, region=region, at=self._clock(), actor=actor
            )
            try:
                audit.records.write(record)
            except AuditError as exc:  # the backups are done: say so, don't fail them
                sent.append(NotifyResult(note.policy, topic, sent=outcome.sent, error=str(exc)))
        return tuple(sent)

    def coverage(self, policies: PolicySet) -> Coverage:
        """Read the account once (every instance and volume of the regions, unfiltered, and
        the managed snapshots) and say what protects each resource, now. Never writes."""
        from smartvault.core.coverage import coverage as compute_coverage  # a person's command

        working = self.session.regions()
        with collector_paused():  # one object per snapshot and recovery point
            inventory = read_everything(self.session, policies, working)
            return compute_coverage(policies, inventory, self._clock(), working)


def _only_action_types(plan: Plan, types: Sequence[str]) -> Plan:
    """``plan`` with only the actions of ``types`` (what it kept and warned stays; held
    deletions only with ``delete``: a restore-test run is not failed by them)."""
    return replace(
        plan,
        actions=tuple(a for a in plan.actions if a.type in types),
        held_deletes=plan.held_deletes if "delete" in types else (),
    )


def _sweep_regions(plan: Plan, policies: PolicySet, request: RunRequest) -> tuple[str, ...]:
    """Where the test volumes earlier restore tests left are looked for and deleted: every
    region of the run when it was asked for restore tests, or when a policy of the plan
    verifies (its role may delete test volumes then, and a test a deadline cut short
    leaves volumes that must not wait a week for the next test)."""
    asked_for_tests = "verify" in request.action_types
    names = {p.name for p in plan.policies}
    verifies = any(p.verify is not None and p.enabled for p in policies.policies if p.name in names)
    return plan.regions if asked_for_tests or verifies else ()


def _read_plan(path: str) -> Plan:
    """A plan saved by ``plan --out``; raises ``PlanFileError`` for any file it is not."""
    try:
        text = files.read_text(
            path,
            too_large="apply without --plan, or save plans of fewer policies "
            "(`smartvault plan --out FILE PATH...`)",
        )
    except files.FileRefused as exc:
        raise PlanFileError(str(exc)) from exc
    # Saved plans are a person's (`apply --plan`): the Lambda never loads this.
    from smartvault.formats import plan_json

    return plan_json.loads(text, source=path)
