"""The plan as a pull-request comment: GitHub-flavoured Markdown that always fits.

A pure function of the plan and a size limit. User-controlled text (names, tags,
reasons) is escaped so that it reads literally, and sections are folded or cut, each
saying how much it leaves out, so the comment never exceeds the limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from smartvault.core.compare import ComparedAction
from smartvault.core.compare import Comparison
from smartvault.core.compare import impact
from smartvault.core.compare import lead
from smartvault.core.model import ACTION_TYPES
from smartvault.core.model import Action
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import Kept
from smartvault.core.model import Plan
from smartvault.core.model import Skipped
from smartvault.core.model import VerifyAction
from smartvault.core.model import format_timeout
from smartvault.core.times import iso_utc
from smartvault.formats.render.common import HeldGroup
from smartvault.formats.render.common import count
from smartvault.formats.render.common import held_groups
from smartvault.formats.render.common import held_header
from smartvault.formats.render.common import ids
from smartvault.formats.render.common import multi_region
from smartvault.formats.render.common import named
from smartvault.formats.render.common import policy_detail
from smartvault.formats.render.common import policy_order
from smartvault.formats.render.common import reason_of
from smartvault.formats.render.common import rule_groups
from smartvault.formats.render.common import rule_title
from smartvault.formats.render.common import summary_line
from smartvault.formats.render.common import verified_mark
from smartvault.formats.render.common import warning_context

#: a GitHub comment holds at most 65,536 characters
GITHUB_COMMENT_LIMIT = 65536

#: tables with more rows than this are folded in <details> in Markdown
FOLD_OVER = 20

FULL_PLAN_HINT = "run `smartvault plan --format json` for the full plan"

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


def _header(columns: Sequence[str], *, numbers: bool = False) -> str:
    """A table's header row and delimiter row; ``numbers`` aligns every column right."""
    rule = "---:|" if numbers else "---|"
    return "| " + " | ".join(columns) + " |\n" + "|" + rule * len(columns) + "\n"


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
    "verify": ("Verify", "restore test", "restore tests"),
}


def _action_section(kind: str, actions: Sequence[Action], regioned: bool) -> _Section:
    title, singular, plural = _ACTION_SECTIONS[kind]
    region = ["Region"] if regioned else []
    columns = [*region, "Resource", "Recovery point"]
    if kind == "create":
        columns += ["Volumes", "Reason"]
    elif kind == "copy":
        columns += ["Snapshots", "Created", "To", "Reason"]
    elif kind == "verify":
        columns += ["Snapshots", "Created", "Timeout", "Reason"]
    else:
        columns += ["Snapshots", "Created", "Reason"]
    rows = []
    for action in actions:
        cells = [
            *([action.region] if regioned else []),
            named(action.resource_id, action.resource_name),
            action.recovery_point,
        ]
        if isinstance(action, CreateAction):
            cells += [ids(action.volume_ids), action.reason]
        else:
            cells += [ids(action.snapshot_ids), iso_utc(action.created_at)]
            if isinstance(action, CopyAction):
                kms = f" (KMS {action.kms_key_id})" if action.kms_key_id else ""
                cells.append(action.target_region + kms)
            elif isinstance(action, VerifyAction):
                cells.append(format_timeout(action.timeout))
            cells.append(reason_of(action))
        rows.append(_row(cells))
    return _Section(title, rows, singular, plural, header=_header(columns))


