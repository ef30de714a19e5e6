"""``smartvault verify``: run the restore tests that are due now, and nothing else.

It plans exactly as ``apply`` does, through the same :meth:`Engine.run
<smartvault.engine.Engine.run>`, keeps only the plan's ``verify`` actions, shows them and
asks; the test volumes earlier runs left behind are deleted in every region it works in.
"""

from __future__ import annotations

import getpass
import socket
import sys

import click

from smartvault.cli.apply import _Terminal
from smartvault.cli.apply import _Timer
from smartvault.cli.apply import end_run
from smartvault.cli.context import make_engine
from smartvault.cli.errors import Failed
from smartvault.cli.output import Progress
from smartvault.cli.output import echo
from smartvault.cli.params import policy_paths
from smartvault.core.model import Plan
from smartvault.engine import RunRequest
from smartvault.errors import ConfigError


@click.command("verify")
@policy_paths
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="NAME",
    help="Only the restore tests of this policy (repeatable).",
)
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)
def verify_command(paths: tuple[str, ...], policies: tuple[str, ...], yes: bool) -> None:
    """Run the restore tests that are due now (the plan's `verify` actions).

    A restore test makes a volume from each snapshot of a recovery point, times how long
    they take to become available, tags the snapshots smartvault:verified and deletes
    the test volumes. Test volumes that earlier runs left behind are deleted too.
    Nothing else of the plan is done: no snapshot is created, deleted, archived or
    copied. PATHS are policy files or directories (default: ./policies). Needs the
    audit table. Exits 1 if any restore test failed.

    \b
    Examples:
      smartvault verify
      smartvault verify --policy nightly --yes
    """
    terminal = _TestTerminal(yes=yes, timer=_Timer(None))
    report = make_engine().run(
        RunRequest(
            paths=paths,
            policies=policies,
            policies_named_in="--policy",
            action_types=("verify",),
            actor=f"cli:{getpass.getuser()}@{socket.gethostname()}",
            on_plan=terminal.show_plan,
            before_apply=terminal.confirm,
            on_result=terminal.show_result,
        )
    )
    terminal.show_report(report)
    end_run(report)


class _TestTerminal(_Terminal):
    """As ``apply`` shows a run, with the question a restore test asks."""

    def show_plan(self, plan: Plan) -> None:
        if plan.has_changes:
            super().show_plan(plan)
        else:
            echo("No restore test is due.")

    def confirm(self, plan: Plan, run_id: str) -> None:
        if not self.yes and plan.has_changes:
            if not sys.stdin.isatty():
                raise ConfigError(
                    "not testing: no terminal to confirm on; pass --yes to run the tests anyway"
                )
            n = len(plan.actions)
            try:
                confirmed = click.confirm(
                    "Run this restore test?" if n == 1 else f"Run these {n} restore tests?"
                )
            except click.Abort:  # ^C or end of input at the prompt
                echo(err=True)
                confirmed = False
            if not confirmed:
                raise Failed("Not tested: nothing was changed.")
        self._progress = Progress(sys.stdout.isatty(), total=len(plan.actions))
