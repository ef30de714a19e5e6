"""The ``smartvault`` command: parse flags, call the engine, print, pick an exit code."""

from __future__ import annotations

import dataclasses
import functools
import getpass
import json
import os
import re
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
from smartvault import files
from smartvault.aws.session import endpoint_url_problem
from smartvault.core.model import AuditRecord
from smartvault.core.model import PolicySet
from smartvault.core.report import ActionResult
from smartvault.core.times import format_time
from smartvault.errors import AuditError
from smartvault.errors import AuditTableMissing
from smartvault.errors import ConfigError
from smartvault.errors import PlanFileError
from smartvault.errors import PolicyError
from smartvault.errors import SmartVaultError
from smartvault.formats import plan_json
from smartvault.formats import policy
from smartvault.formats import render
from smartvault.settings import DEFAULT_AUDIT_TABLE
from smartvault.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_POLICY_PATHS = ("policies",)

#: DynamoDB's rule for table names.
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def _echo(message: str = "", *, nl: bool = True, err: bool = False) -> None:
    """``click.echo`` that outlives a reader who went away (``apply --yes | head``).

    A closed pipe must not stop a backup run half-way: once it is gone, what would
    have been printed there is dropped and the work goes on (errors still reach the
    other stream, and the audit log has every action).
    """
    stream = sys.stderr if err else sys.stdout
    if stream in _CLOSED_STREAMS:
        return
    try:
        click.echo(message, nl=nl, err=err)
    except BrokenPipeError:
        _CLOSED_STREAMS.add(stream)
        # Point the descriptor at /dev/null so that the interpreter's own flush at exit
        # does not fail again (and print "Exception ignored ...") either.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no real descriptor (e.g. under a test runner)
            pass


_CLOSED_STREAMS: set[object] = set()


def _fail_readably(func: F) -> F:
    """Turn an expected failure into one readable message and exit 1 (traceback with -v)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SmartVaultError as exc:
            ctx = click.get_current_context()
            settings = ctx.find_object(Settings)
            if settings is not None and settings.verbose:
                raise
            _echo(f"Error: {exc}" if not isinstance(exc, PolicyError) else str(exc), err=True)
            ctx.exit(1)

    return wrapper  # type: ignore[return-value]


def _split_regions(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """``--region a --region b`` or ``--region a,b``; spaces around names are dropped."""
    names = [name.strip() for item in value for name in item.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


def _check_table_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _TABLE_NAME.match(value):
        raise click.BadParameter(
            f"{value!r} is not a DynamoDB table name: 3 to 255 letters, digits, _ . or -"
        )
    return value


def _check_endpoint_url(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    problem = endpoint_url_problem(value) if value else None
    if problem:
        raise click.BadParameter(f"{value!r} is not an endpoint URL: {problem}")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smartvault")
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="REGION",
    callback=_split_regions,
    help="AWS region to work in (repeatable, or comma-separated). Default: the profile's "
    "or AWS_DEFAULT_REGION. The audit table lives in the first one.",
)
@click.option("--profile", metavar="NAME", help="AWS named profile to use.")
@click.option(
    "--endpoint-url",
    metavar="URL",
    callback=_check_endpoint_url,
    help="Send AWS calls to this endpoint (a local simulator). boto3 also reads AWS_ENDPOINT_URL.",
)
@click.option(
    "--audit-table",
    envvar="SMARTVAULT_AUDIT_TABLE",
    default=DEFAULT_AUDIT_TABLE,
    show_default=True,
    metavar="NAME",
    callback=_check_table_name,
    help="DynamoDB table that holds the audit log, in the first --region "
    "(env SMARTVAULT_AUDIT_TABLE).",
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

    Policies are YAML files (default: ./policies). Check them with `smartvault
    validate`, review what they would do with `smartvault plan`, create the audit
    table once with `smartvault audit init`, then carry the plan out with
    `smartvault apply`.

    Exit codes: 0 success; 1 invalid policies, an AWS or audit problem, or a failed
    action; 2 wrong usage.
    """
    ctx.obj = Settings(
        regions=regions,
        profile=profile,
        endpoint_url=endpoint_url,
        audit_table=audit_table,
        verbose=verbose,
    )


policy_paths = click.argument("paths", nargs=-1, type=click.Path())


