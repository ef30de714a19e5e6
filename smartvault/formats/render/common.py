"""What the text and Markdown renderings share: the order of policies and how things are named.

Pure functions of the plan: no terminal, no clock, no environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from datetime import datetime

from smartvault.core.model import ACTION_TYPES
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.times import iso_utc


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 recovery point``, ``1,024 recovery points``: a number and its noun."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def policy_order(plan: Plan) -> list[str]:
    """Loaded policies in their order, then any other policy the plan mentions."""
    names = [p.name for p in plan.policies]
    seen = set(names)
    for item in (*plan.actions, *plan.kept, *plan.skipped):
        if item.policy not in seen:
            seen.add(item.policy)
            names.append(item.policy)
    return names


def policy_detail(plan: Plan, name: str) -> str:
    """``policies/prod.yaml, slot 2026-11-28T02:00:00Z`` (or ``disabled``); '' if not loaded."""
    for p in plan.policies:
        if p.name == name:
            slot = "disabled" if p.slot is None else f"slot {iso_utc(p.slot)}"
            return f"{p.file}, {slot}"
    return ""


def multi_region(plan: Plan) -> bool:
    """True when the plan touches more than one region: then each line names its region."""
    regions = set(plan.regions)
    for item in (*plan.actions, *plan.kept, *plan.skipped, *plan.orphans):
        regions.add(item.region)
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
    """``Plan: 3 to create, …; 14 kept, 1 skipped.`` or ``No changes. 14 recovery points kept.``"""
    counts = plan.summary
    if not plan.has_changes:
        line = f"No changes. {count(counts['kept'], 'recovery point')} kept"
        if counts["skipped"]:
            line += f", {counts['skipped']:,} skipped"
        return line + "."
    todo = ", ".join(f"{counts[t]:,} to {t}" for t in ACTION_TYPES)
    return f"Plan: {todo}; {counts['kept']:,} kept, {counts['skipped']:,} skipped."
