"""``smartvault apply``: plan (or take a saved plan), show it, ask, apply, say what happened.

The run itself is :meth:`Engine.run <smartvault.engine.Engine.run>`, as in the Lambda;
this module adds what only a terminal has: the plan as text, the confirmation prompt,
a progress line, ``--max-duration`` and the closing account.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import click

from smartvault.cli.context import cli_actor
from smartvault.cli.context import make_engine
from smartvault.cli.errors import Failed
from smartvault.cli.fleet import fleet_options
from smartvault.cli.fleet import plan_shards
from smartvault.cli.fleet import refuse_fleet_only
from smartvault.cli.fleet import show_fleet
from smartvault.cli.output import Progress
from smartvault.cli.output import echo
from smartvault.cli.output import use_color
from smartvault.cli.params import allow_deletes_option
from smartvault.cli.params import parse_span
from smartvault.cli.params import policy_paths
from smartvault.cli.params import span_text
from smartvault.core.model import Plan
from smartvault.core.report import ActionResult
from smartvault.core.report import RunReport
from smartvault.engine import RunRequest
from smartvault.errors import ConfigError
from smartvault.fleet import apply_fleet
from smartvault.formats import render

#: ``apply``: nothing failed, but the run stopped (``--max-duration``) with
#: actions not started; running again finishes the work. Distinct from 1 (a failure) and
#: from 2 (wrong usage, and ``plan --detailed-exitcode``'s "changes").
STOPPED = 3


class Stopped(Failed):
    """Ends ``apply`` or ``verify`` with exit 3: nothing failed, but work remains."""

    exit_code = STOPPED


def end_run(report: RunReport) -> None:
    """Exit 1 when an action failed, 3 when the run stopped with work remaining, else 0.

    A failure wins over a stop: a run that both failed and stopped needs a person first.
    (Deletions held by ``safety`` are a failure too: they reach here through
    :attr:`RunReport.ok`.)
    """
    if not report.ok:
        raise Failed
    if not report.complete:
        raise Stopped


@click.command("apply")
@policy_paths
@click.option(
    "--plan",
    "plan_file",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Apply this saved plan (from `plan --out`), only if planning again at its time "
    "over the current account gives the same actions.",
)
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)
@click.option(
    "--max-plan-age",
    callback=parse_span,
    metavar="DURATION",
    default="24h",
    show_default=True,
    help="Refuse a saved plan older than this (s, m, h, d or w).",
)
@click.option(
    "--max-duration",
    callback=parse_span,
    metavar="DURATION",
    help="Start no new action after this long (e.g. 45m); running again finishes the work.",
)
@allow_deletes_option
@fleet_options
def apply_command(
    paths: tuple[str, ...],
    plan_file: str | None,
    yes: bool,
    max_plan_age: timedelta,
    max_duration: timedelta | None,
    allow_deletes: tuple[str, ...],
    accounts: str | None,
    role_name: str,
    max_concurrency: int,
) -> None:
    """Plan and apply: create, delete, archive and copy snapshots; audit every action.

    PATHS are policy files or directories (default: ./policies). Shows the plan and
    asks before changing anything. Needs the audit table (`smartvault audit init`).
    Exits 1 if any action failed or a policy's safety rules held its deletions (the
    rest is still applied), 3 if it stopped (--max-duration) with actions not started
    and none failed: running it again finishes the work.

    \b
    Examples:
      smartvault apply --yes
      smartvault plan --out plan.json && smartvault apply --plan plan.json
      smartvault apply --allow-deletes prod-nightly   # after reviewing held_deletes
      smartvault --region eu-west-1 apply --accounts accounts.txt --yes
    """
    refuse_fleet_only(accounts, ("role_name", "max_concurrency"))
    terminal = _Terminal(yes=yes, timer=_Timer(max_duration))
    if accounts is not None:
        if plan_file:
            raise click.UsageError(
                "--plan applies one account's saved plan; with --accounts every shard is "
                "planned, shown and checked again before it is applied"
            )
        _apply_fleet(terminal, paths, allow_deletes, (accounts, role_name, max_concurrency))
        return
    report = make_engine().run(
        RunRequest(
            paths=paths,
            saved_plan=plan_file,
            allow_deletes=allow_deletes,
            max_plan_age=max_plan_age,
            actor=cli_actor(),
            should_stop=terminal.timer.expired,
            on_plan=terminal.show_plan,
            before_apply=terminal.confirm,
            on_result=terminal.show_result,
        )
    )
    terminal.show_report(report)
    end_run(report)


def _apply_fleet(
    terminal: _Terminal,
    paths: tuple[str, ...],
    allow_deletes: tuple[str, ...],
    flags: tuple[str, str, int],
) -> None:
    """Plan every shard, show the fleet, ask once, then apply each shard's plan as shown
    (checked against its account again first). Exit 1 when a shard failed, 3 when one
    stopped with work remaining."""
    engine = make_engine()
    fleet, planned = plan_shards(engine, paths, allow_deletes, flags, None)
    show_fleet(planned, "text")
    actions = sum(len(r.plan.actions) for r in planned if r.plan is not None)
    if actions:  # as for one account: a table that cannot be written stops it before asking
        engine.audit_log().check_writable()
    changing = sum(1 for r in planned if r.plan is not None and r.plan.has_changes)
    terminal.ask(bool(actions), f"these {actions:,} actions in {changing:,} shards")
    runs = apply_fleet(
        fleet,
        engine,
        planned,
        RunRequest(
            paths=paths,
            actor=cli_actor(),
            should_stop=terminal.timer.expired,
        ),
    )
    for run in runs:
        summary = run.summary or {}
        if run.error:
            echo(f"{run.shard.name}: FAILED: {run.error}", err=True)
        elif summary:
            n = summary.get("outcomes", {})
            state = "" if summary.get("complete", True) else " (INCOMPLETE: work remains)"
            echo(
                f"{run.shard.name}: run {summary.get('run_id')}{state}: "
                f"{n.get('succeeded', 0)} succeeded, {n.get('failed', 0)} failed, "
                f"{n.get('skipped', 0)} skipped, {n.get('not_started', 0)} not started."
            )
    if any(r.status == "failed" for r in runs):
        raise Failed("Some shards failed: see above, and `smartvault audit list --run-id ID`.")
    if any(not (r.summary or {}).get("complete", True) for r in runs):
        raise Stopped


class _Timer:
    """``--max-duration``: true, and staying true, once the run has lasted longer."""

    def __init__(self, limit: timedelta | None) -> None:
        self.limit = limit
        self.timed_out = False
        self._started = 0.0

    def start(self) -> None:
        self._started = _monotonic()

    def expired(self) -> bool:
        seconds = self.limit.total_seconds() if self.limit else None
        self.timed_out = self.timed_out or (
            seconds is not None and _monotonic() - self._started > seconds
        )
        return self.timed_out


class _Terminal:
    """What a person at a terminal sees of a run, and the one question it asks."""

    def __init__(self, *, yes: bool, timer: _Timer) -> None:
        self.yes = yes
        self.timer = timer
        self._progress = Progress(tty=False)

    def show_plan(self, plan: Plan) -> None:
        echo(render.render_text(plan, color=use_color()), nl=False)
        if not plan.has_changes:
            # Still through the engine, as the Lambda does: a policy that asked to hear
            # about successful runs hears about this one too.
            echo("Nothing to do.")

    def ask(self, changes: bool, what: str) -> None:
        """Ask "Apply ``what``?" before the first change (not with --yes, nor with nothing
        to do: ``changes`` false); then the --max-duration clock starts."""
        if not self.yes and changes:
            if not _stdin_is_tty():
                raise ConfigError(
                    "not applying: no terminal to confirm on; pass --yes to apply anyway"
                )
            try:
                confirmed = click.confirm(f"Apply {what}?")
            except click.Abort:  # ^C or end of input at the prompt
                echo(err=True)
                confirmed = False
            if not confirmed:
                raise Failed("Not applied: nothing was changed.")
        self.timer.start()

    def confirm(self, plan: Plan, run_id: str) -> None:
        """One account's question, before its run's first change."""
        n = len(plan.actions)
        self.ask(plan.has_changes, "this action" if n == 1 else f"these {n} actions")
        self._progress = Progress(sys.stdout.isatty(), total=n)

    def show_result(self, result: ActionResult) -> None:
        self._progress(result)

    def show_report(self, report: RunReport) -> None:
        self._progress.close()
        result = report.result
        assert result is not None
        for failed in result.failed:
            echo(
                f"failed: {failed.action.type} {failed.action.recovery_point}: "
                f"{failed.error or failed.audit_error}",
                err=True,
            )
        for line in result.notes:  # what became of records earlier runs left pending
            echo(f"note: {line}")
        for note in report.notifications:
            if not note.sent:
                echo(f"notification for {note.policy} not sent: {note.error}", err=True)
        counts = result.counts
        if report.plan.has_changes:
            state = "" if result.complete else " (INCOMPLETE: work remains)"
            echo(
                f"Run {result.run_id}{state}: {counts['succeeded']} succeeded, "
                f"{counts['failed']} failed, {counts['skipped']} skipped, "
                f"{counts['not_started']} not started."
            )
        if result.failed or not result.complete:
            echo(f"Its audit records: smartvault audit list --run-id {result.run_id}")
        if result.stopped_early and self.timer.timed_out:
            echo(
                f"Stopped after --max-duration {span_text(self.timer.limit)}: "
                f"{counts['not_started']} not started; run `smartvault apply` again "
                "to finish the work.",
                err=True,
            )
        elif result.stopped_early:
            echo(f"Stopped early: {result.stop_reason}", err=True)
        held = sorted({h.action.policy for h in report.plan.held_deletes})
        if held:
            flags = " ".join(f"--allow-deletes {name}" for name in held)
            echo(
                f"safety held {len(report.plan.held_deletes):,} deletions of "
                f"{', '.join(held)}: none was made. If they are right, run "
                f"`smartvault apply {flags}`.",
                err=True,
            )


def _monotonic() -> float:
    return time.monotonic()


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()
