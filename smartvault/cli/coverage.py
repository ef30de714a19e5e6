"""``smartvault coverage``: what protects each instance and volume, and whether its RPO is met."""

from __future__ import annotations

from typing import cast

import click

from smartvault.cli.context import make_engine
from smartvault.cli.errors import CHANGES
from smartvault.cli.errors import PlanCommand
from smartvault.cli.output import echo
from smartvault.cli.output import use_color
from smartvault.cli.params import policy_paths
from smartvault.formats.render import coverage as render


@click.command("coverage", cls=PlanCommand)
@policy_paths
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text: for a terminal; json: for programs (docs/coverage.md); markdown: for a "
    "pull request or a wiki page.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when a resource misses its RPO or no policy protects it (and no rule "
    "excludes it), 0 when there is no such gap, 1 on any error.",
)
def coverage_command(paths: tuple[str, ...], fmt: str, detailed_exitcode: bool) -> None:
    """Show every instance and volume of the regions and what protects it. Never writes.

    For each: the policies that select it, its newest completed and newest verified
    recovery point, whether its RPO is met (newest point younger than two schedule
    periods), and for an excluded one the rule that excluded it. Unprotected
    resources come first, then missed RPOs. PATHS are policy files or directories
    (default: ./policies).

    \b
    Examples:
      smartvault coverage
      smartvault coverage --format markdown --detailed-exitcode > coverage.md
    """
    engine = make_engine()
    report = engine.coverage(engine.load_policies(paths))
    color = fmt == "text" and use_color()
    echo(render.render_coverage(report, cast("render.Format", fmt), color=color), nl=False)
    if detailed_exitcode and report.has_gaps:
        click.get_current_context().exit(CHANGES)
