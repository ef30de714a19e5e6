"""What the text and Markdown renderings share: the order of policies and how things are named.

Pure functions of the plan: no terminal, no clock, no environment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

from smartvault.core.model import ACTION_TYPES
from smartvault.core.model import Action
from smartvault.core.model import DeleteAction
from smartvault.core.model import HeldDelete
from smartvault.core.model import Kept
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.model import PolicySlot
from smartvault.core.model import Skipped
from smartvault.core.times import iso_utc


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 recovery point``, ``1,024 recovery points``: a number and its noun."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def policy_order(plan: Plan) -> list[str]:
    """Loaded policies in their order, then any other policy the plan mentions."""
    names = [p.name for p in plan.policies]
    seen = set(names)
    for item in (*plan.actions, *(h.action for h in plan.held_deletes), *plan.kept, *plan.skipped):
        if item.policy not in seen:
            seen.add(item.policy)
            names.append(item.policy)
    return names


def policy_detail(plan: Plan, name: str) -> str:
    """``policies/prod.yaml, slot 2026-11-28T02:00:00Z; 12 selected, 1 excluded`` (or
    ``disabled``; with several regions, the counts of each); '' if not loaded."""
    for p in plan.policies:
        if p.name == name:
            slot = "disabled" if p.slot is None else f"slot {iso_utc(p.slot)}"
            counts = selection(p)
            return f"{p.file}, {slot}" + (f"; {counts}" if counts else "")
    return ""


def selection(policy: PolicySlot) -> str:
    """``12 selected, 1 excluded``, or per region: ``us-east-1 12 selected, 1 excluded;
    us-west-2 3 selected, 0 excluded``; '' when the policy covers no region read."""
    if len(policy.regions) == 1:
        (only,) = policy.regions
        return f"{only.selected:,} selected, {only.excluded:,} excluded"
    return "; ".join(
        f"{r.region} {r.selected:,} selected, {r.excluded:,} excluded" for r in policy.regions
    )


def named(resource_id: str, name: str | None) -> str:
    """``i-0abc (web-1)``, or the id alone; a name's control characters are shown as ``?``."""
    if not name:
        return resource_id
    return f"{resource_id} ({''.join(c if c.isprintable() else '?' for c in name)})"


@dataclass
class RuleGroup:
    """A policy's lines that one retention rule chose (``rule`` None: no rule applies)."""

    rule: str | None
    actions: list[Action] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


_RULE = re.compile(
    r"(default|retention|retention_by_tag\[(\d+)\]|copies\[(\d+)\])(\+retention_tag)?"
)


def _rule_order(rule: str | None) -> tuple[int, int, int, str]:
    """default, retention, retention_by_tag[0], [1], …, copies[0], …, anything else, none."""
    if rule is None:
        return (5, 0, 0, "")
    match = _RULE.fullmatch(rule)
    if match is None:
        return (4, 0, 0, rule)
    base, by_tag, copy, tag = match.groups()
    rank = {"default": 0, "retention": 1}.get(base, 2 if by_tag is not None else 3)
    return (rank, int(by_tag or copy or 0), 1 if tag else 0, "")


def rule_groups(
    actions: Sequence[Action], kept: Sequence[Kept], skipped: Sequence[Skipped]
) -> list[RuleGroup]:
    """A policy's lines grouped by the retention rule that chose them, in rule order."""
    groups: dict[str | None, RuleGroup] = {}
    for action in actions:
        groups.setdefault(action.retention, RuleGroup(action.retention)).actions.append(action)
    for k in kept:
        groups.setdefault(k.retention, RuleGroup(k.retention)).kept.append(k)
    for s in skipped:
        groups.setdefault(s.retention, RuleGroup(s.retention)).skipped.append(s)
    return [groups[rule] for rule in sorted(groups, key=_rule_order)]


