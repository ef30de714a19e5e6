"""Coverage for people and programs: terminal text, Markdown, and JSON.

Pure functions of a :class:`~smartvault.core.coverage.Coverage`: whether to colour is a
parameter, and nothing here looks at the terminal, the clock or the environment.
Resources keep the order coverage gives them: unprotected first, then missed RPOs,
then the rest. docs/coverage.md describes every field.
"""

from __future__ import annotations

import json
from typing import Any
from typing import Literal

from smartvault.core.coverage import Coverage
from smartvault.core.coverage import PointRef
from smartvault.core.coverage import PolicyCoverage
from smartvault.core.coverage import ResourceCoverage
from smartvault.core.coverage import Status
from smartvault.core.times import format_time
from smartvault.core.times import iso_utc
from smartvault.formats.render.common import count
from smartvault.formats.render.common import warning_context
from smartvault.formats.render.markdown import md_escape

Format = Literal["text", "json", "markdown"]

#: the version of the JSON document; a change that removes or renames a field bumps it
FORMAT_VERSION = 1

_HEADINGS: dict[Status, str] = {
    "unprotected": "Unprotected: no enabled policy selects them",
    "rpo-missed": "RPO missed: the newest recovery point is older than two schedule periods",
    "protected": "Protected, RPO met",
}
_BOLD = "1"
_RED = "31"
_YELLOW = "33"
_GREEN = "32"
_STATUS_COLOURS: dict[Status, str] = {
    "unprotected": _RED,
    "rpo-missed": _YELLOW,
    "protected": _GREEN,
}


def render_coverage(coverage: Coverage, fmt: Format, *, color: bool = False) -> str:
    """``coverage`` in ``fmt``: ``text`` (terminal), ``json`` or ``markdown`` (PRs, wikis)."""
    if fmt == "text":
        return render_text(coverage, color=color)
    if fmt == "json":
        return dumps(coverage)
    if fmt == "markdown":
        return render_markdown(coverage)
    raise ValueError(f"unknown coverage format {fmt!r}; use text, json or markdown")


def summary_line(coverage: Coverage) -> str:
    """``12 resources: 3 unprotected (1 excluded by a rule), 1 RPO missed, 8 protected.``"""
    excluded = coverage.excluded_count
    of_them = f" ({excluded:,} excluded by a rule)" if excluded else ""
    return (
        f"{count(len(coverage.resources), 'resource')}: "
        f"{coverage.count('unprotected'):,} unprotected{of_them}, "
        f"{coverage.count('rpo-missed'):,} RPO missed, "
        f"{coverage.count('protected'):,} protected."
    )


# --- text ---------------------------------------------------------------------------


def _subject(resource: ResourceCoverage) -> str:
    name = f" ({resource.name})" if resource.name else ""
    attached = f", attached to {', '.join(resource.attached_to)}" if resource.attached_to else ""
    return (
        f"{resource.resource_id}{name}  {resource.resource_type}, "
        f"{resource.region}, {resource.state}{attached}"
    )


def _point(point: PointRef | None) -> str:
    if point is None:
        return "none"
    return f"{iso_utc(point.created_at)}  {point.id}"


def _verified(point: PointRef | None) -> str:
    if point is None or point.verified is None:
        return "none"
    return f"{iso_utc(point.created_at)}  {point.id}  (verified {iso_utc(point.verified)})"


def _copies(entry: PolicyCoverage) -> str:
    return "; ".join(
        f"{c.region} (newest {iso_utc(c.newest.created_at)})"
        if c.newest is not None
        else f"{c.region} (none completed)"
        for c in entry.copies
    )


def _rpo(entry: PolicyCoverage) -> str:
    word = {"met": "RPO met", "missed": "RPO MISSED", None: "RPO not measured"}[entry.rpo]
    return f"{word}: {entry.rpo_reason}"


def _held(entry: PolicyCoverage) -> str:
    return f"{entry.held:,} recovery point(s) held (smartvault:hold)"


def _entry_lines(entry: PolicyCoverage) -> list[str]:
    if entry.relation == "excluded":
        via = f" (on instance {entry.via})" if entry.via else ""
        held = f"; {_held(entry)}" if entry.held else ""
        return [f"    excluded from {entry.policy} by {entry.rule}{via}{held}"]
    if entry.relation == "disabled":
        via = f" through instance {entry.via}" if entry.via else ""
        lines = [f"    {entry.policy} would select it{via}, but the policy is disabled"]
    else:
        via = f" through instance {entry.via}" if entry.via else ""
        lines = [f"    protected by {entry.policy}{via}: {_rpo(entry)}"]
    lines.append(f"      newest    {_point(entry.newest)}")
    lines.append(f"      verified  {_verified(entry.newest_verified)}")
    if entry.copies:
        lines.append(f"      copies    {_copies(entry)}")
    if entry.held:
        lines.append(f"      held      {_held(entry)}")
    return lines


def render_text(coverage: Coverage, *, color: bool = False) -> str:
    """Coverage for a terminal: a header, warnings, one section per status with each
    resource and what every policy does for it, then the summary line."""

    def paint(text: str, *codes: str) -> str:
        if not color or not codes:
            return text
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"

    lines = [
        paint(
            f"SmartVault coverage for account {coverage.account_id} at {iso_utc(coverage.at)}",
            _BOLD,
        ),
        f"Regions: {', '.join(coverage.regions) or 'none'}",
    ]
    for warning in coverage.warnings:
        context = warning_context(warning)
        text = f"! {warning.message}" + (f" ({context})" if context else "")
        lines.append(paint(text, _BOLD, _YELLOW))
    for status in _HEADINGS:
        resources = [r for r in coverage.resources if r.status == status]
        if not resources:
            continue
        lines.append("")
        heading = f"{_HEADINGS[status]} ({len(resources):,})"
        lines.append(paint(heading, _BOLD, _STATUS_COLOURS[status]))
        for resource in resources:
            lines.append(f"  {_subject(resource)}")
            if not resource.policies:
                lines.append("    no policy's selector.tags match it")
            for entry in resource.policies:
                lines.extend(_entry_lines(entry))
    if not coverage.resources:
        lines.append("")
        lines.append("No instances or volumes in these regions.")
    lines.append("")
    lines.append(paint(summary_line(coverage), _BOLD))
    return "\n".join(lines) + "\n"


