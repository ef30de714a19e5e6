"""The plan for a terminal: one section per policy, a line per action, ANSI colour on request.

A pure function of the plan and its options: whether to colour is a parameter, and
nothing here looks at the terminal, the clock or the environment.
"""

from __future__ import annotations

from collections.abc import Callable

from smartvault.core.compare import ComparedAction
from smartvault.core.compare import Comparison
from smartvault.core.compare import impact
from smartvault.core.compare import lead
from smartvault.core.model import Action
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import Plan
from smartvault.core.model import VerifyAction
from smartvault.core.model import format_timeout
from smartvault.core.times import iso_utc
from smartvault.formats.render.common import RuleGroup
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

_SIGNS = {"create": "+", "delete": "-", "archive": "~", "copy": "~", "verify": "?"}
_COLOURS = {"create": "32", "delete": "31", "archive": "33", "copy": "33", "verify": "36"}
_YELLOW = "33"
_BOLD = "1"


def _action_target(action: Action) -> str:
    """What the action works on: volumes to snapshot, or snapshots (and where a copy goes)."""
    if isinstance(action, CreateAction):
        return ids(action.volume_ids)
    text = f"{ids(action.snapshot_ids)} ({iso_utc(action.created_at)})"
    if isinstance(action, CopyAction):
        text += f" → {action.target_region}"
        if action.kms_key_id:
            text += f" (KMS {action.kms_key_id})"
    elif isinstance(action, VerifyAction):
        text += f", timeout {format_timeout(action.timeout)}"
    return text


def _group_lines(
    group: RuleGroup,
    subject: Callable[[str, str, str | None, str], str],
    paint: Callable[..., str],
    *,
    verbose: bool,
) -> list[str]:
    """The lines of one retention rule's group, indented under its header."""
    lines = []
    for action in group.actions:
        where = subject(
            action.region, action.resource_id, action.resource_name, action.recovery_point
        )
        line = (
            f"    {_SIGNS[action.type]} {action.type:<7} {where}  "
            f"{_action_target(action)} — {reason_of(action)}"
        )
        lines.append(paint(line, _COLOURS[action.type]))
    if group.kept and verbose:
        lines.extend(
            f"    = keep    {subject(k.region, k.resource_id, k.resource_name, k.recovery_point)}  "
            f"{ids(k.snapshot_ids)} ({iso_utc(k.created_at)}) — kept by {', '.join(k.kept_by)}"
            + (f"; {verified_mark(k.verified)}" if k.verified is not None else "")
            for k in group.kept
        )
    elif group.kept:
        verified = sum(1 for k in group.kept if k.verified is not None)
        of_them = f", {verified:,} verified" if verified else ""
        lines.append(f"    = {count(len(group.kept), 'recovery point')} kept{of_them}")
    lines.extend(
        f"    · skip    {subject(s.region, s.resource_id, s.resource_name, s.recovery_point)}  "
        f"{ids(s.snapshot_ids)} — {s.reason}"
        for s in group.skipped
    )
    return lines


def _change_line(sign: str, change: ComparedAction) -> str:
    action = change.action
    held = f" [held by safety: {change.held_by}]" if change.held_by is not None else ""
    return (
        f"    {sign} {action.type:<7} {action.region}  {action.policy}  "
        f"{named(action.resource_id, action.resource_name)}  {action.recovery_point} — "
        f"{action.reason}{held}"
    )


def comparison_lines(comparison: Comparison, paint: Callable[..., str]) -> list[str]:
    """The "Compared with REF" block: the lead sentence, its facts, the actions that differ."""
    ref = comparison.ref
    lines = [
        paint(f"Compared with {ref} ({comparison.commit[:12]}):", _BOLD),
        paint(f"  {lead(comparison)}", _BOLD),
        *(f"  - {line}" for line in impact(comparison)),
    ]
    if comparison.added:
        lines.append("  Only in this plan:")
        lines.extend(_change_line("+", c) for c in comparison.added)
    if comparison.removed:
        lines.append(f"  Only in {ref}'s plan:")
        lines.extend(_change_line("-", c) for c in comparison.removed)
    return lines


def render_text(
    plan: Plan,
    *,
    color: bool = False,
    verbose: bool = False,
    comparison: Comparison | None = None,
) -> str:
    """The plan for a terminal; ANSI colour only when ``color`` is true.

    A header, the warnings (``!``), then one section per policy (its file, slot and
    counts of selected and excluded resources) whose lines are grouped under an indented
    header per retention rule: one line per action (``+`` create, ``-`` delete, ``~``
    archive or copy, ``?`` verify: a restore test), its kept recovery points (a count,
    and how many are verified; each one with the rules that keep it and the day it was
    verified when ``verbose``) and skipped ones, each naming the resource with its
    ``Name`` (``i-0abc (web-1)``), then the deletions ``safety`` held (``✗``) under the rule
    that held them; then orphans, then a closing summary line; with ``comparison``
    (``plan --compare REF``), a "Compared with REF" block after it.
    """

    def paint(text: str, *codes: str) -> str:
        if not color or not codes:
            return text
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"

    regioned = multi_region(plan)

    def subject(region: str, resource_id: str, name: str | None, recovery_point: str) -> str:
        where = f"{region}  " if regioned else ""
        return f"{where}{named(resource_id, name)}  {recovery_point}"

    lines = [
        paint(f"SmartVault plan for account {plan.account_id} at {iso_utc(plan.at)}", _BOLD),
        f"Regions: {', '.join(plan.regions) or 'none'}; generated {iso_utc(plan.generated_at)}",
    ]
    if plan.warnings:
        lines.append("")
        for warning in plan.warnings:
            context = warning_context(warning)
            text = f"! {warning.message}" + (f" ({context})" if context else "")
            lines.append(paint(text, _BOLD, _YELLOW))

    for name in policy_order(plan):
        actions = [a for a in plan.actions if a.policy == name]
        kept = [k for k in plan.kept if k.policy == name]
        skipped = [s for s in plan.skipped if s.policy == name]
        held = held_groups(plan, name)
        detail = policy_detail(plan, name)
        lines.append("")
        lines.append(paint(name, _BOLD) + (f" ({detail})" if detail else ""))
        if not (actions or kept or skipped or held):
            lines.append("  nothing to do")
            continue
        for group in rule_groups(actions, kept, skipped):
            lines.append(f"  {rule_title(group.rule)}")
            lines.extend(_group_lines(group, subject, paint, verbose=verbose))
        for held_group in held:
            lines.append(paint(f"  {held_header(held_group, name)}", _BOLD, _YELLOW))
            for entry in held_group.entries:
                a = entry.action
                where = subject(a.region, a.resource_id, a.resource_name, a.recovery_point)
                lines.append(
                    paint(f"    ✗ held    {where}  {_action_target(a)} — {a.reason}", _YELLOW)
                )

    if plan.orphans:
        lines.append("")
        lines.append(paint("Orphans (their policy is in no loaded file; never deleted):", _BOLD))
        lines.extend(
            f"  {o.policy}  {o.region}  {o.recovery_point}  "
            f"{ids(o.snapshot_ids)} ({iso_utc(o.created_at)})"
            for o in plan.orphans
        )

    lines.append("")
    lines.append(paint(summary_line(plan), _BOLD))
    if comparison is not None:  # after the plan: the last thing on the screen
        lines.append("")
        lines.extend(comparison_lines(comparison, paint))
    return "\n".join(lines) + "\n"