class _PlanCommand(click.Command):
    """With --detailed-exitcode, 2 means "changes": a usage error must then exit 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        detailed = "--detailed-exitcode" in args
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if detailed:
                exc.exit_code = 1
            raise


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
        policies = policy.load_policies(paths or DEFAULT_POLICY_PATHS)
    except PolicyError as exc:
        if fmt == "json":
            _echo(
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
                _echo(str(problem), err=True)
            n = len(exc.problems)
            _echo(f"{n} problem{'s' if n != 1 else ''} found", err=True)
        sys.exit(1)
    n_pol, n_files = len(policies.policies), len(policies.files)
    pol_word = "policy" if n_pol == 1 else "policies"
    file_word = "file" if n_files == 1 else "files"
    if fmt == "json":
        _echo("[]")
    else:
        _echo(f"ok: {n_pol} {pol_word} in {n_files} {file_word}")


@cli.command()
def schema() -> None:
    """Print the policy JSON Schema (for editors and check-jsonschema)."""
    _echo(json.dumps(policy.policy_schema(), indent=2))


def _engine() -> engine.Engine:
    return engine.Engine(click.get_current_context().ensure_object(Settings))


def _load(paths: tuple[str, ...]) -> PolicySet:
    """Policies of ``paths``; invalid ones end the command (exit 1) before any AWS call."""
    # Only what is not there at all: a link loop or an unreadable file is a problem below.
    missing = [p for p in paths or DEFAULT_POLICY_PATHS if not os.path.lexists(p)]
    if missing:
        where = "" if paths else " (the default; run from the folder that holds policies/)"
        raise ConfigError(
            f"no such file or directory: {', '.join(missing)}{where}: "
            "name the policy files or directories to use"
        )
    try:
        return policy.load_policies(paths or DEFAULT_POLICY_PATHS)
    except PolicyError as exc:
        for problem in exc.problems:
            _echo(str(problem), err=True)
        n = len(exc.problems)
        _echo(
            f"{n} problem{'s' if n != 1 else ''} in the policies: fix "
            f"{'it' if n == 1 else 'them'} (see `smartvault validate`); nothing was done",
            err=True,
        )
        sys.exit(1)


_SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Ten years: far beyond the audit records' lifetime (400 days), and one Query per day.
_MAX_SPAN_DAYS = 3660
_MAX_SPAN_SECONDS = _MAX_SPAN_DAYS * 86400


#: ``--at`` lies in these years: EBS snapshots did not exist before, and a look further
#: ahead than this is a typo (and would leave the range slot arithmetic can represent).
_AT_YEARS = range(1970, 3000)


def _parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """ISO 8601; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time; write e.g. 2026-11-30T03:00:00Z"
        ) from None
    except OverflowError:  # the zone moves it past year 1 or 9999
        moment = datetime.min.replace(tzinfo=UTC)
    if moment.year not in _AT_YEARS:
        raise click.BadParameter(
            f"{value!r} lies outside the years {_AT_YEARS.start} to {_AT_YEARS.stop - 1}; "
            "write a time in them, e.g. 2026-11-30T03:00:00Z"
        )
    return moment


