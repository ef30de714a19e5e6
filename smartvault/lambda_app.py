"""The Lambda's door to the engine: an event and the environment in, JSON log lines out.

:func:`handle` reads what an invocation asks for (:class:`LambdaRequest`) and how the
function is configured (``SMARTVAULT_*``, through :mod:`smartvault.settings`), runs
:meth:`Engine.run <smartvault.engine.Engine.run>` inside the function's deadline and
returns the run's summary. Every refusal (a malformed event or setting, an unknown
policy, invalid policies, an audit table that cannot be written) raises before any
change, after one JSON log line that says why. A run in which an action failed raises
:class:`RunFailed` after its audit records, notifications and metrics are written, so
that Lambda counts it in ``Errors`` and retries it; a run stopped by the deadline
returns, with ``complete: false``. Imports no CLI layer.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from smartvault.aws.results import write_results
from smartvault.core import metrics
from smartvault.core.fleet import Shard
from smartvault.core.fleet import results_prefix
from smartvault.core.fleet import shard_result
from smartvault.core.model import Action
from smartvault.core.model import Plan
from smartvault.core.report import ActionResult
from smartvault.core.report import RunReport
from smartvault.deadline import Deadline
from smartvault.engine import Engine
from smartvault.engine import RunRequest
from smartvault.engine import new_run_id
from smartvault.engine import utc_now
from smartvault.errors import ConfigError
from smartvault.errors import SmartVaultError
from smartvault.formats.policy.validated import read_manifest
from smartvault.formats.shards import shard_from_event
from smartvault.logs import JsonLog
from smartvault.settings import deadline_margin_seconds
from smartvault.settings import settings_from_env

#: What an invocation may ask for.
_REQUEST_KEYS = frozenset({"policies", "dry_run", "shard"})
#: The keys EventBridge puts in every event it delivers.
_ENVELOPE_KEYS = frozenset(
    {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
)


#: failures named in :class:`RunFailed`'s message; the rest are in the audit log
_FAILURES_NAMED = 5


class RunFailed(Exception):
    """A run in which an action failed, or whose deletions ``safety`` held (the Lambda never
    lifts the breaker: a person does, with ``apply --allow-deletes``): raised after
    auditing, notifying and metrics.

    Raising is what makes Lambda count the invocation in ``Errors`` and retry it (an
    asynchronous invocation, as EventBridge Scheduler makes, is tried up to twice more),
    and what an on-failure destination sees. A retry is safe: it plans again from the
    account and only does what is still missing. ``summary`` is what the run would have
    returned.
    """

    def __init__(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        failed = summary.get("failed", [])
        named = "; ".join(
            f"{f['type']} {f['recovery_point'] or f['policy']} in {f['region']}: {f['error']}"
            for f in failed[:_FAILURES_NAMED]
        )
        more = (
            f"; and {len(failed) - _FAILURES_NAMED} more" if len(failed) > _FAILURES_NAMED else ""
        )
        run_id = summary.get("run_id", "")
        held = summary.get("held_deletes", 0)
        held_text = (
            f"; safety held {held} deletion(s), none made: review `smartvault plan` "
            "(held_deletes) and apply them with `smartvault apply --allow-deletes POLICY`"
            if held
            else ""
        )
        super().__init__(
            f"run {run_id}: {len(failed)} action(s) failed"
            + (f" ({named}{more})" if failed else "")
            + f"; {summary.get('not_started', 0)} not started{held_text}. Its audit records: "
            f"smartvault audit list --run-id {run_id}"
        )


@dataclass(frozen=True)
class LambdaRequest:
    """What an invocation asks for: some policies (default all), maybe only a dry run."""

    policies: tuple[str, ...] = ()
    dry_run: bool = False
    #: a fleet's shard, as the event gave it (checked against the function's regions later)
    shard: object = None

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
                '"policies" (a list of names), "dry_run" (true or false) and a fleet\'s '
                '"shard"' + (", beside EventBridge's own keys" if envelope else "")
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
                '"policies" (a list of names), "dry_run" (true or false) and a fleet\'s '
                '"shard"'
            )
        both = sorted(set(asks) & set(detail))
        if both:
            raise ConfigError(
                f"the event gives {', '.join(both)} both at its top level and in its detail: "
                "give each once"
            )
        asks.update(detail)
        return cls(policies=_policy_names(asks), dry_run=_dry_run(asks), shard=asks.get("shard"))


def _policy_names(asks: Mapping[str, object]) -> tuple[str, ...]:
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
    return tuple(names)


def _dry_run(asks: Mapping[str, object]) -> bool:
    dry_run = asks.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ConfigError('"dry_run" must be true or false')
    return dry_run


def handle(
    event: object,
    context: object,
    *,
    environ: Mapping[str, str],
    packaged_policies: Path,
    clock: Callable[[], datetime] = utc_now,
) -> dict[str, Any]:
    """One invocation: load, plan, apply (unless a dry run), notify; a JSON-able summary.

    ``packaged_policies`` is where the policies are unless ``SMARTVAULT_POLICY_PATH``
    says otherwise. With a ``context`` that knows the time left, every request is kept
    inside the function's deadline (:mod:`smartvault.deadline`).
    """
    # Every line carries the run id, a dry run's too, as do the run's audit records.
    run_id = new_run_id(clock())
    log = JsonLog(environ.get("SMARTVAULT_LOG_LEVEL", "INFO"), run_id=run_id)
    try:
        asked = LambdaRequest.from_event(event)
        settings = settings_from_env(environ)
        given_path = environ.get("SMARTVAULT_POLICY_PATH")
        policy_path = given_path or str(packaged_policies)
        deadline = _deadline(context, deadline_margin_seconds(environ))
        # The packaged policies come with the manifest of those validated when packaged;
        # no package vouches for what SMARTVAULT_POLICY_PATH names.
        validated = None if given_path else read_manifest(packaged_policies)
        engine = Engine(settings, clock=clock, deadline=deadline, validated=validated)
        shard = None
        if asked.shard is not None:
            shard = shard_from_event(asked.shard, served=settings.regions)
            log.context["shard"] = shard.name  # on every line of the run
            engine = engine.for_shard(shard, settings.shard_role, run_id)
        report = engine.run(
            RunRequest(
                at=shard.at if shard else None,
                paths=(policy_path,),
                policies=asked.policies,
                policies_named_in='the event\'s "policies"',
                dry_run=asked.dry_run,
                actor=f"lambda:{getattr(context, 'function_name', 'local')}",
                run_id=run_id,
                should_stop=deadline.stop_starting if deadline else bool,
                on_plan=lambda plan: _log_plan(log, plan, dry_run=asked.dry_run),
                on_result=lambda result: _log_result(log, result),
                # Unattended: a missing table is reported as every action failed, and notified.
                refuse_without_audit_table=False,
            )
        )
    except SmartVaultError as exc:
        log("ERROR", "run failed before applying anything", error=str(exc))
        raise
    summary = report.summary()
    summary["run_id"] = run_id
    if shard is not None:
        return _shard_finished(engine, shard, report, summary, log)
    if report.result is None:
        return summary
    _log_finished(log, report, summary, clock)
    if not report.ok:
        raise RunFailed(summary)
    return summary


def _shard_finished(
    engine: Engine, shard: Shard, report: RunReport, summary: dict[str, Any], log: JsonLog
) -> dict[str, Any]:
    """A shard's end: its plan and summary to the results bucket (when there is one), its
    metrics and log lines as any run's, and the few fields the workflow passes on."""
    uris: dict[str, str | None] = {"plan_uri": None, "result_uri": None}
    bucket = engine.settings.results_bucket
    if bucket:
        prefix = results_prefix(shard, summary["run_id"])
        try:
            uris = write_results(engine.home, bucket, prefix, report.plan, summary)
        except SmartVaultError as exc:  # the backups are done: say so, never undo them
            log("ERROR", "shard results not written", error=str(exc))
            summary["results_error"] = str(exc)
    result = shard_result(shard, summary, **uris)
    if "results_error" in summary:
        result["results_error"] = summary["results_error"]
    if report.result is not None:
        _log_finished(log, report, summary, engine.now)
        if not report.ok:
            raise RunFailed(summary)
    return result


