"""The plan for people: terminal text and Markdown for pull requests (JSON lives in plan_json).

Every renderer is a pure function of the plan and its options. Whether to colour
is a parameter: nothing here looks at the terminal, the clock or the environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

from smartvault.core.model import ACTION_TYPES
from smartvault.core.model import Action
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import Kept
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.model import Skipped
from smartvault.core.times import iso_utc
from smartvault.formats import plan_json

Format = Literal["text", "json", "markdown"]

#: a GitHub comment holds at most 65,536 characters
GITHUB_COMMENT_LIMIT = 65536

#: tables with more rows than this are folded in <details> in Markdown
FOLD_OVER = 20

FULL_PLAN_HINT = "run `smartvault plan --format json` for the full plan"

_SIGNS = {"create": "+", "delete": "-", "archive": "~", "copy": "~"}
_COLOURS = {"create": "32", "delete": "31", "archive": "33", "copy": "33"}
_YELLOW = "33"
_BOLD = "1"


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def _policy_order(plan: Plan) -> list[str]:
    """Loaded policies in their order, then any other policy the plan mentions."""
    names = [p.name for p in plan.policies]
    seen = set(names)
    for item in (*plan.actions, *plan.kept, *plan.skipped):
        if item.policy not in seen:
            seen.add(item.policy)
            names.append(item.policy)
    return names


def _policy_detail(plan: Plan, name: str) -> str:
    """``policies/prod.yaml, slot 2026-11-28T02:00:00Z`` (or ``disabled``); '' if not loaded."""
    for p in plan.policies:
        if p.name == name:
            slot = "disabled" if p.slot is None else f"slot {iso_utc(p.slot)}"
            return f"{p.file}, {slot}"
    return ""


def _multi_region(plan: Plan) -> bool:
    regions = set(plan.regions)
    for item in (*plan.actions, *plan.kept, *plan.skipped, *plan.orphans):
        regions.add(item.region)
    return len(regions) > 1


def _warning_context(warning: PlanWarning) -> str:
    parts = []
    if warning.policy is not None:
        parts.append(f"policy {warning.policy}")
    if warning.resource_id is not None:
        parts.append(warning.resource_id)
    if warning.region is not None:
        parts.append(warning.region)
    return ", ".join(parts)


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids) or "none"


def _action_target(action: Action) -> str:
    """What the action works on: volumes to snapshot, or snapshots (and where a copy goes)."""
    if isinstance(action, CreateAction):
        return _ids(action.volume_ids)
    text = f"{_ids(action.snapshot_ids)} ({iso_utc(action.created_at)})"
    if isinstance(action, CopyAction):
        text += f" → {action.target_region}"
        if action.kms_key_id:
            text += f" (KMS {action.kms_key_id})"
    return text


def summary_line(plan: Plan) -> str:
    """``Plan: 3 to create, …; 14 kept, 1 skipped.`` or ``No changes. 14 recovery points kept.``"""
    counts = plan.summary
    if not plan.has_changes:
        line = f"No changes. {_count(counts['kept'], 'recovery point')} kept"
        if counts["skipped"]:
            line += f", {counts['skipped']:,} skipped"
        return line + "."
    todo = ", ".join(f"{counts[t]:,} to {t}" for t in ACTION_TYPES)
    return f"Plan: {todo}; {counts['kept']:,} kept, {counts['skipped']:,} skipped."


# --- text -----------------------------------------------------------------------


def render_text(plan: Plan, *, color: bool = False, verbose: bool = False) -> str:
    """The plan for a terminal; ANSI colour only when ``color`` is true.

    A header, the warnings (``!``), then one section per policy with one line per
    action (``+`` create, ``-`` delete, ``~`` archive or copy), its kept recovery
    points (a count; each one with the rules that keep it when ``verbose``) and
    skipped ones, then orphans, then a closing summary line.
    """

    def paint(text: str, *codes: str) -> str:
        if not color or not codes:
            return text
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"

    regioned = _multi_region(plan)

    def subject(region: str, resource_id: str, recovery_point: str) -> str:
        where = f"{region}  " if regioned else ""
        return f"{where}{resource_id}  {recovery_point}"

    lines = [
        paint(f"SmartVault plan for account {plan.account_id} at {iso_utc(plan.at)}", _BOLD),
        f"Regions: {', '.join(plan.regions) or 'none'}; generated {iso_utc(plan.generated_at)}",
    ]
    if plan.warnings:
        lines.append("")
        for warning in plan.warnings:
            context = _warning_context(warning)
            text = f"! {warning.message}" + (f" ({context})" if context else "")
            lines.append(paint(text, _BOLD, _YELLOW))

    for name in _policy_order(plan):
        actions = [a for a in plan.actions if a.policy == name]
        kept = [k for k in plan.kept if k.policy == name]
        skipped = [s for s in plan.skipped if s.policy == name]
        detail = _policy_detail(plan, name)
        lines.append("")
        lines.append(paint(name, _BOLD) + (f" ({detail})" if detail else ""))
        for action in actions:
            line = (
                f"  {_SIGNS[action.type]} {action.type:<7} "
                f"{subject(action.region, action.resource_id, action.recovery_point)}  "
                f"{_action_target(action)} — {action.reason}"
            )
            lines.append(paint(line, _COLOURS[action.type]))
        if kept and verbose:
            lines.extend(
                f"  = keep    {subject(k.region, k.resource_id, k.recovery_point)}  "
                f"{_ids(k.snapshot_ids)} ({iso_utc(k.created_at)}) — kept by {', '.join(k.kept_by)}"
                for k in kept
            )
        elif kept:
            lines.append(f"  = {_count(len(kept), 'recovery point')} kept")
        lines.extend(
            f"  · skip    {subject(s.region, s.resource_id, s.recovery_point)}  "
            f"{_ids(s.snapshot_ids)} — {s.reason}"
            for s in skipped
        )
        if not (actions or kept or skipped):
            lines.append("  nothing to do")

    if plan.orphans:
        lines.append("")
        lines.append(paint("Orphans (their policy is in no loaded file; never deleted):", _BOLD))
        lines.extend(
            f"  {o.policy}  {o.region}  {o.recovery_point}  "
            f"{_ids(o.snapshot_ids)} ({iso_utc(o.created_at)})"
            for o in plan.orphans
        )

    lines.append("")
    lines.append(paint(summary_line(plan), _BOLD))
    return "\n".join(lines) + "\n"


# --- Markdown ---------------------------------------------------------------------

_MD_BACKSLASH = frozenset("\\`*[]|~")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "@": "@&#8203;"}


def md_escape(text: str) -> str:
    """``text`` as literal Markdown inline text, safe inside a GFM table cell.

    Backslash-escapes Markdown punctuation (including ``|``, which would end the
    cell, and ``_`` where it could start or end emphasis), writes ``& < >`` as
    entities so no HTML gets through, breaks ``@name`` so a tag value can never
    mention anyone, and folds line breaks into spaces.
    """
    out = []
    for i, char in enumerate(text):
        if char in _MD_BACKSLASH:
            out.append("\\" + char)
        elif char == "_":
            intraword = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            out.append("_" if intraword else "\\_")
        elif char in _MD_ENTITIES:
            out.append(_MD_ENTITIES[char])
        elif char in "\r\n":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


_BLOCK_START = re.compile(r"^([-+#=]|[0-9]+(?=[.)]))")


def _md_paragraph(text: str) -> str:
    """:func:`md_escape`, and never the start of a list, heading or quote (``- x``, ``1. x``)."""
    escaped = md_escape(text)
    match = _BLOCK_START.match(escaped)
    if match is None:
        return escaped
    if match.group(0).isdigit():
        end = match.end()
        return escaped[:end] + "\\" + escaped[end:]
    return "\\" + escaped


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(md_escape(c) for c in cells) + " |\n"


def _header(columns: Sequence[str]) -> str:
    return "| " + " | ".join(columns) + " |\n" + "|" + "---|" * len(columns) + "\n"


@dataclass
class _Section:
    """A titled table (or list) whose rows may be folded away or left out to fit a size."""

    title: str
    rows: list[str]
    #: what one row is, for "… and N more <plural> not shown"
    singular: str
    plural: str
    header: str = ""
    always_fold: bool = False
    _prefix: list[int] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        total = 0
        self._prefix = [0]
        for row in self.rows:
            total += len(row)
            self._prefix.append(total)

    @property
    def folded(self) -> bool:
        return self.always_fold or len(self.rows) > FOLD_OVER

    def _around(self, keep: int) -> tuple[str, str]:
        """Everything before and after the rows shown, when ``keep`` rows are shown."""
        title = f"{self.title} ({len(self.rows):,})"
        left_out = len(self.rows) - keep
        note = ""
        if left_out:
            noun = self.singular if left_out == 1 else self.plural
            note = f"\n… and {left_out:,} more {noun} not shown; {FULL_PLAN_HINT}\n"
        if self.folded:
            before = f"<details><summary>{title}</summary>\n\n"
            after = note + "\n</details>\n\n"
        else:
            before = f"**{title}**\n\n"
            after = note + "\n"
        if keep:
            before += self.header
        return before, after

    def length(self, keep: int) -> int:
        """The exact length of ``render(keep)``."""
        before, after = self._around(keep)
        return len(before) + self._prefix[keep] + len(after)

    def bound(self, keep: int) -> int:
        """An upper bound of ``length(keep)`` that never decreases as ``keep`` grows.

        (``length`` itself can shrink by one row: showing every row drops the note.)
        """
        before, _ = self._around(1)
        _, after = self._around(0)
        return len(before) + self._prefix[keep] + len(after)

    def render(self, keep: int) -> str:
        before, after = self._around(keep)
        return before + "".join(self.rows[:keep]) + after


_Block = str | _Section

_ACTION_SECTIONS: dict[str, tuple[str, str, str]] = {
    # type: (title, one row, many rows)
    "create": ("Create", "recovery point to create", "recovery points to create"),
    "delete": ("Delete", "deletion", "deletions"),
    "archive": ("Archive", "recovery point to archive", "recovery points to archive"),
    "copy": ("Copy", "copy", "copies"),
}


def _action_section(kind: str, actions: Sequence[Action], regioned: bool) -> _Section:
    title, singular, plural = _ACTION_SECTIONS[kind]
    region = ["Region"] if regioned else []
    columns = [*region, "Resource", "Recovery point"]
    if kind == "create":
        columns += ["Volumes", "Reason"]
    elif kind == "copy":
        columns += ["Snapshots", "Created", "To", "Reason"]
    else:
        columns += ["Snapshots", "Created", "Reason"]
    rows = []
    for action in actions:
        cells = [*([action.region] if regioned else []), action.resource_id, action.recovery_point]
        if isinstance(action, CreateAction):
            cells += [_ids(action.volume_ids), action.reason]
        else:
            cells += [_ids(action.snapshot_ids), iso_utc(action.created_at)]
            if isinstance(action, CopyAction):
                kms = f" (KMS {action.kms_key_id})" if action.kms_key_id else ""
                cells.append(action.target_region + kms)
            cells.append(action.reason)
        rows.append(_row(cells))
    return _Section(title, rows, singular, plural, header=_header(columns))


def _kept_section(kept: Sequence[Kept], regioned: bool) -> _Section:
    columns = [*(["Region"] if regioned else []), "Resource", "Recovery point"]
    columns += ["Snapshots", "Created", "Kept by"]
    rows = [
        _row(
            [
                *([k.region] if regioned else []),
                k.resource_id,
                k.recovery_point,
                _ids(k.snapshot_ids),
                iso_utc(k.created_at),
                ", ".join(k.kept_by),
            ]
        )
        for k in kept
    ]
    return _Section(
        "Kept",
        rows,
        "kept recovery point",
        "kept recovery points",
        header=_header(columns),
        always_fold=True,
    )


def _skipped_section(skipped: Sequence[Skipped], regioned: bool) -> _Section:
    columns = [*(["Region"] if regioned else []), "Resource", "Recovery point"]
    columns += ["Snapshots", "Reason"]
    rows = [
        _row(
            [
                *([s.region] if regioned else []),
                s.resource_id,
                s.recovery_point,
                _ids(s.snapshot_ids),
                s.reason,
            ]
        )
        for s in skipped
    ]
    return _Section(
        "Skipped",
        rows,
        "skipped recovery point",
        "skipped recovery points",
        header=_header(columns),
    )


def _markdown_blocks(plan: Plan) -> tuple[list[_Block], list[_Block]]:
    """The document as (head, body): the head is never cut, the body's sections may be."""
    counts = plan.summary
    regions = ", ".join(md_escape(r) for r in plan.regions) or "none"
    head: list[_Block] = [
        "## SmartVault plan\n\n",
        f"Account {md_escape(plan.account_id)}, evaluated at {iso_utc(plan.at)} "
        f"in {regions} (generated {iso_utc(plan.generated_at)}).\n\n",
        "| Create | Delete | Archive | Copy | Kept | Skipped |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
        "| " + " | ".join(f"{counts[k]:,}" for k in (*ACTION_TYPES, "kept", "skipped")) + " |\n\n",
        f"**{md_escape(summary_line(plan))}**\n\n",
    ]
    body: list[_Block] = []
    if plan.warnings:
        rows = []
        for warning in plan.warnings:
            context = _warning_context(warning)
            suffix = f" ({md_escape(context)})" if context else ""
            rows.append(f"- {_md_paragraph(warning.message)}{suffix}\n")
        body.append(_Section("⚠️ Warnings", rows, "warning", "warnings"))

    regioned = _multi_region(plan)
    for name in _policy_order(plan):
        actions = [a for a in plan.actions if a.policy == name]
        kept = [k for k in plan.kept if k.policy == name]
        skipped = [s for s in plan.skipped if s.policy == name]
        detail = _policy_detail(plan, name)
        body.append(f"### Policy {md_escape(name)}\n\n")
        if detail:
            body.append(f"{_md_paragraph(detail)}\n\n")
        for kind in ACTION_TYPES:
            of_kind = [a for a in actions if a.type == kind]
            if of_kind:
                body.append(_action_section(kind, of_kind, regioned))
        if skipped:
            body.append(_skipped_section(skipped, regioned))
        if kept:
            body.append(_kept_section(kept, regioned))
        if not (actions or kept or skipped):
            body.append("Nothing to do.\n\n")

    if plan.orphans:
        body.append("### Orphans\n\n")
        body.append("Their policy is in no loaded file: SmartVault never deletes them.\n\n")
        columns = ["Policy", "Region", "Recovery point", "Snapshots", "Created"]
        rows = [
            _row(
                [
                    o.policy,
                    o.region,
                    o.recovery_point,
                    _ids(o.snapshot_ids),
                    iso_utc(o.created_at),
                ]
            )
            for o in plan.orphans
        ]
        body.append(_Section("Orphans", rows, "orphan", "orphans", header=_header(columns)))
    return head, body