def _parse_span(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """``90s``, ``45m``, ``2h``, ``7d``, ``1w``."""
    if value is None:
        return None
    text = value.strip()
    count, unit = text[:-1], text[-1:]
    if not (count.isdigit() and int(count) > 0 and unit in _SPAN_UNITS):
        raise click.BadParameter(f"{value!r} is not a duration; write e.g. 45m, 2h or 7d")
    seconds = int(count) * _SPAN_UNITS[unit]
    if seconds > _MAX_SPAN_SECONDS:
        raise click.BadParameter(f"{value!r} is too long; at most {_MAX_SPAN_DAYS}d")
    return timedelta(seconds=seconds)


@cli.command(cls=_PlanCommand)
@policy_paths
@click.option(
    "--at",
    callback=_parse_time,
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
@_fail_readably
def plan(
    paths: tuple[str, ...], at: datetime | None, fmt: str, out: str | None, detailed_exitcode: bool
) -> None:
    """Show what applying the policies would do. Never writes to AWS.

    PATHS are policy files or directories (default: ./policies). Reads the
    instances, volumes, snapshots and AMIs of every --region.
    """
    policies = _load(paths)
    the_plan = _engine().plan(policies, at=at)
    if out:
        try:
            Path(out).write_text(plan_json.dumps(the_plan), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the plan to {out}: {exc.strerror}") from exc
    color = fmt == "text" and _color()
    verbose = click.get_current_context().find_object(Settings)
    _echo(
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
    callback=_parse_span,
    metavar="DURATION",
    default="24h",
    show_default=True,
    help="Refuse a saved plan older than this (s, m, h, d or w).",
)
@click.option(
    "--max-duration",
    callback=_parse_span,
    metavar="DURATION",
    help="Start no new action after this long (e.g. 45m); running again finishes the work.",
)
@_fail_readably
def apply(
    paths: tuple[str, ...],
    plan_file: str | None,
    yes: bool,
    max_plan_age: timedelta,
    max_duration: timedelta | None,
) -> None:
    """Plan and apply: create, delete, archive and copy snapshots; audit every action.

    PATHS are policy files or directories (default: ./policies). Shows the plan and
    asks before changing anything. Needs the audit table (`smartvault audit init`).
    Exits 1 if any action failed.
    """
    eng = _engine()
    policies = _load(paths)
    if plan_file:
        try:
            text = files.read_text(
                plan_file,
                too_large="apply without --plan, or save plans of fewer policies "
                "(`smartvault plan --out FILE PATH...`)",
            )
        except files.FileRefused as exc:
            raise PlanFileError(str(exc)) from exc
        the_plan = plan_json.loads(text, source=plan_file)
        eng.check_saved_plan(the_plan, policies, max_plan_age)
    else:
        the_plan = eng.plan(policies)
    tty = sys.stdout.isatty()
    _echo(render.render_text(the_plan, color=_color()), nl=False)
    if not the_plan.has_changes:
        # Still through the engine, as the Lambda does: a policy that asked to hear
        # about successful runs hears about this one too.
        _echo("Nothing to do.")
    # Before asking: a missing audit table would fail every action.
    eng.audit_log().check_writable()
    if not yes and the_plan.has_changes:
        if not _stdin_is_tty():
            raise ConfigError("not applying: no terminal to confirm on; pass --yes to apply anyway")
        n = len(the_plan.actions)
        try:
            confirmed = click.confirm(f"Apply {'this action' if n == 1 else f'these {n} actions'}?")
        except click.Abort:  # ^C or end of input at the prompt
            _echo(err=True)
            confirmed = False
        if not confirmed:
            _echo("Not applied: nothing was changed.", err=True)
            sys.exit(1)
    started = _monotonic()
    limit = max_duration.total_seconds() if max_duration else None
    timed_out = False

    def should_stop() -> bool:
        nonlocal timed_out
        timed_out = timed_out or (limit is not None and _monotonic() - started > limit)
        return timed_out

    progress = _Progress(tty, total=len(the_plan.actions))
    report = eng.apply(
        the_plan,
        policies,
        actor=f"cli:{getpass.getuser()}@{socket.gethostname()}",
        should_stop=should_stop,
        on_result=progress,
    )
    progress.close()
    assert report.result is not None
    result = report.result
    for failed in result.failed:
        _echo(
            f"failed: {failed.action.type} {failed.action.recovery_point}: "
            f"{failed.error or failed.audit_error}",
            err=True,
        )
    for line in result.notes:  # what became of records earlier runs left pending
        _echo(f"note: {line}")
    for note in report.notifications:
        if not note.sent:
            _echo(f"notification for {note.policy} not sent: {note.error}", err=True)
    counts = result.counts
    if the_plan.has_changes:
        _echo(
            f"Run {result.run_id}: {counts['succeeded']} succeeded, {counts['failed']} failed, "
            f"{counts['skipped']} skipped, {counts['not_started']} not started."
        )
    if result.stopped_early:
        if timed_out:
            _echo(
                f"Stopped after --max-duration {_span_text(max_duration)}: "
                f"{counts['not_started']} not started; run `smartvault apply` again "
                "to finish the work.",
                err=True,
            )
        else:
            _echo(f"Stopped early: {result.stop_reason}", err=True)
    if not report.ok:
        sys.exit(1)


def _span_text(span: timedelta | None) -> str:
    seconds = int(span.total_seconds()) if span else 0
    for unit, size in sorted(_SPAN_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _monotonic() -> float:
    return time.monotonic()


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _color() -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class _Progress:
    """Counts on one line on a terminal; one plain line per action otherwise."""

    def __init__(self, tty: bool, total: int = 0) -> None:
        self._tty = tty
        self._total = total
        self._done = 0
        self._counts: dict[str, int] = {}

    def __call__(self, result: ActionResult) -> None:
        key = "failed" if result.needs_attention else f"{result.action.type}:{result.outcome}"
        self._counts[key] = self._counts.get(key, 0) + 1
        self._done += 1
        if self._tty:
            created = self._counts.get("create:succeeded", 0)
            deleted = self._counts.get("delete:succeeded", 0)
            failed = self._counts.get("failed", 0)
            skipped = sum(n for k, n in self._counts.items() if k.endswith(":skipped"))
            _echo(
                f"\r{self._done}/{self._total} done: created {created}, deleted {deleted}, "
                f"skipped {skipped}, failed {failed}",
                nl=False,
            )
        else:
            action = result.action
            detail = result.error or result.reason
            _echo(
                f"{result.outcome}: {action.type} {action.region} {action.recovery_point}"
                + (f" ({detail})" if detail else "")
            )

    def close(self) -> None:
        if self._tty and self._counts:
            _echo()


@cli.group()
def audit() -> None:
    """The audit log in DynamoDB: one record per action SmartVault attempted."""


@audit.command("init")
@_fail_readably
def audit_init() -> None:
    """Create the audit table if it is missing (on-demand, TTL, point-in-time recovery).

    The table is --audit-table in the first --region. Safe to run again: a complete
    table is left as it is.
    """
    eng = _engine()
    log = eng.audit_log()
    created = log.ensure_table()
    where = f"{log.table_name} in {log.region}"
    _echo(f"created audit table {where}" if created else f"audit table {where} is ready")


@audit.command("list")
@click.option(
    "--since",
    callback=_parse_span,
    metavar="DURATION",
    default="7d",
    show_default=True,
    help="How far back to look: s, m, h, d or w (e.g. 1h, 30d).",
)
@click.option("--policy", metavar="NAME", help="Only records of this policy.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: an array of the records, newest first.",
)
@_fail_readably
def audit_list(since: timedelta, policy: str | None, fmt: str) -> None:
    """Audit records, newest first (from --audit-table in the first --region)."""
    eng = _engine()
    now = eng.now()
    log = eng.audit_log()
    try:
        records = log.records.query(now - since, now, policy=policy)
    except AuditTableMissing as exc:
        raise AuditError(
            f"audit table {exc.table} not found in {exc.region}: pass the --audit-table "
            "and --region it was created with, or create it with `smartvault audit init`"
        ) from exc
    if fmt == "json":
        _echo(json.dumps([_record_to_json(r) for r in records], indent=2))
        return
    if not records:
        _echo("no audit records in that period")
    for r in records:
        ids = ",".join(r.snapshot_ids)
        line = (
            f"{r.timestamp:%Y-%m-%d %H:%M:%S}Z {r.outcome:<9} {r.action:<7} {r.policy} "
            f"{r.region} {r.recovery_point or r.resource_id} {ids}"
        )
        detail = r.error or r.reason
        _echo(line.rstrip() + (f"  ({detail})" if detail else ""))


def _record_to_json(record: AuditRecord) -> dict[str, Any]:
    out = dataclasses.asdict(record)
    out["timestamp"] = format_time(record.timestamp)
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
    """Print the CloudFormation template for the policies (makes no AWS call).

    PATHS are policy files or directories (default: ./policies). The --region
    options become the function's default Regions parameter; a policy that could
    never run in them is a warning (on stderr).
    """
    policies = _load(paths)
    settings = click.get_current_context().ensure_object(Settings)
    for region in settings.regions:  # a typo here would only fail in the deployed function
        _engine().session.check_region(region)
    text, warnings = deploy_module.cloudformation_template(
        policies, regions=settings.regions or None
    )
    for warning in warnings:
        _echo(f"warning: {warning}", err=True)
    _echo(text, nl=False)


@deploy.command("package")
@policy_paths
@click.option(
    "--out",
    required=True,
    metavar="FILE.zip",
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
    """Build the Lambda deployment zip: SmartVault, its handler, policies and libraries.

    PATHS are the policy files or directories to package (default: ./policies).
    """
    policies = _load(paths)
    root = Path(__file__).resolve().parent.parent
    info = deploy_module.build_package(
        Path(out),
        project_root=root,
        policy_paths=[Path(f) for f in policies.files],
        vendor=not no_vendor,
    )
    _echo(f"wrote {info.path} ({info.size:,} bytes, {info.entries} files, sha256 {info.sha256})")


def main() -> None:
    cli(prog_name="smartvault")