def _kept_section(kept: Sequence[Kept], regioned: bool) -> _Section:
    columns = [*(["Region"] if regioned else []), "Resource", "Recovery point"]
    columns += ["Snapshots", "Created", "Kept by", "Verified"]
    rows = [
        _row(
            [
                *([k.region] if regioned else []),
                named(k.resource_id, k.resource_name),
                k.recovery_point,
                ids(k.snapshot_ids),
                iso_utc(k.created_at),
                ", ".join(k.kept_by),
                "" if k.verified is None else verified_mark(k.verified),
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
                named(s.resource_id, s.resource_name),
                s.recovery_point,
                ids(s.snapshot_ids),
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


def _held_section(group: HeldGroup, regioned: bool) -> _Section:
    columns = [*(["Region"] if regioned else []), "Resource", "Recovery point"]
    columns += ["Snapshots", "Created", "Reason"]
    rows = [
        _row(
            [
                *([h.action.region] if regioned else []),
                named(h.action.resource_id, h.action.resource_name),
                h.action.recovery_point,
                ids(h.action.snapshot_ids),
                iso_utc(h.action.created_at),
                h.action.reason,
            ]
        )
        for h in group.entries
    ]
    return _Section(
        f"⛔ Held by safety in {md_escape(group.region)}",
        rows,
        "held deletion",
        "held deletions",
        header=_header(columns),
    )


def _held_lead(plan: Plan) -> str:
    """The line no reviewer may miss: what the breaker held, and what lifts it."""
    policies = sorted({h.action.policy for h in plan.held_deletes})
    named_policies = ", ".join(f"`{md_escape(p)}`" for p in policies)
    return (
        f"⛔ **safety held {count(len(plan.held_deletes), 'deletion')}** of {named_policies}: "
        "none of them is made. Review them below; if they are right, a person makes them "
        "with `smartvault apply --allow-deletes POLICY`.\n\n"
    )


def _markdown_blocks(plan: Plan) -> tuple[list[_Block], list[_Block]]:
    """The document as (head, body): the head is never cut, the body's sections may be."""
    counts = plan.summary
    regions = ", ".join(md_escape(r) for r in plan.regions) or "none"
    head: list[_Block] = [
        "## SmartVault plan\n\n",
        f"Account {md_escape(plan.account_id)}, evaluated at {iso_utc(plan.at)} "
        f"in {regions} (generated {iso_utc(plan.generated_at)}).\n\n",
        _header([*(_ACTION_SECTIONS[t][0] for t in ACTION_TYPES), "Kept", "Skipped"], numbers=True)
        + "| "
        + " | ".join(f"{counts[k]:,}" for k in (*ACTION_TYPES, "kept", "skipped"))
        + " |\n\n",
        f"**{md_escape(summary_line(plan))}**\n\n",
    ]
    if plan.held_deletes:
        head.append(_held_lead(plan))
    if plan.allow_deletes:
        lifted = ", ".join(f"`{md_escape(p)}`" for p in plan.allow_deletes)
        head.append(
            f"🔓 safety lifted by `--allow-deletes` for {lifted}: their deletions are planned "
            "whatever their number.\n\n"
        )
    body: list[_Block] = []
    if plan.warnings:
        rows = []
        for warning in plan.warnings:
            context = warning_context(warning)
            suffix = f" ({md_escape(context)})" if context else ""
            rows.append(f"- {_md_paragraph(warning.message)}{suffix}\n")
        body.append(_Section("⚠️ Warnings", rows, "warning", "warnings"))

    regioned = multi_region(plan)
    for name in policy_order(plan):
        actions = [a for a in plan.actions if a.policy == name]
        kept = [k for k in plan.kept if k.policy == name]
        skipped = [s for s in plan.skipped if s.policy == name]
        held = held_groups(plan, name)
        detail = policy_detail(plan, name)
        body.append(f"### Policy {md_escape(name)}\n\n")
        if detail:
            body.append(f"{_md_paragraph(detail)}\n\n")
        if not (actions or kept or skipped or held):
            body.append("Nothing to do.\n\n")
        for held_group in held:
            body.append(f"{_md_paragraph(held_header(held_group, name))}\n\n")
            body.append(_held_section(held_group, regioned))
        for group in rule_groups(actions, kept, skipped):
            body.append(f"#### {md_escape(rule_title(group.rule)).capitalize()}\n\n")
            for kind in ACTION_TYPES:
                of_kind = [a for a in group.actions if a.type == kind]
                if of_kind:
                    body.append(_action_section(kind, of_kind, regioned))
            if group.skipped:
                body.append(_skipped_section(group.skipped, regioned))
            if group.kept:
                body.append(_kept_section(group.kept, regioned))

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
                    ids(o.snapshot_ids),
                    iso_utc(o.created_at),
                ]
            )
            for o in plan.orphans
        ]
        body.append(_Section("Orphans", rows, "orphan", "orphans", header=_header(columns)))
    return head, body


def _changes_section(title: str, changes: Sequence[ComparedAction]) -> _Section:
    columns = ["Type", "Region", "Policy", "Resource", "Recovery point", "Reason"]
    rows = []
    for change in changes:
        action = change.action
        held = f" (held by safety: {change.held_by})" if change.held_by is not None else ""
        rows.append(
            _row(
                [
                    action.type,
                    action.region,
                    action.policy,
                    named(action.resource_id, action.resource_name),
                    action.recovery_point,
                    action.reason + held,
                ]
            )
        )
    return _Section(title, rows, "action", "actions", header=_header(columns))


def _comparison_blocks(comparison: Comparison) -> tuple[list[_Block], list[_Block]]:
    """``plan --compare``: the lead sentence (never cut), then what it is made of."""
    ref = md_escape(comparison.ref)
    lead_line = lead(comparison)
    head: list[_Block] = [
        f"## SmartVault: this change against {ref}\n\n",
        f"**{_md_paragraph(lead_line[0].upper() + lead_line[1:])}.**\n\n",
    ]
    facts = [f"- {_md_paragraph(line)}\n" for line in impact(comparison)]
    sections: list[_Block] = [_Section("What it does", facts, "line", "lines")]
    if comparison.added:
        sections.append(_changes_section("Only in this plan", comparison.added))
    if comparison.removed:
        sections.append(_changes_section(f"Only in {ref}'s plan", comparison.removed))
    sections.append(
        f"Both plans read the account once, at the same time; {ref} is commit "
        f"{md_escape(comparison.commit[:12])}.\n\n"
    )
    return head, sections


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


def render_markdown(
    plan: Plan, *, limit: int = GITHUB_COMMENT_LIMIT, comparison: Comparison | None = None
) -> str:
    """The plan as a pull-request comment, never longer than ``limit`` characters.

    A title and summary table first, then warnings, then one section per policy
    (its file, slot and counts) with a sub-heading per retention rule and under it a
    table per action type (reasons included), skipped and kept recovery points, each
    naming the resource with its ``Name``; tables over 20 rows, and every kept list,
    fold into ``<details>``.
    User-controlled text is escaped. When everything would not fit, rows are left
    out from the end of the longest sections, each saying how many are not shown.

    With ``comparison`` (``plan --compare REF``) the comment leads with what the policy
    change does: a bold sentence, the facts it is made of, and the actions only one of
    the two plans has; the plan follows.
    """
    head, body = _markdown_blocks(plan)
    blocks = [*head, *body]
    if comparison is not None:  # the change leads: what a reviewer reads before merging
        lead_blocks, compared = _comparison_blocks(comparison)
        blocks = [*lead_blocks, *compared, *blocks]
        head = [*lead_blocks, *head]  # never cut
    cap = _largest_fitting_cap(blocks, limit)
    if cap is not None:
        return _assemble(blocks, cap)
    # Not even the section titles fit: the summary alone, then as much as fits.
    text = _assemble(head, 0) + f"\nThe plan is too large to show here; {FULL_PLAN_HINT}.\n"
    return text[:limit]
