"""The ``smartvault`` command: parse flags, call the engine, print, pick an exit code."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any
from typing import TypeVar

import click

from smartvault import __version__
from smartvault import engine
from smartvault import policy as policy_loader
from smartvault.errors import PolicyError
from smartvault.errors import SmartVaultError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_POLICY_PATHS = ("policies",)


def _fail_readably(func: F) -> F:
    """Turn an expected failure into one readable message and exit 1 (traceback with -v)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SmartVaultError as exc:
            ctx = click.get_current_context()
            settings = ctx.find_object(engine.Settings)
            if settings is not None and settings.verbose:
                raise
            click.echo(f"Error: {exc}" if not isinstance(exc, PolicyError) else str(exc), err=True)
            ctx.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smartvault")
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="REGION",
    help="AWS region to work in (repeatable). Default: the boto3 default region.",
)
@click.option("--profile", help="AWS named profile to use.")
@click.option(
    "--endpoint-url",
    help="Send AWS calls to this endpoint (for a local simulator). boto3 also reads AWS_ENDPOINT_URL.",
)
@click.option(
    "--audit-table",
    envvar="SMARTVAULT_AUDIT_TABLE",
    default=engine.DEFAULT_AUDIT_TABLE,
    show_default=True,
    help="DynamoDB table that holds the audit log (env SMARTVAULT_AUDIT_TABLE).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show details, and tracebacks on errors.")
@click.pass_context
def cli(
    ctx: click.Context,
    regions: tuple[str, ...],
    profile: str | None,
    endpoint_url: str | None,
    audit_table: str,
    verbose: bool,
) -> None:
    """SmartVault: declarative backup policies for Amazon EBS.

    Policies are YAML files (default: ./policies). Review what they would do with
    `smartvault plan`, then carry it out with `smartvault apply`.
    """
    ctx.obj = engine.Settings(
        regions=regions,
        profile=profile,
        endpoint_url=endpoint_url,
        audit_table=audit_table,
        verbose=verbose,
    )


policy_paths = click.argument("paths", nargs=-1, type=click.Path())


@cli.command()
@policy_paths
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: an array of {file, line, column, message}.",
)
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Check policy files (default: ./policies) and report every problem found."""
    try:
        policies = policy_loader.load_policies(paths or DEFAULT_POLICY_PATHS)
    except PolicyError as exc:
        if fmt == "json":
            click.echo(
                json.dumps(
                    [
                        {"file": p.file, "line": p.line, "column": p.column, "message": p.message}
                        for p in exc.problems
                    ],
                    indent=2,
                )
            )
        else:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            n = len(exc.problems)
            click.echo(f"{n} problem{'s' if n != 1 else ''} found", err=True)
        sys.exit(1)
    n_pol, n_files = len(policies.policies), len(policies.files)
    if fmt == "json":
        click.echo("[]")
    else:
        click.echo(
            f"ok: {n_pol} polic{'ies' if n_pol != 1 else 'y'} in {n_files} file{'s' if n_files != 1 else ''}"
        )


@cli.command()
def schema() -> None:
    """Print the policy JSON Schema (for editors and check-jsonschema)."""
    click.echo(json.dumps(policy_loader.policy_schema(), indent=2))


def main() -> None:
    cli(prog_name="smartvault")
