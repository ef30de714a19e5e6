"""Compile policies and an inventory into a plan.

Pure: ``plan(policies, inventory, at)`` reads nothing but its arguments, and equal
arguments give an equal :class:`~smartvault.core.model.Plan`, whatever the order of the
inventory's lists. See docs/retention.md for the rules as operators read them.

How it works, in one pass over the snapshots (O(n log n)):

1. Managed snapshots are grouped into recovery points by region, policy,
   recovery point tag and copy-or-not, and recovery points into lineages by
   region, policy, resource and copy-or-not. A managed snapshot whose
   recovery-point tag does not agree with its own tags is malformed
   (:func:`~smartvault.core.model.read_recovery_point`): it is in no recovery point,
   so it never counts and is never acted on; the plan warns about it (:mod:`.lineages`).
2. Each enabled policy selects its resources (:mod:`.selection`); a selected resource
   with no pending or completed recovery point at or after the policy's slot is due
   (:mod:`.creates`). Every policy's selected and excluded resources are counted per
   region, and an enabled one that selects nothing in a region is a warning.
3. Each lineage is given its retention; completed points no rule keeps are
   deleted, failed ones too, unless an AMI uses them (:mod:`.decisions`). Archives and
   copies (:mod:`.copies`) follow, then a restore test of the newest completed point
   when the policy's ``verify`` says one is due (:mod:`.verify`). Every entry of a
   lineage names its resource (``Name`` tag: current tags, else those recorded at
   creation) and the retention rule it follows.
4. The deletion circuit breaker (:mod:`.safety`) looks at each policy's deletions in each
   region together and holds them all back when they are too many.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from smartvault.core.model import Action
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import HeldDelete
from smartvault.core.model import Instance
from smartvault.core.model import Inventory
from smartvault.core.model import Kept
from smartvault.core.model import Orphan
from smartvault.core.model import Plan
from smartvault.core.model import PolicySet
from smartvault.core.model import PolicySlot
from smartvault.core.model import Skipped
from smartvault.core.model import Volume
from smartvault.core.planner.copies import copies
from smartvault.core.planner.creates import create_if_due
from smartvault.core.planner.decisions import KEEP_ALL
from smartvault.core.planner.decisions import KEPT_DISABLED
from smartvault.core.planner.decisions import KEPT_NO_COPY_RULE
from smartvault.core.planner.decisions import Lineage
from smartvault.core.planner.decisions import chosen_retention
from smartvault.core.planner.decisions import copy_rule_name
from smartvault.core.planner.decisions import decide
from smartvault.core.planner.decisions import images_by_snapshot
from smartvault.core.planner.decisions import keep
from smartvault.core.planner.decisions import recorded_tags
from smartvault.core.planner.decisions import resource_name
from smartvault.core.planner.decisions import warn_if_stale
from smartvault.core.planner.lineages import RecoveryPoint
from smartvault.core.planner.lineages import group_lineages
from smartvault.core.planner.lineages import warn_malformed
from smartvault.core.planner.safety import guard
from smartvault.core.planner.selection import policy_state
from smartvault.core.planner.selection import select
from smartvault.core.planner.selection import warn_unread_regions
from smartvault.core.planner.verify import verification
from smartvault.core.planner.warnings import Warnings
from smartvault.core.tags import TAG_RESOURCE_TAGS


def plan(
    policies: PolicySet,
    inventory: Inventory,
    at: datetime,
    generated_at: datetime | None = None,
    allow_deletes: Collection[str] = (),
) -> Plan:
    """The plan for ``policies`` over ``inventory`` at ``at`` (aware): see
    :func:`plan_selecting`, which also says what each policy selected."""
    return plan_selecting(policies, inventory, at, generated_at, allow_deletes)[0]


def plan_selecting(
    policies: PolicySet,
    inventory: Inventory,
    at: datetime,
    generated_at: datetime | None = None,
    allow_deletes: Collection[str] = (),
) -> tuple[Plan, frozenset[tuple[str, str, str]]]:
    """The plan for ``policies`` over ``inventory`` at ``at`` (aware), and the
    ``(region, policy, resource id)`` of every resource an enabled policy selected (what
    the run's metrics measure the age of recovery points over).

    ``generated_at`` is when the caller read the account (the core never reads the
    clock); it defaults to ``at``. ``allow_deletes`` names the policies whose deletion
    circuit breaker a person lifts for this plan (:mod:`.safety`); names of policies not
    loaded are ignored here (the caller refuses them).

    A large plan builds several objects per recovery point and frees almost none until
    it returns: callers that plan large inventories pause the cyclic garbage collector
    around this call (see ``engine.collector_paused``); the core leaves the interpreter
    as it is.
    """
    warnings = Warnings()
    states = {p.name: policy_state(p, at, warnings) for p in policies.policies}
    regions = set(inventory.regions)
    warn_unread_regions(policies, inventory.regions, warnings)

    kinds = {p.name: p.resource for p in policies.policies}
    lineages, copied, malformed = group_lineages(inventory.snapshots, kinds)
    warn_malformed(malformed, warnings)
    instances = {(i.region, i.instance_id): i for i in inventory.instances}
    volumes = {(v.region, v.volume_id): v for v in inventory.volumes}
    in_use_by = images_by_snapshot(inventory)

    actions: list[Action] = []
    selection = select(states, inventory, warnings)
    selected = selection.selected
    for (region, policy_name, resource_id), resource in selected.items():
        selecting = states[policy_name]
        # Chosen again per lineage below; here so a bad retention_tag is reported
        # before the resource has any recovery point.
        _, _, rule = chosen_retention(
            selecting.policy, resource.tags, resource_id, region, warnings
        )
        if selecting.slot is None:
            continue
        lineage = lineages.get((region, policy_name, resource_id, False), ())
        create, messages = create_if_due(
            selecting, region, resource, lineage, lambda p: _deleted_now(p, in_use_by)
        )
        if create is not None:
            actions.append(
                replace(create, resource_name=resource_name(resource.tags), retention=rule)
            )
        for message in messages:
            warnings.add(message, policy=policy_name, resource_id=resource_id, region=region)

    # A copy lineage lives in its target region; its resource in the source region.
    by_id: dict[tuple[str, str], Instance | Volume] = {
        **{("instance", i.instance_id): i for i in inventory.instances},
        **{("volume", v.volume_id): v for v in inventory.volumes},
    }
    kept: list[Kept] = []
    skipped: list[Skipped] = []
    orphans: list[Orphan] = []
    for key, points in lineages.items():
        region, policy_name, resource_id, is_copy = key
        state = states.get(policy_name)
        if state is None:
            orphans.extend(
                Orphan(p.region, p.policy, p.id, p.snapshot_ids, p.created_at) for p in points
            )
            continue
        policy = state.policy
        current: Instance | Volume | None = (
            by_id.get((policy.resource, resource_id))
            if is_copy
            else (
                instances.get((region, resource_id))
                if policy.resource == "instance"
                else volumes.get((region, resource_id))
            )
        )
        tags = current.tags if current is not None else recorded_tags(points)
        name = resource_name(tags)
        if not policy.enabled:
            kept.extend(keep(p, (KEPT_DISABLED,), Lineage(name, None)) for p in points)
            continue
        if is_copy:
            numbered = next(
                ((n, r) for n, r in enumerate(policy.copies) if r.region == region), None
            )
            if numbered is None:
                warnings.add(
                    f"copies in {region} have no copy rule any more: they are kept until "
                    "a person deletes them",
                    policy=policy_name,
                    region=region,
                )
                kept.extend(keep(p, (KEPT_NO_COPY_RULE,), Lineage(name, None)) for p in points)
                continue
            number, copy_rule = numbered
            retention, label = copy_rule.retention, f"copy rule for {region}"
            lineage_of = Lineage(name, copy_rule_name(number))
        elif tags is None:
            # The resource is gone and its recorded tags are unreadable or incomplete:
            # no rule can be chosen safely (a lost `tier: gold` would fall back to a
            # shorter one), so every completed point is kept; failed ones still go.
            warnings.add(
                f"the resource is gone and its tags recorded in {TAG_RESOURCE_TAGS} "
                "cannot be read whole: its recovery points are kept until a person "
                "deletes them",
                policy=policy_name,
                resource_id=resource_id,
                region=region,
            )
            retention, label = KEEP_ALL, "incomplete recorded tags"
            lineage_of = Lineage(name, None)
        else:
            retention, label, rule = chosen_retention(policy, tags, resource_id, region, warnings)
            lineage_of = Lineage(name, rule)
        if not is_copy and (region, policy_name, resource_id) in selected:
            warn_if_stale(state, points, at, resource_id, region, warnings)

        decided = decide(
            points, policy, retention, label, at, state.tz, in_use_by, is_copy, lineage_of
        )
        actions.extend(decided.actions)
        kept.extend(decided.kept)
        skipped.extend(decided.skipped)
        if not is_copy:
            actions.extend(copies(points, policy, regions, copied, warnings, name))
        if policy.verify is not None:
            test = verification(
                points,
                policy.verify,
                at,
                {k.recovery_point for k in decided.kept},
                warnings,
                lineage_of,
            )
            if test is not None:
                actions.append(test)

    by_name = {p.name: p for p in policies.policies}
    lifted = tuple(sorted(set(allow_deletes) & by_name.keys()))
    actions, held = guard(actions, lineages, by_name, lifted, warnings)

    made = Plan(
        at=at,
        generated_at=at if generated_at is None else generated_at,
        account_id=inventory.account_id,
        regions=inventory.regions,
        policies=tuple(
            PolicySlot(p.name, p.file, states[p.name].slot, selection.regions[p.name])
            for p in policies.policies
        ),
        actions=tuple(sorted(actions, key=_action_key)),
        kept=tuple(sorted(kept, key=_kept_key)),
        skipped=tuple(
            sorted(
                skipped,
                key=lambda s: (s.policy, s.region, s.resource_id, s.recovery_point, s.snapshot_ids),
            )
        ),
        orphans=tuple(
            sorted(orphans, key=lambda o: (o.policy, o.region, o.recovery_point, o.snapshot_ids))
        ),
        warnings=warnings.sorted(),
        held_deletes=tuple(sorted(held, key=_held_key)),
        allow_deletes=lifted,
    )
    return made, frozenset(selected)


def _deleted_now(point: RecoveryPoint, in_use_by: Mapping[str, tuple[str, ...]]) -> bool:
    """Whether the plan deletes this failed point now (:func:`.decisions.decide` waits for
    pending snapshots, never deletes one an AMI uses, and keeps a held one)."""
    return (
        not point.held and not point.pending and not any(s in in_use_by for s in point.snapshot_ids)
    )


# --- ordering -------------------------------------------------------------------

# A restore test comes after the copies (a copy lineage is tested on its own) and before
# archives and deletions, which never touch the point it tests.
_ACTION_ORDER = {"create": 0, "copy": 1, "verify": 2, "archive": 3, "delete": 4}


def _action_key(action: Action) -> tuple[str, str, str, int, str, str, tuple[str, ...]]:
    snapshot_ids = () if isinstance(action, CreateAction) else action.snapshot_ids
    target = action.target_region if isinstance(action, CopyAction) else ""
    return (
        action.policy,
        action.region,
        action.resource_id,
        _ACTION_ORDER[action.type],
        action.recovery_point,
        target,
        snapshot_ids,
    )


def _held_key(held: HeldDelete) -> tuple[str, str, str, int, str, str, tuple[str, ...]]:
    return _action_key(held.action)


def _kept_key(kept: Kept) -> tuple[str, str, str, str, tuple[str, ...]]:
    return (kept.policy, kept.region, kept.resource_id, kept.recovery_point, kept.snapshot_ids)