def _log_finished(
    log: JsonLog, report: RunReport, summary: dict[str, Any], clock: Callable[[], datetime]
) -> None:
    """After applying: what was not started, the metrics, and the run's last line."""
    assert report.result is not None
    for action in report.result.not_started:
        log("WARNING", f"{action.type} not started", **_action_fields(action))
    for document in metrics.documents(
        report.plan, report.result, report.policies, report.selected, clock()
    ):
        log.metrics(document)
    level = "ERROR" if not report.ok else "WARNING" if not report.complete else "INFO"
    log(
        level,
        "run finished",
        **{
            k: summary[k]
            for k in ("outcomes", "ok", "complete", "not_started", "stopped_early", "held_deletes")
        },
    )


def _deadline(context: object, margin: float) -> Deadline | None:
    """The function's deadline; called by hand (``handler({}, None)``) there is none."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return Deadline(lambda: remaining() / 1000, margin)


def _log_plan(log: JsonLog, plan: Plan, *, dry_run: bool) -> None:
    """The plan's counts and warnings; in a dry run also each action, with its reason
    (a real run logs each action's result instead)."""
    log("INFO", "planned", dry_run=dry_run, **plan.summary)
    for warning in plan.warnings:
        log(
            "WARNING",
            warning.message,
            warning=True,
            policy=warning.policy,
            region=warning.region,
            resource_id=warning.resource_id,
        )
    if dry_run:
        for action in plan.actions:
            log("INFO", f"would {action.type}", dry_run=True, **_action_fields(action))


def _action_fields(action: Action) -> dict[str, Any]:
    return {
        "policy": action.policy,
        "action": action.type,
        "region": action.region,
        "resource_id": action.resource_id,
        "recovery_point": action.recovery_point,
        "reason": action.reason,
    }


def _log_result(log: JsonLog, result: ActionResult) -> None:
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
