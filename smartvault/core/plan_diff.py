"""What differs between the actions of a saved plan and a fresh one: ``apply --plan`` staleness.

Pure: two :class:`~smartvault.core.model.Plan` values in, lines a person can read out. The
comparison needs no JSON file: a saved plan is read by :mod:`smartvault.formats.plan_json`
first. Tag maps are shown as compact JSON text with sorted keys (the standard library's
``json``), the same way the plan JSON writes them, so a line reads like the saved file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from datetime import timedelta

from smartvault.core.model import Action
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import Plan
from smartvault.core.model import format_timeout
from smartvault.core.times import format_time

Identity = tuple[str, str, str, str, str, str | None]

_PRESENT = {
    "create": "creates",
    "delete": "deletes",
    "archive": "archives",
    "copy": "copies",
    "verify": "verifies",
}
#: fields that say which action it is, compared through the identity instead
_IDENTITY_FIELDS = frozenset(
    {"type", "region", "policy", "resource_id", "recovery_point", "target_region"}
)
#: fields that only describe: renaming an instance between plan and apply changes nothing
#: that applying does (its ``retention`` is compared: it says why the action is what it is)
_DESCRIPTIVE_FIELDS = frozenset({"resource_name"})


def identity(action: Action) -> Identity:
    """Which action it is: (type, region, policy, resource id, recovery point, target region).

    Two plans' actions with the same identity are the same action, whatever else differs;
    ``apply --plan`` and ``plan --compare`` match actions by it.
    """
    target = action.target_region if isinstance(action, CopyAction) else None
    return (
        action.type,
        action.region,
        action.policy,
        action.resource_id,
        action.recovery_point,
        target,
    )


def _what(action: Action) -> str:
    """``rp (snap-1, snap-2) of i-0abc in us-east-1`` — enough to find it in the account."""
    if isinstance(action, CreateAction):
        covers = ", ".join(action.volume_ids) or "no volumes"
        what = f"{action.recovery_point} ({covers}) of {action.resource_id}"
    else:
        snaps = ", ".join(action.snapshot_ids) or "no snapshots"
        what = f"{action.recovery_point} ({snaps}) of {action.resource_id}"
    where = f"in {action.region}"
    if isinstance(action, CopyAction):
        where = f"from {action.region} to {action.target_region}"
    return f"{what} {where}"


def _show(value: object) -> str:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, timedelta):
        return format_timeout(value)
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "nothing"
    if isinstance(value, Mapping):
        return json.dumps({key: value[key] for key in sorted(value)}, ensure_ascii=False)
    if value is None:
        return "none"
    return repr(value) if isinstance(value, str) else str(value)


def _phrase(name: str, new: str, old: str) -> str:
    if name in ("volume_ids", "snapshot_ids"):
        return f"now covers {new} (was {old})"
    return f"{name} now {new} (was {old})"


def _field_changes(saved: Action, fresh: Action) -> list[str]:
    changes = []
    for f in fields(saved):
        if f.name in _IDENTITY_FIELDS or f.name in _DESCRIPTIVE_FIELDS:
            continue
        old, new = getattr(saved, f.name), getattr(fresh, f.name)
        if old != new:
            changes.append(_phrase(f.name, _show(new), _show(old)))
    return changes


def compare_actions(saved: Plan, fresh: Plan) -> list[str]:
    """What differs between the actions of a saved plan and a fresh plan at the same ``at``.

    Actions are matched by (type, region, policy, resource id, recovery point, target
    region); every other field but ``resource_name`` is compared. Lines start with
    ``+`` (only in the fresh plan), ``-`` (only in the saved plan) or ``~`` (both, but
    different). An empty list means the saved plan still does exactly what planning again would do.
    """
    # indices, not objects: equal actions (even one object twice) are matched one to one
    unmatched: dict[Identity, list[int]] = {}
    for index, action in enumerate(fresh.actions):
        unmatched.setdefault(identity(action), []).append(index)

    lines: list[str] = []
    for action in saved.actions:
        candidates = unmatched.get(identity(action))
        if not candidates:
            lines.append(f"- no longer {_PRESENT[action.type]} {_what(action)} (gone or changed)")
            continue
        match = fresh.actions[candidates.pop(0)]
        target = f" to {action.target_region}" if isinstance(action, CopyAction) else ""
        lines.extend(
            f"~ {action.type} {action.recovery_point} for {action.resource_id}{target} {change}"
            for change in _field_changes(action, match)
        )
    left = sorted(index for indices in unmatched.values() for index in indices)
    lines.extend(
        f"+ would now also {fresh.actions[i].type} {_what(fresh.actions[i])}: "
        f"{fresh.actions[i].reason}"
        for i in left
    )
    return lines
