"""``smartvault audit``: create the audit table, and read its records."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from smartvault.cli.context import make_engine
from smartvault.cli.output import echo
from smartvault.cli.params import parse_span
from smartvault.cli.params import policy_paths
from smartvault.cli.params import span_text
from smartvault.core.model import AuditRecord
from smartvault.core.model import PolicySet
from smartvault.core.times import format_time
from smartvault.engine import DEFAULT_POLICY_PATHS
from smartvault.engine import Engine
from smartvault.errors import AuditError
from smartvault.errors import AuditTableMissing
from smartvault.errors import ConfigError
from smartvault.errors import SmartVaultError
from smartvault.formats.report_html import render_report


@click.group("audit")
def audit_group() -> None:
    """The audit log in DynamoDB: one record per action SmartVault attempted.

    \b
    Examples:
      smartvault --region us-east-1 audit init
      smartvault audit list --since 1d
    """


@audit_group.command("init")
def audit_init() -> None:
    """Create the audit table if it is missing (on-demand, TTL, point-in-time recovery).

    The table is --audit-table in the first --region. Safe to run again: a complete
    table is left as it is.

    \b
    Examples:
      smartvault audit init
      smartvault --region eu-west-1 --audit-table backups-audit audit init
    """
    log = make_engine().audit_log()
    created = log.ensure_table()
    where = f"{log.table_name} in {log.region}"
    echo(f"created audit table {where}" if created else f"audit table {where} is ready")


@audit_group.command("list")
@click.option(
    "--since",
    callback=parse_span,
    metavar="DURATION",
    default="7d",
    show_default=True,
    help="How far back to look: s, m, h, d or w (e.g. 1h, 30d).",
)
@click.option("--policy", metavar="NAME", help="Only records of this policy.")
@click.option(
    "--run-id",
    metavar="ID",
    help="Only records of this run (its id is in its notification and its log lines).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: an array of the records, newest first.",
)
def audit_list(since: timedelta, policy: str | None, run_id: str | None, fmt: str) -> None:
    """Audit records, newest first (from --audit-table in the first --region).

    \b
    Examples:
      smartvault audit list --since 1d --policy nightly
      smartvault audit list --since 30d --format json > audit.json
    """
    engine = make_engine()
    now = engine.now()
    records = _query(engine, now, since, policy)
    if run_id is not None:
        records = [r for r in records if r.run_id == run_id]
    if fmt == "json":
        echo(json.dumps([_record_to_json(r) for r in records], indent=2))
        return
    if not records:
        echo(_nothing_found(since, policy))
    # A fleet's table holds several accounts: then each line says which.
    accounts = len({r.account_id for r in records}) > 1
    for record in records:
        echo(_record_line(record, account=accounts))


@audit_group.command("report")
@policy_paths
@click.option(
    "--since",
    callback=parse_span,
    metavar="DURATION",
    default="30d",
    show_default=True,
    help="How far back to look: s, m, h, d or w (e.g. 7d, 12w).",
)
@click.option("--policy", metavar="NAME", help="Only records of this policy.")
@click.option(
    "--out",
    required=True,
    metavar="FILE.html",
    type=click.Path(dir_okay=False, writable=True),
    help="Where to write the page (replaced if it exists).",
)
def audit_report(paths: tuple[str, ...], since: timedelta, policy: str | None, out: str) -> None:
    """Write the audit log as one self-contained HTML page: open it in any browser, offline.

    It shows failures first (and records left pending over an hour: a crashed run),
    recovery points created and deleted per day, per-policy totals and RPO status, and
    every record in a searchable, sortable table. PATHS are policy files or directories
    (default: ./policies, when it is there): with them, each policy's RPO status is read
    against its schedule; without, it is "unknown".

    \b
    Examples:
      smartvault audit report --out audit.html
      smartvault audit report policies/ --since 7d --policy nightly --out nightly.html
    """
    engine = make_engine()
    policies = _report_policies(paths)
    now = engine.now()
    records = _query(engine, now, since, policy)
    if policies is not None and policy is not None:
        policies = PolicySet(tuple(p for p in policies.policies if p.name == policy))
    page = render_report(records, generated_at=now, since=since, policies=policies)
    try:
        Path(out).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {out}: {exc.strerror}") from exc
    failed = sum(1 for r in records if r.outcome == "failed")
    tail = f", {failed} failed" if failed else ""
    echo(f"wrote {out}: {len(records)} records of the last {span_text(since)}{tail}")


def _report_policies(paths: tuple[str, ...]) -> PolicySet | None:
    """The policies PATHS name (an error if they cannot be read); else ./policies when it
    is there, where a problem only costs the RPO status: the log is read all the same."""
    if paths:
        return Engine.load_policies(paths)
    if not os.path.lexists(DEFAULT_POLICY_PATHS[0]):
        return None
    try:
        return Engine.load_policies()
    except SmartVaultError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        echo(
            f"warning: the policies in {DEFAULT_POLICY_PATHS[0]}/ cannot be read ({first}): "
            "the report shows every RPO as unknown; run `smartvault validate`, or pass "
            "the policy files as PATHS",
            err=True,
        )
        return None


def _query(
    engine: Engine, now: datetime, since: timedelta, policy: str | None
) -> list[AuditRecord]:
    try:
        return engine.audit_log().records.query(now - since, now, policy=policy)
    except AuditTableMissing as exc:
        raise AuditError(
            f"audit table {exc.table} not found in {exc.region}: pass the --audit-table "
            "and --region it was created with, or create it with `smartvault audit init`"
        ) from exc


def _nothing_found(since: timedelta, policy: str | None) -> str:
    """No records: for a policy name, also whether the policies here know that name."""
    period = f"in the last {span_text(since)}"
    if policy is None:
        return f"no audit records {period}"
    said = f"no audit records of policy {policy} {period}"
    try:  # the policies are not needed to read the log: only a hint when they are here
        known = [p.name for p in Engine.load_policies().policies]
    except SmartVaultError:
        return said
    if policy in known:
        return said
    close = difflib.get_close_matches(policy, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else f" (known: {', '.join(known)})"
    return f"{said}, and no policy in {', '.join(DEFAULT_POLICY_PATHS)} is named {policy}{hint}"


def region_shown(r: AuditRecord) -> str:
    """Where the record's snapshots are: a copy's are in its target region, made from its
    source's, so both are shown (``us-east-1→us-west-2``)."""
    target = r.details.get("target_region")
    return f"{r.region}→{target}" if r.action == "copy" and target else r.region


def _record_line(r: AuditRecord, *, account: bool = False) -> str:
    ids = ",".join(r.snapshot_ids)
    where = f"{r.account_id or '-'}/{region_shown(r)}" if account else region_shown(r)
    line = (
        f"{r.timestamp:%Y-%m-%d %H:%M:%S}Z {r.outcome:<9} {r.action:<7} {r.policy} "
        f"{where} {r.recovery_point or r.resource_id} {ids}"
    )
    detail = r.error or r.reason
    return line.rstrip() + (f"  ({detail})" if detail else "")


def _record_to_json(record: AuditRecord) -> dict[str, Any]:
    out = dataclasses.asdict(record)
    out["timestamp"] = format_time(record.timestamp)
    out["snapshot_ids"] = list(record.snapshot_ids)
    out["details"] = dict(record.details)
    if record.action == "copy" and "target_region" in record.details:
        out["target_region"] = record.details["target_region"]
    return out
