"""``plan --accounts`` and ``apply --accounts``: a fleet of accounts from the terminal.

The options, the shards they name, and how a fleet's plans are shown. The work itself
is :mod:`smartvault.fleet`'s: one engine per shard, a few at once.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import TypeVar

import click

from smartvault import files
from smartvault.cli.context import current_settings
from smartvault.cli.output import echo
from smartvault.cli.output import use_color
from smartvault.core import preflight
from smartvault.core.fleet import DEFAULT_SHARD_ROLE
from smartvault.core.fleet import ShardRun
from smartvault.core.fleet import role_name_problem
from smartvault.core.fleet import shards_of
from smartvault.engine import DEFAULT_POLICY_PATHS
from smartvault.engine import Engine
from smartvault.errors import ConfigError
from smartvault.fleet import DEFAULT_MAX_CONCURRENCY
from smartvault.fleet import Fleet
from smartvault.fleet import plan_fleet
from smartvault.formats import fleet_json
from smartvault.formats.render.fleet import render_fleet_markdown
from smartvault.formats.render.fleet import render_fleet_text
from smartvault.formats.shards import parse_accounts

F = TypeVar("F", bound=Callable[..., Any])


def _check_role_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = role_name_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value


def fleet_options(command: F) -> F:
    """``--accounts``, ``--role-name`` and ``--max-concurrency``."""
    for option in reversed(
        (
            click.option(
                "--accounts",
                metavar="FILE|ou:ID",
                help="Work in these accounts instead of the credentials' own: a file with "
                "one 12-digit account id per line (# comments), or ou:ou-xxxx-xxxxxxxx / "
                "ou:r-xxxx for every active account below that OU or root of your "
                "Organization. Each account and --region is one shard, run through "
                "--role-name in that account. See docs/fleet.md.",
            ),
            click.option(
                "--role-name",
                default=DEFAULT_SHARD_ROLE,
                show_default=True,
                callback=_check_role_name,
                help="With --accounts: the role to assume in each account (the spoke role "
                "of `smartvault deploy template --fleet`).",
            ),
            click.option(
                "--max-concurrency",
                type=click.IntRange(1, 64),
                default=DEFAULT_MAX_CONCURRENCY,
                show_default=True,
                help="With --accounts: shards worked on at once (EC2's request limits are "
                "per account and region, so shards never slow each other down there).",
            ),
        )
    ):
        command = option(command)
    return command


def refuse_fleet_only(accounts: str | None, given: Sequence[str]) -> None:
    """``--role-name`` and ``--max-concurrency`` only mean something with ``--accounts``."""
    context = click.get_current_context()
    used = [
        f"--{name.replace('_', '-')}"
        for name in given
        if context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if used and accounts is None:
        raise click.UsageError(f"{', '.join(used)}: only with --accounts")


def fleet_of(
    engine: Engine, accounts: str, role_name: str, max_concurrency: int, at: datetime | None
) -> Fleet:
    """The shards ``--accounts`` and every ``--region`` name, all at one time (``--at``,
    else now): every shard plans at the same moment, whenever its turn comes."""
    if accounts.startswith("ou:"):
        from smartvault.aws.organizations import accounts_below

        ids, management = accounts_below(engine.session, accounts[3:])
        echo(
            f"{accounts}: {len(ids):,} active accounts (the management account {management} "
            "is left out: a service-managed StackSet puts no role there).",
            err=True,
        )
    else:
        try:
            text = files.read_text(accounts, too_large="list fewer accounts per file")
        except files.FileRefused as exc:
            raise ConfigError(str(exc)) from exc
        ids = parse_accounts(text, accounts)
    regions = engine.session.regions()
    return Fleet(tuple(shards_of(ids, regions, at or engine.now())), role_name, max_concurrency)


def plan_shards(
    engine: Engine,
    paths: Sequence[str],
    allow_deletes: Sequence[str],
    flags: tuple[str, str, int],
    at: datetime | None,
) -> tuple[Fleet, list[ShardRun]]:
    """The policies (checked before any account is asked anything), the fleet of
    ``flags`` (``--accounts``, ``--role-name``, ``--max-concurrency``) and every shard's plan."""
    policies = engine.load_policies(paths)
    unknown = preflight.unknown_policies(
        allow_deletes, policies, paths or DEFAULT_POLICY_PATHS, "--allow-deletes"
    )
    if unknown:
        raise ConfigError(unknown)
    fleet = fleet_of(engine, *flags, at)
    return fleet, plan_fleet(fleet, engine, policies, allow_deletes)


def show_fleet(runs: Sequence[ShardRun], fmt: str) -> None:
    if fmt == "json":
        echo(fleet_json.dumps(runs), nl=False)
    elif fmt == "markdown":
        echo(render_fleet_markdown(runs), nl=False)
    else:
        echo(
            render_fleet_text(runs, color=use_color(), verbose=current_settings().verbose),
            nl=False,
        )
