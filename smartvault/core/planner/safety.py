"""The deletion circuit breaker: ``safety`` holds back a run that would delete too much.

Pure. Retention decides each recovery point on its own; this looks at what one run
would delete of each policy in each region, all together. A retention cut from 30d to
3d, a typo in a selector or a clock that jumped a year all look the same from here: far
more deletions than a steady run makes (a daily policy that keeps 7 days deletes one
point of eight). When a policy's planned deletions in a region exceed

- ``max_delete_fraction`` of any one lineage's completed recovery points (copies in a
  target region are lineages of that region), or
- ``max_deletes`` recovery points in all,

**none** of that policy's deletions in that region are planned: they become
:class:`~smartvault.core.model.HeldDelete` entries naming the rule and its numbers, and
the plan warns. Nothing else is held: creates, copies, archives and restore tests go on,
and so do the deletions of failed recovery points (a failed point is no backup, and its
slot is taken again in the same run), which count toward neither rule.

A person lifts the guard for one run and one policy (``--allow-deletes POLICY``): the
deletions are planned, each carrying the rule that would have held it
(``safety_lifted``), which its audit record keeps. The Lambda never lifts it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction

from smartvault.core.model import Action
from smartvault.core.model import DeleteAction
from smartvault.core.model import HeldBy
from smartvault.core.model import HeldDelete
from smartvault.core.model import Policy
from smartvault.core.planner.lineages import RecoveryPoint
from smartvault.core.planner.warnings import Warnings

#: (region, policy, resource id): a lineage, as a delete action names it (a copy lineage
#: lives in its target region, where no original of the same resource can be)
_LineageKey = tuple[str, str, str]


def guard(
    actions: Sequence[Action],
    lineages: Mapping[tuple[str, str, str, bool], list[RecoveryPoint]],
    policies: Mapping[str, Policy],
    allow_deletes: Collection[str],
    warnings: Warnings,
) -> tuple[list[Action], list[HeldDelete]]:
    """``actions`` with the deletions ``safety`` holds taken out, and those deletions.

    ``lineages`` are every lineage's recovery points (the planner's grouping): they give
    each lineage's completed points and say which deletions are of failed points.
    ``allow_deletes`` names the policies whose guard a person lifted for this plan.
    """
    completed: dict[_LineageKey, int] = defaultdict(int)
    failed: set[tuple[str, str, str, str]] = set()
    for (region, name, resource_id, _), points in lineages.items():
        for point in points:
            if point.failed:
                failed.add((region, name, resource_id, point.id))
            elif not point.pending and not point.held:  # a hold counts toward nothing
                completed[(region, name, resource_id)] += 1

    # Deletions of completed points, by (policy, region): what the rules count.
    counted: dict[tuple[str, str], list[DeleteAction]] = defaultdict(list)
    for action in actions:
        if isinstance(action, DeleteAction) and (
            (action.region, action.policy, action.resource_id, action.recovery_point) not in failed
        ):
            counted[(action.policy, action.region)].append(action)

    verdicts: dict[int, HeldBy] = {}  # id(action) -> the rule that holds it
    lifted: set[int] = set()
    for (policy_name, region), deletes in sorted(counted.items()):
        policy = policies.get(policy_name)
        if policy is None:  # pragma: no cover - the planner deletes only for loaded policies
            continue
        rules = _tripped(policy, region, deletes, completed)
        if rules is None:
            continue
        by_lineage, overall = rules
        first = HeldBy.headline([*by_lineage.values(), *([overall] if overall else [])])
        for action in deletes:
            # Each entry names its own lineage's share when that tripped, else the cap,
            # else the lineage that held the policy's deletions in the region.
            verdicts[id(action)] = by_lineage.get(action.resource_id) or overall or first
        if policy_name in allow_deletes:
            lifted.update(id(a) for a in deletes)
            warnings.add(
                f"safety lifted by --allow-deletes: {len(deletes)} deletions planned although "
                f"{first}",
                policy=policy_name,
                region=region,
            )
        else:
            warnings.add(
                f"safety held {len(deletes)} deletions, none is planned: {first}. Review them "
                "under held_deletes; if they are right, a person applies them with "
                f"`smartvault apply --allow-deletes {policy_name}`",
                policy=policy_name,
                region=region,
            )

    kept: list[Action] = []
    held: list[HeldDelete] = []
    for action in actions:
        held_by = verdicts.get(id(action))
        if held_by is None:
            kept.append(action)
        elif id(action) in lifted:
            assert isinstance(action, DeleteAction)
            kept.append(replace(action, safety_lifted=held_by))
        else:
            assert isinstance(action, DeleteAction)
            held.append(HeldDelete(action, held_by))
    return kept, held


def _tripped(
    policy: Policy,
    region: str,
    deletes: Sequence[DeleteAction],
    completed: Mapping[_LineageKey, int],
) -> tuple[dict[str, HeldBy], HeldBy | None] | None:
    """The lineages whose share is too large and the policy-wide cap when it is passed,
    or None when neither rule trips."""
    safety = policy.safety
    per_lineage: dict[str, int] = defaultdict(int)
    for action in deletes:
        per_lineage[action.resource_id] += 1
    # Exact: 0.3 of 10 is 3, never 3.0000000000000004.
    share = Fraction(str(safety.max_delete_fraction))
    by_lineage = {
        resource_id: HeldBy(
            "max_delete_fraction",
            safety.max_delete_fraction,
            count,
            completed[(region, policy.name, resource_id)],
            resource_id,
        )
        for resource_id, count in per_lineage.items()
        if count > share * completed[(region, policy.name, resource_id)]
    }
    cap = safety.max_deletes
    overall = (
        HeldBy("max_deletes", cap, len(deletes)) if cap is not None and len(deletes) > cap else None
    )
    if not by_lineage and overall is None:
        return None
    return by_lineage, overall