def _assemble(blocks: Iterable[_Block], cap: int) -> str:
    return (
        "".join(
            b if isinstance(b, str) else b.render(min(cap, len(b.rows))) for b in blocks
        ).rstrip("\n")
        + "\n"
    )


def _length(blocks: Sequence[_Block], cap: int) -> int:
    """The length of ``_assemble(blocks, cap)`` before its trailing newlines are trimmed."""
    return sum(len(b) if isinstance(b, str) else b.length(min(cap, len(b.rows))) for b in blocks)


def _bound(blocks: Sequence[_Block], cap: int) -> int:
    """An upper bound of :func:`_length` that never decreases as ``cap`` grows."""
    return sum(len(b) if isinstance(b, str) else b.bound(min(cap, len(b.rows))) for b in blocks)


def _largest_fitting_cap(blocks: Sequence[_Block], limit: int) -> int | None:
    """The most rows per section that keeps the document within ``limit``, or None."""
    longest = max((len(b.rows) for b in blocks if isinstance(b, _Section)), default=0)
    if _length(blocks, longest) <= limit:
        return longest
    if _bound(blocks, 0) > limit:
        return None
    low, high = 0, longest  # _bound(low) fits, _bound(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if _bound(blocks, middle) <= limit:
            low = middle
        else:
            high = middle
    return low


