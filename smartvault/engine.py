"""The one place where SmartVault is wired together.

The CLI and the Lambda handler both call into this module, so they can never
drift apart: load policies -> read the inventory -> plan [-> apply -> audit ->
notify]. Clients are created here, lazily, never at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import gc
import secrets
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from smartvault.apply.run import Executor
from smartvault.aws.audit import AuditLog
from smartvault.aws.ec2 import Ec2Snapshots
from smartvault.aws.inventory import read_inventory
from smartvault.aws.session import AwsSession
from smartvault.aws.sns import publish
from smartvault.core import planner
from smartvault.core.model import ACTION_TYPES
from smartvault.core.model import AuditRecord
from smartvault.core.model import Plan
from smartvault.core.model import PolicySet
from smartvault.core.plan_diff import compare_actions
from smartvault.core.report import ActionResult
from smartvault.core.report import FailedItem
from smartvault.core.report import PolicyRunSummary
from smartvault.core.report import RecoveryPointResult
from smartvault.core.report import RunResult
from smartvault.core.report import SkippedItem
from smartvault.core.report import compose
from smartvault.core.report import should_notify
from smartvault.core.times import iso_utc
from smartvault.deadline import Deadline
from smartvault.errors import AuditError
from smartvault.errors import AwsError
from smartvault.errors import ConfigError
from smartvault.errors import PlanFileError
from smartvault.formats import policy
from smartvault.logs import JsonLog
from smartvault.settings import Settings

DEFAULT_MAX_PLAN_AGE = timedelta(hours=24)
#: how far a saved plan's ``at`` may lie ahead of this machine's clock (the reviewer's
#: machine and this one may disagree a little); beyond it the plan is refused
PLAN_CLOCK_SKEW = timedelta(minutes=5)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while planning.

    A plan builds several objects per recovery point and frees almost none until it
    returns, so the collector keeps rescanning the whole inventory for cycles there
    are none of: a third of the time of a 100,000-snapshot plan. Reference counting
    still frees everything; the previous state is restored, whatever happens.
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


@dataclass(frozen=True)
class NotifyResult:
    policy: str
    topic_arn: str
    sent: bool
    error: str = ""


@dataclass(frozen=True)
class RunReport:
    """A plan and, unless it was a dry run, what applying it did."""

    plan: Plan
    result: RunResult | None = None
    notifications: tuple[NotifyResult, ...] = ()

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable account of the run (the Lambda's return value)."""
        out: dict[str, Any] = {
            "at": iso_utc(self.plan.at),
            "account_id": self.plan.account_id,
            "regions": list(self.plan.regions),
            "policies": [p.name for p in self.plan.policies],
            "planned": self.plan.summary,
            "warnings": [w.message for w in self.plan.warnings],
            "dry_run": self.result is None,
        }
        if self.result is not None:
            out.update(
                run_id=self.result.run_id,
                outcomes=self.result.counts,
                ok=self.result.ok,
                stopped_early=self.result.stopped_early,
                stop_reason=self.result.stop_reason,
                failed=[
                    {
                        "type": r.action.type,
                        "policy": r.action.policy,
                        "region": r.action.region,
                        "recovery_point": r.action.recovery_point,
                        "error": r.error or r.audit_error,
                    }
                    for r in self.result.failed
                ],
                notifications=[dataclasses.asdict(n) for n in self.notifications],
                notes=list(self.result.notes),
            )
        return out


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
    ) -> None:
        self.settings = settings
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

    def now(self) -> datetime:
        return self._clock()

    # --- planning -----------------------------------------------------------

    @staticmethod
    def load_policies(paths: Sequence[str]) -> PolicySet:
        """Every policy of ``paths``; raises ``PolicyError`` (before any AWS call) if invalid."""
        return policy.load_policies(paths)

    def plan(self, policies: PolicySet, at: datetime | None = None) -> Plan:
        """Read the account and plan at ``at`` (default: now). Never writes to AWS."""
        now = self._clock()
        inventory = read_inventory(self.session, policies, self.session.regions())
        with collector_paused():
            result = planner.plan(policies, inventory, at or now)
        return dataclasses.replace(result, generated_at=now)

    def check_saved_plan(
        self, saved: Plan, policies: PolicySet, max_age: timedelta = DEFAULT_MAX_PLAN_AGE
    ) -> None:
        """Refuse a saved plan that is evaluated in the future, too old, or no longer what
        planning would do.

        The saved plan is re-made at its own ``at`` over the current account and
        policies; any difference in its actions makes it stale, and nothing is done.
        Its age is measured from ``at``, the time the re-planning uses, never from
        ``generated_at``, which nothing checks. A plan evaluated ahead of the clock
        (``plan --at`` a later day) would delete what the policies keep today and stamp
        a recovery point with a slot that has not come: it can be read, never applied.
        """
        now = self._clock()
        ahead = saved.at - now
        if ahead > PLAN_CLOCK_SKEW:
            raise PlanFileError(
                f"the saved plan is evaluated at {iso_utc(saved.at)}, {_hours(ahead)} in the "
                f"future (this machine's clock says {iso_utc(now)}): `plan --at` is for looking "
                "ahead, never for acting ahead; nothing was done. Run `smartvault plan --out "
                "FILE` without --at, review it and apply that"
            )
        age = now - saved.at
        if age > max_age:
            raise PlanFileError(
                f"the saved plan is evaluated at {iso_utc(saved.at)}, {_hours(age)} ago, more "
                f"than --max-plan-age {_hours(max_age)}; nothing was done. Run `smartvault "
                "plan --out FILE` again and review it"
            )
        fresh = self.plan(policies, at=saved.at)
        if fresh.account_id != saved.account_id:
            raise PlanFileError(
                f"the saved plan is for account {saved.account_id}, but these credentials are "
                f"for account {fresh.account_id}: nothing was done"
            )
        differences = compare_actions(saved, fresh)
        if differences:
            listed = "\n".join(f"  {line}" for line in differences)
            raise PlanFileError(
                "the saved plan no longer matches the account; nothing was done. "
                f"Planning again at {iso_utc(saved.at)} gives:\n{listed}\n"
                "Run `smartvault plan --out FILE` again and review the new plan."
            )

    # --- applying -----------------------------------------------------------

    def audit_region(self) -> str:
        return self.settings.audit_region or self.session.regions()[0]

    def audit_log(self) -> AuditLog:
        return AuditLog(
            self.session.client("dynamodb", self.audit_region()),
            self.settings.audit_table,
            clock=self._clock,
            ttl_days=self.settings.audit_ttl_days,
            sleep=self._sleep,
        )

    def apply(
        self,
        plan: Plan,
        policies: PolicySet,
        *,
        actor: str,
        should_stop: Callable[[], bool] = lambda: False,
        on_result: Callable[[ActionResult], None] | None = None,
        run_id: str | None = None,
    ) -> RunReport:
        """Carry out ``plan``, audit every action, then send the policies' notifications."""
        audit = self.audit_log()
        executor = Executor(
            Ec2Snapshots(self.session.ec2_for_changes, sleep=self._sleep),
            audit,
            run_id=run_id or new_run_id(self._clock()),
            actor=actor,
            clock=self._clock,
            should_stop=should_stop,
            on_result=on_result,
        )
        result = executor.apply(plan)
        notifications = self._notify(plan, policies, result, audit, actor)
        return RunReport(plan=plan, result=result, notifications=notifications)

    def _notify(
        self, plan: Plan, policies: PolicySet, result: RunResult, audit: AuditLog, actor: str
    ) -> tuple[NotifyResult, ...]:
        """One message per policy that asks for it; a failed publish never fails the backups."""
        sent: list[NotifyResult] = []
        for slot in plan.policies:
            policy = policies.get(slot.name)
            if policy is None or policy.notify is None or not policy.enabled:
                continue
            summary = summarise(policy.name, result, plan.regions)
            if not should_notify(policy.notify, summary):
                continue
            topic = policy.notify.sns_topic_arn
            subject, body = compose(summary)
            region = topic.split(":")[3] if topic.count(":") >= 5 else self.audit_region()
            outcome: NotifyResult
            try:
                publish(self.session.client("sns", region), topic, subject, body)
                outcome = NotifyResult(policy.name, topic, sent=True)
            except AwsError as exc:
                outcome = NotifyResult(policy.name, topic, sent=False, error=str(exc))
            sent.append(outcome)
            record = AuditRecord(
                run_id=result.run_id,
                timestamp=self._clock(),
                action="notify",
                outcome="succeeded" if outcome.sent else "failed",
                policy=policy.name,
                region=region,
                resource_id=topic,
                recovery_point="",
                reason=subject,
                error=outcome.error,
                actor=actor,
            )
            try:
                audit.records.write(record)
            except AuditError as exc:  # the backups are done: say so, don't fail them
                sent.append(NotifyResult(policy.name, topic, sent=outcome.sent, error=str(exc)))
        return tuple(sent)


