"""A fleet's plans for people: the fleet summary first (failed shards, then those with
changes), then each shard's plan. Terminal text and a pull-request comment; pure."""

from __future__ import annotations

from collections.abc import Sequence

from smartvault.core.fleet import ACTION_COLUMNS
from smartvault.core.fleet import ShardRun
from smartvault.core.fleet import fleet_totals
from smartvault.formats.render.common import count
from smartvault.formats.render.common import summary_line
from smartvault.formats.render.markdown import GITHUB_COMMENT_LIMIT
from smartvault.formats.render.markdown import md_escape
from smartvault.formats.render.markdown import render_markdown
from smartvault.formats.render.text import render_text

_COLUMNS = (*ACTION_COLUMNS, "held", "warnings")
#: a failed shard's error, in a table cell
_ERROR_CHARS = 300
#: a pull-request comment keeps this much room for the closing lines
_MARKDOWN_RESERVE = 1_000


def headline(runs: Sequence[ShardRun]) -> str:
    """``100 shards: 1 failed, 12 with changes, 87 with nothing to do.``"""
    t = fleet_totals(runs)
    return (
        f"{count(t['shards'], 'shard')}: {t['failed']:,} failed, {t['changes']:,} with "
        f"changes, {t['no changes']:,} with nothing to do."
    )


def _actions_line(runs: Sequence[ShardRun]) -> str:
    t = fleet_totals(runs)
    todo = ", ".join(f"{t[c]:,} {c}" for c in ACTION_COLUMNS)
    return f"Actions: {todo}; {t['held']:,} held by safety; {t['warnings']:,} warnings."


def _error(run: ShardRun) -> str:
    text = run.error or "; ".join(
        f"{f['type']} {f['recovery_point'] or f['policy']}: {f['error']}"
        for f in (run.summary or {}).get("failed", [])
    )
    text = " ".join(text.split()) or "actions failed or deletions were held"
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _w(column: str) -> int:
    """A count column's width: its name's, at least 6."""
    return max(6, len(column))


def _needs_plan(run: ShardRun) -> bool:
    """A shard whose own plan is worth reading: it changes something or warns."""
    return run.plan is not None and (run.plan.has_changes or bool(run.plan.warnings))


def render_fleet_text(
    runs: Sequence[ShardRun], *, color: bool = False, verbose: bool = False
) -> str:
    """The fleet table, then the plan of every shard that changes or warns (with
    ``verbose``, of every shard). ``runs`` are in fleet order."""
    width = max([len(r.shard.name) for r in runs] + [5])
    lines = [headline(runs), _actions_line(runs), ""]
    lines.append(
        f"  {'shard':<{width}}  {'status':<10}  " + " ".join(f"{c:>{_w(c)}}" for c in _COLUMNS)
    )
    quiet = [r for r in runs if r.status == "no changes" and not _needs_plan(r)]
    for run in runs:
        if run in quiet and not verbose:
            continue
        if run.status == "failed" and run.plan is None:
            lines.append(f"  {run.shard.name:<{width}}  {'FAILED':<10}  {_error(run)}")
            continue
        status = "FAILED" if run.status == "failed" else run.status
        cells = " ".join(f"{run.counts.get(c, 0):>{_w(c)},}" for c in _COLUMNS)
        lines.append(f"  {run.shard.name:<{width}}  {status:<10}  {cells}")
        if run.status == "failed":
            lines.append(f"  {'':<{width}}  {_error(run)}")
    if quiet and not verbose:
        lines.append(
            f"  ... and {count(len(quiet), 'shard')} with nothing to do and no warning "
            "(-v lists them)"
        )
    out = "\n".join(lines) + "\n"
    for run in runs:
        if run.plan is None or not (verbose or _needs_plan(run)):
            continue
        out += f"\n=== {run.shard.name} ===\n" + render_text(run.plan, color=color, verbose=verbose)
    return out


def render_fleet_markdown(runs: Sequence[ShardRun], *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """The fleet as a pull-request comment, never longer than ``limit`` characters: the
    table of failed shards and shards with changes, the others by name, then each shard's
    plan folded in ``<details>`` as long as they fit."""
    at = next((r.shard.at for r in runs), None)
    lines = [
        "### SmartVault fleet plan" + (f" at {at:%Y-%m-%dT%H:%M:%SZ}" if at else ""),
        "",
        f"**{headline(runs)}** {_actions_line(runs)}",
        "",
    ]
    shown = [r for r in runs if r.status != "no changes" or _needs_plan(r)]
    quiet = [r for r in runs if r not in shown]
    if shown:
        lines.append("| shard | status | " + " | ".join(_COLUMNS) + " |")
        lines.append("|---|---|" + "--:|" * len(_COLUMNS))
        for run in shown:
            status: str = "**failed**" if run.status == "failed" else run.status
            if run.status == "failed":
                status += ": " + md_escape(_error(run))
            cells = " | ".join(f"{run.counts.get(c, 0):,}" if run.plan else "" for c in _COLUMNS)
            lines.append(f"| `{run.shard.name}` | {status} | {cells} |")
        lines.append("")
    if quiet:
        names = " · ".join(f"`{r.shard.name}`" for r in quiet)
        lines += [
            f"<details><summary>{count(len(quiet), 'shard')} with nothing to do</summary>",
            "",
            names,
            "",
            "</details>",
            "",
        ]
    out = "\n".join(lines)
    left_out = 0
    for run in shown:
        if run.plan is None:
            continue
        section = (
            f"<details><summary>{md_escape(run.shard.name)}: "
            f"{md_escape(summary_line(run.plan))}</summary>\n\n"
            + render_markdown(run.plan, limit=max(2_000, limit // 4))
            + "\n</details>\n\n"
        )
        if len(out) + len(section) > limit - _MARKDOWN_RESERVE:
            left_out += 1
            continue
        out += section
    if left_out:
        out += (
            f"The plans of {count(left_out, 'more shard')} are left out to fit a comment: "
            "run `smartvault plan --accounts ... --format json` for every plan.\n"
        )
    return out[:limit]
