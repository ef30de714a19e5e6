"""``smartvault demo``: the whole cycle on a simulated account, no credentials needed.

The command only finds the policies and moto; the fleet and the steps are in
:mod:`smartvault.demo`, which runs the real commands of this very group.
"""

from __future__ import annotations

from pathlib import Path

import click

from smartvault.cli.errors import Failed
from smartvault.cli.output import echo

#: the example policies of a source checkout (or an editable install), beside the package
SHIPPED_POLICIES = Path(__file__).resolve().parents[2] / "policies"


@click.command("demo")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--report",
    "report",
    metavar="FILE.html",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also keep the audit report page the demo writes (the only file it writes outside "
    "its temporary folder).",
)
def demo_command(paths: tuple[Path, ...], report: Path | None) -> None:
    """Run the whole cycle on a simulated AWS account: no credentials, no network.

    Seeds a fleet of a dozen instances with backdated history in moto's simulated
    account (in this process), then shows validate, coverage, the plan, the apply, a
    second plan with nothing to do, a restore test, plan --compare for a shortened
    retention, the audit log and its report page. PATHS are policy files or directories
    to try on the simulated fleet (default: the shipped policies/); they are copied,
    never changed. Everything is written in a temporary folder, removed at the end,
    except the page --report keeps.

    \b
    Examples:
      smartvault demo
      smartvault demo --report demo-report.html my-policies/
    """
    from smartvault.demo.sandbox import moto_missing

    missing = moto_missing()
    if missing is not None:
        raise Failed(f"Error: {missing}")
    if not paths:
        if not SHIPPED_POLICIES.is_dir():
            raise Failed(
                f"Error: the example policies are not at {SHIPPED_POLICIES} (SmartVault was "
                "not installed from a source checkout); give policy files or folders: "
                "smartvault demo PATH..."
            )
        paths = (SHIPPED_POLICIES,)

    from smartvault.demo.script import run_demo

    root = click.get_current_context().find_root().command
    # Resolved now: the steps run with another working directory.
    outcome = run_demo(root, paths, echo, report.resolve() if report else None)
    echo("")
    echo("━━ what happened " + "━" * 63)
    echo(
        f"{outcome.created} recovery points created, {outcome.deleted} deleted, "
        f"{outcome.skipped} skipped (an AMI uses them), {outcome.orphaned} orphaned "
        "(their policy is in no file; kept)."
    )
    if outcome.held_in_compare is not None:
        echo(
            f"The shortened retention: safety held {outcome.held_in_compare} deletions "
            "for a person to review."
        )
    echo(
        f"Restore tests: {outcome.restore_tests_passed} passed, "
        f"{outcome.restore_tests_failed} failed."
    )
    if outcome.report is not None:
        echo(f"The report page: {outcome.report} (open it in any browser).")
    echo(f"Done in {outcome.seconds:.1f} s.")
    if outcome.failed_steps:
        raise Failed("Error: these steps did not succeed: " + ", ".join(outcome.failed_steps))