@dataclass(frozen=True)
class LambdaRequest:
    """What an invocation asks for: some policies (default all), maybe only a dry run."""

    policies: tuple[str, ...] = ()
    dry_run: bool = False

    @classmethod
    def from_event(cls, event: object) -> LambdaRequest:
        """Read an EventBridge Scheduler input, an EventBridge event, or ``{}``.

        ``policies`` and ``dry_run`` are honoured in every form: at the top level, and
        in an EventBridge envelope also inside its ``detail``. Unknown keys are refused
        rather than ignored: a misspelt ``dryrun`` must not turn a dry run into a real
        one, and an empty ``policies`` list must not mean "every policy".
        """
        if event is None:
            return cls()
        if not isinstance(event, Mapping):
            raise ConfigError(
                'the event must be a JSON object such as {"policies": ["nightly"], '
                f'"dry_run": true}}, not {type(event).__name__}'
            )
        asks = {k: v for k, v in event.items() if k in _REQUEST_KEYS}
        envelope = "source" in event or "detail-type" in event
        allowed = _REQUEST_KEYS | (_ENVELOPE_KEYS if envelope else frozenset())
        unknown = sorted(str(k) for k in set(event) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown event key(s) {', '.join(unknown)}: the event takes "
                '"policies" (a list of names) and "dry_run" (true or false)'
                + (", beside EventBridge's own keys" if envelope else "")
            )
        detail = event.get("detail", {}) if envelope else {}
        if not isinstance(detail, Mapping):
            raise ConfigError(
                f'the event\'s "detail" must be a JSON object, not {type(detail).__name__}'
            )
        unknown = sorted(str(k) for k in set(detail) - _REQUEST_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(unknown)} in the event's detail: it takes "
                '"policies" (a list of names) and "dry_run" (true or false)'
            )
        both = sorted(set(asks) & set(detail))
        if both:
            raise ConfigError(
                f"the event gives {', '.join(both)} both at its top level and in its detail: "
                "give each once"
            )
        asks.update(detail)
        names = asks.get("policies", [])
        if isinstance(names, str):
            names = [names]
        elif not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError('"policies" must be a list of policy names')
        elif not names and "policies" in asks:
            raise ConfigError(
                '"policies" is an empty list: name the policies to run, or leave the key '
                "out to run every policy"
            )
        dry_run = asks.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise ConfigError('"dry_run" must be true or false')
        return cls(policies=tuple(names), dry_run=dry_run)


