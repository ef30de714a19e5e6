"""``smartvault plan``: what applying the policies would do, for a terminal, a file or a PR."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import cast

import click

from smartvault.cli.context import current_settings
from smartvault.cli.context import make_engine
from smartvault.cli.errors import CHANGES
from smartvault.cli.errors import Failed
from smartvault.cli.errors import PlanCommand
from smartvault.cli.fleet import fleet_options
from smartvault.cli.fleet import plan_shards
from smartvault.cli.fleet import refuse_fleet_only
from smartvault.cli.fleet import show_fleet
from smartvault.cli.output import echo
from smartvault.cli.output import echo_pieces
from smartvault.cli.output import use_color
from smartvault.cli.params import allow_deletes_option
from smartvault.cli.params import parse_time
from smartvault.cli.params import policy_paths
from smartvault.core import preflight
from smartvault.core.compare import Comparison
from smartvault.core.compare import compare
from smartvault.core.model import Plan
from smartvault.engine import DEFAULT_POLICY_PATHS
from smartvault.engine import Engine
from smartvault.errors import ConfigError
from smartvault.formats import plan_json
from smartvault.formats import render
from smartvault.formats.policy.revision import load_policies_at


@click.command("plan", cls=PlanCommand)
@policy_paths
@click.option(
    "--at",
    callback=parse_time,
    metavar="TIME",
    help="Evaluate at this time instead of now: ISO 8601, e.g. 2026-12-07T03:00:00Z "
    "(UTC when no zone is given).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text: for a terminal; json: the plan format (docs/plan-format.md); "
    "markdown: a comment for a pull request.",
)
@click.option(
    "--out",
    metavar="FILE",
    type=click.Path(dir_okay=False, writable=True),
    help="Also save the JSON plan here, for `smartvault apply --plan FILE`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on any error.",
)
@click.option(
    "--compare",
    "compare_ref",
    metavar="REF",
    help="Also plan with the policy files as they are at git revision REF (same account "
    "read, same --at) and show what the change itself does, e.g. "
    "`smartvault plan --compare origin/main --format markdown` in a pull request.",
)
@allow_deletes_option
@fleet_options
def plan_command(
    paths: tuple[str, ...],
    at: datetime | None,
    fmt: str,
    out: str | None,
    detailed_exitcode: bool,
    allow_deletes: tuple[str, ...],
    compare_ref: str | None,
    accounts: str | None,
    role_name: str,
    max_concurrency: int,
) -> None:
    """Show what applying the policies would do. Never writes to AWS.

    PATHS are policy files or directories (default: ./policies). Reads the
    instances, volumes, snapshots and AMIs of every --region. Deletions a policy's
    safety rules hold back are listed as held (held_deletes in JSON).

    \b
    Examples:
      smartvault plan --format markdown > plan.md
      smartvault plan --allow-deletes prod-nightly --out plan.json
      smartvault plan --compare origin/main --format markdown > review.md
      smartvault --region eu-west-1 --region us-east-1 plan --accounts accounts.txt
    """
    refuse_fleet_only(accounts, ("role_name", "max_concurrency"))
    engine = make_engine()
    if accounts is not None:
        _plan_fleet(
            engine,
            paths,
            at,
            fmt,
            out,
            compare_ref,
            allow_deletes,
            detailed_exitcode,
            fleet_of_flags=(accounts, role_name, max_concurrency),
        )
        return
    policies = engine.load_policies(paths)
    unknown = preflight.unknown_policies(
        allow_deletes, policies, paths or DEFAULT_POLICY_PATHS, "--allow-deletes"
    )
    if unknown:
        raise ConfigError(unknown)
    comparison = None
    if compare_ref is None:
        the_plan = engine.plan(policies, at=at, allow_deletes=allow_deletes)
    else:
        then = load_policies_at(compare_ref, paths or DEFAULT_POLICY_PATHS)
        # Both sides with the same second key: the comparison shows the edit, not the key.
        now_side, then_side = engine.plan_compared(
            policies, then.policies, at=at, allow_deletes=allow_deletes
        )
        the_plan = now_side.plan
        comparison = compare(then.ref, then.commit, now_side, then_side, then.missing)
    if out:  # the plan to apply: this one, never REF's, never the comparison
        _save(the_plan, out)
    if fmt == "json" and comparison is None:
        with echo_pieces() as write:  # written as converted: a large plan is never held whole
            plan_json.write(the_plan, write)
    else:
        _echo_rendered(the_plan, cast("render.Format", fmt), comparison)
    if detailed_exitcode and the_plan.has_changes:
        click.get_current_context().exit(CHANGES)


def _plan_fleet(
    engine: Engine,
    paths: tuple[str, ...],
    at: datetime | None,
    fmt: str,
    out: str | None,
    compare_ref: str | None,
    allow_deletes: tuple[str, ...],
    detailed_exitcode: bool,
    *,
    fleet_of_flags: tuple[str, str, int],
) -> None:
    """One plan per shard and the fleet's summary; exit 1 when a shard failed."""
    if out or compare_ref:
        raise click.UsageError(
            "--out and --compare plan one account; with --accounts, save every shard's "
            "plan with --format json"
        )
    _, runs = plan_shards(engine, paths, allow_deletes, fleet_of_flags, at)
    show_fleet(runs, fmt)
    if any(r.status == "failed" for r in runs):
        raise Failed()
    if detailed_exitcode and any(r.status == "changes" for r in runs):
        click.get_current_context().exit(CHANGES)


def _echo_rendered(plan: Plan, fmt: render.Format, comparison: Comparison | None) -> None:
    color = fmt == "text" and use_color()
    verbose = current_settings().verbose
    echo(
        render.render(
            plan,
            fmt,
            color=color,
            verbose=verbose,
            comparison=comparison,
        ),
        nl=False,
    )


def _save(plan: Plan, out: str) -> None:
    try:
        with Path(out).open("w", encoding="utf-8") as file:
            plan_json.write(plan, file.write)
    except OSError as exc:
        raise ConfigError(f"cannot write the plan to {out}: {exc.strerror}") from exc