# --- Markdown -----------------------------------------------------------------------


def _md_time(point: PointRef | None) -> str:
    return "—" if point is None else iso_utc(point.created_at)


def _md_entry(entry: PolicyCoverage) -> tuple[str, str, str, str, str]:
    """(policy, newest, verified, held, RPO) cells for one policy of a resource."""
    name = f"`{entry.policy}`"
    via = f" via `{entry.via}`" if entry.via else ""
    held = f"{entry.held:,}" if entry.held else ""
    if entry.relation == "excluded":
        return f"{name}{via} excluded: {md_escape(entry.rule or '')}", "", "", held, ""
    if entry.relation == "disabled":
        disabled = f"{name}{via} (disabled)"
        return disabled, _md_time(entry.newest), _md_time(entry.newest_verified), held, ""
    newest = _md_time(entry.newest)
    if entry.copies:
        newest += " (copies: " + md_escape(_copies(entry)) + ")"
    rpo = {"met": "met", "missed": "**missed**", None: "not measured"}[entry.rpo]
    return (
        f"{name}{via}",
        newest,
        _md_time(entry.newest_verified),
        held,
        f"{rpo}: {md_escape(entry.rpo_reason)}",
    )


def render_markdown(coverage: Coverage) -> str:
    """Coverage as GitHub-flavoured Markdown: a summary, then a table per status."""
    lines = [
        f"### SmartVault coverage, account `{coverage.account_id}`, {iso_utc(coverage.at)}",
        "",
        f"Regions: {', '.join(coverage.regions) or 'none'}. {summary_line(coverage)}",
    ]
    if coverage.warnings:
        lines.append("")
        for warning in coverage.warnings:
            context = warning_context(warning)
            lines.append(
                f"- :warning: {md_escape(warning.message)}"
                + (f" ({md_escape(context)})" if context else "")
            )
    for status in _HEADINGS:
        resources = [r for r in coverage.resources if r.status == status]
        if not resources:
            continue
        lines += [
            "",
            f"#### {_HEADINGS[status]} ({len(resources):,})",
            "",
            "| Resource | Name | Region | Policy | Newest | Verified | Held | RPO |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for resource in resources:
            cells = [_md_entry(e) for e in resource.policies] or [("none", "", "", "", "")]
            policy, newest, verified, held, rpo = (
                "<br>".join(column) for column in zip(*cells, strict=True)
            )
            lines.append(
                f"| `{resource.resource_id}` ({resource.resource_type}) "
                f"| {md_escape(resource.name or '')} | {resource.region} "
                f"| {policy} | {newest} | {verified} | {held} | {rpo} |"
            )
    return "\n".join(lines) + "\n"


# --- JSON ---------------------------------------------------------------------------


def _point_dict(point: PointRef | None) -> dict[str, Any] | None:
    if point is None:
        return None
    return {
        "recovery_point": point.id,
        "region": point.region,
        "created_at": format_time(point.created_at),
        "verified": None if point.verified is None else format_time(point.verified),
    }


def _entry_dict(entry: PolicyCoverage) -> dict[str, Any]:
    period = entry.period
    return {
        "policy": entry.policy,
        "relation": entry.relation,
        "rule": entry.rule,
        "via": entry.via,
        "newest": _point_dict(entry.newest),
        "newest_verified": _point_dict(entry.newest_verified),
        "copies": [{"region": c.region, "newest": _point_dict(c.newest)} for c in entry.copies],
        "rpo": entry.rpo,
        "period_seconds": None if period is None else int(period.total_seconds()),
        "rpo_reason": entry.rpo_reason or None,
        "held": entry.held,
    }


def coverage_to_dict(coverage: Coverage) -> dict[str, Any]:
    """The JSON document (``format_version`` 1), keys in a fixed order."""
    return {
        "format_version": FORMAT_VERSION,
        "at": format_time(coverage.at),
        "account_id": coverage.account_id,
        "regions": list(coverage.regions),
        "summary": {
            "resources": len(coverage.resources),
            "unprotected": coverage.count("unprotected"),
            "excluded": coverage.excluded_count,
            "rpo_missed": coverage.count("rpo-missed"),
            "protected": coverage.count("protected"),
        },
        "resources": [
            {
                "region": r.region,
                "resource_type": r.resource_type,
                "resource_id": r.resource_id,
                "name": r.name,
                "state": r.state,
                "status": r.status,
                "excluded": r.excluded,
                "attached_to": list(r.attached_to),
                "held": r.held,
                "policies": [_entry_dict(e) for e in r.policies],
            }
            for r in coverage.resources
        ],
        "warnings": [
            {
                "message": w.message,
                "policy": w.policy,
                "resource_id": w.resource_id,
                "region": w.region,
            }
            for w in coverage.warnings
        ],
    }


def dumps(coverage: Coverage) -> str:
    """Coverage as JSON text: two-space indent, fixed key order, UTF-8, trailing newline."""
    return json.dumps(coverage_to_dict(coverage), indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "FORMAT_VERSION",
    "coverage_to_dict",
    "dumps",
    "render_coverage",
    "render_markdown",
    "render_text",
    "summary_line",
]