#: What an invocation may ask for.
_REQUEST_KEYS = frozenset({"policies", "dry_run"})
#: The keys EventBridge puts in every event it delivers.
_ENVELOPE_KEYS = frozenset(
    {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
)


def only_policies(plan: Plan, names: Sequence[str]) -> Plan:
    """The part of ``plan`` that belongs to ``names`` (planned with every policy loaded,
    so other policies' snapshots are not mistaken for orphans)."""
    wanted = set(names)
    return dataclasses.replace(
        plan,
        policies=tuple(p for p in plan.policies if p.name in wanted),
        actions=tuple(a for a in plan.actions if a.policy in wanted),
        kept=tuple(k for k in plan.kept if k.policy in wanted),
        skipped=tuple(s for s in plan.skipped if s.policy in wanted),
        warnings=tuple(w for w in plan.warnings if w.policy is None or w.policy in wanted),
    )


def run_scheduled(
    settings: Settings,
    paths: Sequence[str],
    request: LambdaRequest,
    *,
    actor: str,
    deadline: Deadline | None,
    log: JsonLog,
    clock: Callable[[], datetime] = utc_now,
) -> dict[str, Any]:
    """The unattended run: load, plan, apply (unless dry run), notify; a JSON-able summary.

    Invalid policies or unknown policy names raise before any AWS call. With a
    ``deadline`` every request is kept inside it (:mod:`smartvault.deadline`).
    """
    policies = policy.load_policies(paths)
    missing = [n for n in request.policies if policies.get(n) is None]
    if missing:
        known = [p.name for p in policies.policies]
        hints = [
            f"{name} (did you mean {close[0]}?)" if close else name
            for name in missing
            for close in [difflib.get_close_matches(name, known, n=1)]
        ]
        raise ConfigError(
            f"no policy named {', '.join(hints)} in {', '.join(paths)}: fix the event's "
            f'"policies" (known: {", ".join(known)})'
        )
    eng = Engine(settings, clock=clock, deadline=deadline)
    plan = eng.plan(policies)
    if request.policies:
        plan = only_policies(plan, request.policies)
    log("INFO", "planned", dry_run=request.dry_run, **plan.summary)
    for warning in plan.warnings:
        log("WARNING", warning.message, policy=warning.policy, resource_id=warning.resource_id)
    if request.dry_run:
        return RunReport(plan=plan).summary()
    run_id = new_run_id(clock())
    log.context["run_id"] = run_id

    def log_result(result: ActionResult) -> None:
        action = result.action
        log(
            "ERROR" if result.needs_attention else "INFO",
            f"{action.type} {result.outcome}",
            policy=action.policy,
            action=action.type,
            outcome=result.outcome,
            region=action.region,
            recovery_point=action.recovery_point,
            snapshot_ids=list(result.snapshot_ids),
            error=result.error or result.audit_error or None,
        )

    report = eng.apply(
        plan,
        policies,
        actor=actor,
        should_stop=deadline.stop_starting if deadline else bool,
        on_result=log_result,
        run_id=run_id,
    )
    summary = report.summary()
    log(
        "INFO" if report.ok else "ERROR",
        "run finished",
        **{k: summary[k] for k in ("outcomes", "ok", "stopped_early")},
    )
    return summary


def summarise(policy: str, result: RunResult, regions: Sequence[str]) -> PolicyRunSummary:
    """What ``result`` did for one policy, in the shape notifications report it."""
    mine = [r for r in result.results if r.action.policy == policy]
    done: dict[str, list[RecoveryPointResult]] = {t: [] for t in ACTION_TYPES}
    failed: list[FailedItem] = []
    skipped: list[SkippedItem] = []
    for r in mine:
        what = f"{r.action.type} {r.action.recovery_point}"
        if r.outcome == "succeeded":
            done[r.action.type].append(
                RecoveryPointResult(r.action.recovery_point, r.snapshot_ids, r.action.region)
            )
        elif r.outcome == "failed" or r.audit_error:
            failed.append(FailedItem(what, r.error or r.audit_error))
        elif r.outcome == "skipped":
            skipped.append(SkippedItem(what, r.reason))
    not_started = [a for a in result.not_started if a.policy == policy]
    return PolicyRunSummary(
        policy=policy,
        run_id=result.run_id,
        regions=tuple(regions),
        created=tuple(done["create"]),
        deleted=tuple(done["delete"]),
        archived=tuple(done["archive"]),
        copied=tuple(done["copy"]),
        failed=tuple(failed),
        skipped=tuple(skipped),
        stopped_early=result.stopped_early and bool(not_started),
    )


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"
