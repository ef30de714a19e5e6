"""The ``smartvault`` command: parse flags, call the engine, print, pick an exit code."""

from __future__ import annotations

import dataclasses
import functools
import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from typing import TypeVar
from typing import cast

import click

from smartvault import __version__
from smartvault import deploy as deploy_module
from smartvault import engine
from smartvault import plan_json
from smartvault import policy as policy_loader
from smartvault import render
from smartvault.errors import ConfigError
from smartvault.errors import PlanFileError
from smartvault.errors import PolicyError
from smartvault.errors import SmartVaultError
from smartvault.executor import ActionResult
from smartvault.model import AuditRecord
from smartvault.model import PolicySet

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
    help="Send AWS calls to this endpoint (a local simulator). boto3 also reads AWS_ENDPOINT_URL.",
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
    pol_word = "policy" if n_pol == 1 else "policies"
    file_word = "file" if n_files == 1 else "files"
    if fmt == "json":
        click.echo("[]")
    else:
        click.echo(f"ok: {n_pol} {pol_word} in {n_files} {file_word}")


@cli.command()
def schema() -> None:
    """Print the policy JSON Schema (for editors and check-jsonschema)."""
    click.echo(json.dumps(policy_loader.policy_schema(), indent=2))


def _engine() -> engine.Engine:
    return engine.Engine(click.get_current_context().ensure_object(engine.Settings))


def _load(paths: tuple[str, ...]) -> PolicySet:
    """Policies of ``paths``; invalid ones end the command (exit 1) before any AWS call."""
    try:
        return policy_loader.load_policies(paths or DEFAULT_POLICY_PATHS)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo("policies are invalid: fix them (see `smartvault validate`)", err=True)
        sys.exit(1)


_SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """ISO 8601; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time; write e.g. 2026-11-30T03:00:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_span(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """``90s``, ``45m``, ``2h``, ``7d``, ``1w``."""
    if value is None:
        return None
    text = value.strip()
    count, unit = text[:-1], text[-1:]
    if not (count.isdigit() and int(count) > 0 and unit in _SPAN_UNITS):
        raise click.BadParameter(f"{value!r} is not a duration; write e.g. 45m, 2h or 7d")
    return timedelta(seconds=int(count) * _SPAN_UNITS[unit])


@cli.command()
@policy_paths
@click.option(
    "--at",
    callback=_parse_time,
    metavar="TIME",
    help="Evaluate at this time (ISO 8601) instead of now.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown: a comment for a pull request.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    help="Also save the JSON plan here, for `smartvault apply --plan`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@_fail_readably
def plan(
    paths: tuple[str, ...], at: datetime | None, fmt: str, out: str | None, detailed_exitcode: bool
) -> None:
    """Show what applying the policies would do. Never writes to AWS."""
    policies = _load(paths)
    the_plan = _engine().plan(policies, at=at)
    if out:
        try:
            Path(out).write_text(plan_json.dumps(the_plan), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the plan to {out}: {exc.strerror}") from exc
    color = fmt == "text" and _color()
    verbose = click.get_current_context().find_object(engine.Settings)
    click.echo(
        render.render(
            the_plan,
            cast("render.Format", fmt),
            color=color,
            verbose=bool(verbose and verbose.verbose),
        ),
        nl=False,
    )
    if detailed_exitcode and the_plan.has_changes:
        sys.exit(2)


@cli.command()
@policy_paths
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Apply this saved plan (from `plan --out`) after checking it is still current.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--max-plan-age",
    callback=_parse_span,
    metavar="DURATION",
    default="24h",
    show_default=True,
    help="Refuse a saved plan older than this.",
)
@click.option(
    "--max-duration",
    callback=_parse_span,
    metavar="DURATION",
    help="Start no new action after this long (e.g. 45m); the next run finishes the work.",
)
@_fail_readably
def apply(
    paths: tuple[str, ...],
    plan_file: str | None,
    yes: bool,
    max_plan_age: timedelta,
    max_duration: timedelta | None,
) -> None:
    """Plan and apply: create due snapshots, delete expired ones, audit every action."""
    eng = _engine()
    policies = _load(paths)
    if plan_file:
        try:
            text = Path(plan_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise PlanFileError(f"cannot read {plan_file}: {exc.strerror}") from exc
        the_plan = plan_json.loads(text, source=plan_file)
        eng.check_saved_plan(the_plan, policies, max_plan_age)
    else:
        the_plan = eng.plan(policies)
    tty = sys.stdout.isatty()
    click.echo(render.render_text(the_plan, color=_color()), nl=False)
    if not the_plan.has_changes:
        click.echo("Nothing to do.")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError("not applying: no terminal to confirm on; pass --yes to apply anyway")
        click.confirm(f"Apply these {len(the_plan.actions)} actions?", abort=True)
    started = time.monotonic()
    limit = max_duration.total_seconds() if max_duration else None
    progress = _Progress(tty)
    report = eng.apply(
        the_plan,
        policies,
        actor=f"cli:{getpass.getuser()}@{socket.gethostname()}",
        should_stop=lambda: limit is not None and time.monotonic() - started > limit,
        on_result=progress,
    )
    progress.close()
    assert report.result is not None
    result = report.result
    for failed in result.failed:
        click.echo(
            f"failed: {failed.action.type} {failed.action.recovery_point}: "
            f"{failed.error or failed.audit_error}",
            err=True,
        )
    for note in report.notifications:
        if not note.sent:
            click.echo(f"notification for {note.policy} not sent: {note.error}", err=True)
    counts = result.counts
    click.echo(
        f"Run {result.run_id}: {counts['succeeded']} succeeded, {counts['failed']} failed, "
        f"{counts['skipped']} skipped, {counts['not_started']} not started."
    )
    if result.stopped_early:
        click.echo(
            f"Stopped early: {result.stop_reason}. The next run finishes the work.", err=True
        )
    if not report.ok:
        sys.exit(1)


def _color() -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class _Progress:
    """Counts on one line on a terminal; one plain line per action otherwise."""

    def __init__(self, tty: bool) -> None:
        self._tty = tty
        self._counts: dict[str, int] = {}

    def __call__(self, result: ActionResult) -> None:
        key = "failed" if result.needs_attention else f"{result.action.type}:{result.outcome}"
        self._counts[key] = self._counts.get(key, 0) + 1
        if self._tty:
            created = self._counts.get("create:succeeded", 0)
            deleted = self._counts.get("delete:succeeded", 0)
            failed = self._counts.get("failed", 0)
            click.echo(f"\rcreated {created}, deleted {deleted}, failed {failed}", nl=False)
        else:
            action = result.action
            detail = result.error or result.reason
            click.echo(
                f"{result.outcome}: {action.type} {action.region} {action.recovery_point}"
                + (f" ({detail})" if detail else "")
            )

    def close(self) -> None:
        if self._tty and self._counts:
            click.echo()


@cli.group()
def audit() -> None:
    """The audit log in DynamoDB: one record per action SmartVault attempted."""


@audit.command("init")
@_fail_readably
def audit_init() -> None:
    """Create the audit table if it is missing (on-demand, TTL, point-in-time recovery)."""
    eng = _engine()
    log = eng.audit_log()
    created = log.ensure_table()
    where = f"{log.table_name} in {log.region}"
    click.echo(f"created audit table {where}" if created else f"audit table {where} is ready")


@audit.command("list")
@click.option(
    "--since",
    callback=_parse_span,
    metavar="DURATION",
    default="7d",
    show_default=True,
    help="How far back to look.",
)
@click.option("--policy", help="Only records of this policy.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@_fail_readably
def audit_list(since: timedelta, policy: str | None, fmt: str) -> None:
    """Audit records, newest first."""
    eng = _engine()
    now = eng.now()
    records = eng.audit_log().list(now - since, now, policy=policy)
    if fmt == "json":
        click.echo(json.dumps([_record_to_json(r) for r in records], indent=2))
        return
    if not records:
        click.echo("no audit records in that period")
    for r in records:
        ids = ",".join(r.snapshot_ids)
        line = (
            f"{r.timestamp:%Y-%m-%d %H:%M:%S}Z {r.outcome:<9} {r.action:<7} {r.policy} "
            f"{r.region} {r.recovery_point or r.resource_id} {ids}"
        )
        detail = r.error or r.reason
        click.echo(line.rstrip() + (f"  ({detail})" if detail else ""))


def _record_to_json(record: AuditRecord) -> dict[str, Any]:
    out = dataclasses.asdict(record)
    out["timestamp"] = plan_json.format_time(record.timestamp)
    out["snapshot_ids"] = list(record.snapshot_ids)
    out["details"] = dict(record.details)
    return out


@cli.group()
def deploy() -> None:
    """Run SmartVault on schedule in AWS: CloudFormation template and Lambda package."""


@deploy.command("template")
@policy_paths
@_fail_readably
def deploy_template(paths: tuple[str, ...]) -> None:
    """Print the CloudFormation template for the policies (makes no AWS call)."""
    policies = _load(paths)
    settings = click.get_current_context().ensure_object(engine.Settings)
    text, warnings = deploy_module.cloudformation_template(
        policies, regions=settings.regions or None
    )
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(text, nl=False)


@deploy.command("package")
@policy_paths
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Where to write the deployment zip.",
)
@click.option(
    "--no-vendor",
    is_flag=True,
    help="Leave out the third-party libraries (for inspecting the zip).",
)
@_fail_readably
def deploy_package(paths: tuple[str, ...], out: str, no_vendor: bool) -> None:
    """Build the Lambda deployment zip: SmartVault, its handler, policies and libraries."""
    policies = _load(paths)
    root = Path(__file__).resolve().parent.parent
    info = deploy_module.build_package(
        Path(out),
        project_root=root,
        policy_paths=[Path(f) for f in policies.files],
        vendor=not no_vendor,
    )
    click.echo(
        f"wrote {info.path} ({info.size:,} bytes, {info.entries} files, sha256 {info.sha256})"
    )


def main() -> None:
    cli(prog_name="smartvault")