def rule_title(rule: str | None) -> str:
    """``retention rule retention_by_tag[0]``, or ``no retention rule`` (all kept)."""
    return "no retention rule" if rule is None else f"retention rule {rule}"


def multi_region(plan: Plan) -> bool:
    """True when the plan touches more than one region: then each line names its region."""
    regions = set(plan.regions)
    for item in (*plan.actions, *plan.kept, *plan.skipped, *plan.orphans):
        regions.add(item.region)
    regions.update(h.action.region for h in plan.held_deletes)
    return len(regions) > 1


def warning_context(warning: PlanWarning) -> str:
    """``policy prod-nightly, i-0abc, us-east-1``: what a warning is about, '' if nothing."""
    parts = []
    if warning.policy is not None:
        parts.append(f"policy {warning.policy}")
    if warning.resource_id is not None:
        parts.append(warning.resource_id)
    if warning.region is not None:
        parts.append(warning.region)
    return ", ".join(parts)


def verified_mark(verified: datetime) -> str:
    """``verified 2026-11-28``: the UTC day a restore test last proved a recovery point."""
    return f"verified {verified.astimezone(UTC):%Y-%m-%d}"


def ids(values: Sequence[str]) -> str:
    """``snap-1, snap-2``, or ``none``."""
    return ", ".join(values) or "none"


def summary_line(plan: Plan) -> str:
    """``Plan: 3 to create, …; 14 kept, 1 skipped.`` or ``No changes. 14 recovery points kept.``
    (either followed by ``9 deletions held by safety.`` when the breaker held some)."""
    counts = plan.summary
    held = f" {count(len(plan.held_deletes), 'deletion')} held by safety." * bool(plan.held_deletes)
    if not plan.has_changes:
        line = f"No changes. {count(counts['kept'], 'recovery point')} kept"
        if counts["skipped"]:
            line += f", {counts['skipped']:,} skipped"
        return line + "." + held
    todo = ", ".join(f"{counts[t]:,} to {t}" for t in ACTION_TYPES)
    return f"Plan: {todo}; {counts['kept']:,} kept, {counts['skipped']:,} skipped." + held


@dataclass
class HeldGroup:
    """One policy's deletions in one region that ``safety`` held, and the rule that did."""

    region: str
    #: what the plan says held them: the worst lineage's share, else the cap
    held_by: str
    entries: list[HeldDelete] = field(default_factory=list)


def held_groups(plan: Plan, policy: str) -> list[HeldGroup]:
    """``policy``'s held deletions, by region (in region order)."""
    groups: dict[str, HeldGroup] = {}
    for held in plan.held_deletes:
        if held.action.policy != policy:
            continue
        region = held.action.region
        group = groups.setdefault(region, HeldGroup(region, ""))
        group.entries.append(held)
    for group in groups.values():
        # The rule the planner's warning names: a lineage's share before the cap.
        rules = [h.held_by for h in group.entries]
        shares = [r for r in rules if r.rule == "max_delete_fraction"]
        group.held_by = str(
            max(shares, key=lambda r: r.deletes / (r.completed or 1), default=rules[0])
        )
    return [groups[region] for region in sorted(groups)]


def held_header(group: HeldGroup, policy: str) -> str:
    """``held by safety in us-east-1 (max_delete_fraction 0.5: …): none of these 9
    deletions is made; a person makes them with `smartvault apply --allow-deletes P```."""
    return (
        f"held by safety in {group.region} ({group.held_by}): none of these "
        f"{count(len(group.entries), 'deletion')} is made; if they are right, a person makes "
        f"them with `smartvault apply --allow-deletes {policy}`"
    )


def reason_of(action: Action) -> str:
    """The action's reason, and for a deletion ``--allow-deletes`` let through, the rule
    that would have held it."""
    if isinstance(action, DeleteAction) and action.safety_lifted is not None:
        return f"{action.reason}; safety lifted by --allow-deletes ({action.safety_lifted})"
    return action.reason