def render_markdown(plan: Plan, *, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """The plan as a pull-request comment, never longer than ``limit`` characters.

    A title and summary table first, then warnings, then one section per policy
    with a table per action type (reasons included), skipped and kept recovery
    points; tables over 20 rows, and every kept list, fold into ``<details>``.
    User-controlled text is escaped. When everything would not fit, rows are left
    out from the end of the longest sections, each saying how many are not shown.
    """
    head, body = _markdown_blocks(plan)
    blocks = [*head, *body]
    cap = _largest_fitting_cap(blocks, limit)
    if cap is not None:
        return _assemble(blocks, cap)
    # Not even the section titles fit: the summary alone, then as much as fits.
    text = _assemble(head, 0) + f"\nThe plan is too large to show here; {FULL_PLAN_HINT}.\n"
    return text[:limit]


# --- dispatch ---------------------------------------------------------------------


def render(plan: Plan, fmt: Format, *, color: bool = False, verbose: bool = False) -> str:
    """The plan in ``fmt``: ``text`` (terminal), ``json`` or ``markdown`` (PRs)."""
    if fmt == "text":
        return render_text(plan, color=color, verbose=verbose)
    if fmt == "json":
        return plan_json.dumps(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    raise ValueError(f"unknown plan format {fmt!r}; use text, json or markdown")
