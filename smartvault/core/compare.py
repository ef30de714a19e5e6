"""What a policy change itself does: this plan against the plan of the policies at a git revision.

Pure: two plans made over the same inventory at the same ``at`` (one with the policies as
they are, one with the policies at REF), what each selected, and the two policy sets in;
a :class:`Comparison` out. Because everything else is equal, every difference is the
edit's doing: the review a pull request needs before it is merged.

Actions are matched by :func:`smartvault.core.plan_diff.identity`, the notion ``apply
--plan`` uses. A deletion the ``safety`` circuit breaker held back counts as its delete
action, marked held: a shortened retention that trips the breaker still deletes once a
person lifts it, and the review must say how much.

:func:`impact` turns a comparison into the sentences people read, most dangerous first
(deletions, resources no longer backed up, orphans); the renderers only lay them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import fields

from smartvault.core.model import ACTION_TYPES
from smartvault.core.model import Action
from smartvault.core.model import HeldBy
from smartvault.core.model import Inventory
from smartvault.core.model import Orphan
from smartvault.core.model import Plan
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.plan_diff import Identity
from smartvault.core.plan_diff import identity

#: ``(region, policy, resource id)``: what the planner says an enabled policy selected
Selected = frozenset[tuple[str, str, str]]

#: fields of a policy that say where it is written, not what it does
_WHERE_WRITTEN = frozenset({"name", "file", "line"})


@dataclass(frozen=True)
class Side:
    """One plan of the comparison, what its policies selected, and the policies."""

    plan: Plan
    selected: Selected
    policies: PolicySet


@dataclass(frozen=True)
class ComparedAction:
    """An action only one of the plans has; ``held_by`` when ``safety`` held it there."""

    action: Action
    held_by: HeldBy | None = None


@dataclass(frozen=True)
class Resource:
    """A resource one side backs up and the other does not, with the policies that did."""

    region: str
    resource_id: str
    resource_name: str | None
    policies: tuple[str, ...]

    @property
    def kind(self) -> str:
        return _kind(self.resource_id)


@dataclass(frozen=True)
class PolicyChange:
    """A policy in both sets whose definition differs: the names of the fields that do."""

    name: str
    changed: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """What this plan does that REF's does not, and the other way round."""

    ref: str
    #: the commit REF resolved to
    commit: str
    #: actions only in this plan (with held deletions), in plan order
    added: tuple[ComparedAction, ...] = ()
    #: actions only in REF's plan (with its held deletions)
    removed: tuple[ComparedAction, ...] = ()
    #: resources REF's policies back up that no policy backs up now
    stops_backing_up: tuple[Resource, ...] = ()
    #: resources no policy at REF backs up that a policy backs up now
    starts_backing_up: tuple[Resource, ...] = ()
    #: (region, policy, resource) a policy at REF backed up and no longer does, while
    #: another policy still backs the resource up
    moved: tuple[tuple[str, str, str], ...] = ()
    #: recovery points that become orphans (their policy is gone): kept, never deleted
    new_orphans: tuple[Orphan, ...] = ()
    #: orphans at REF that a policy takes up again now
    adopted: tuple[Orphan, ...] = ()
    policies_added: tuple[str, ...] = ()
    policies_removed: tuple[str, ...] = ()
    #: (name at REF, name now): a removed and an added policy with the same selector
    renamed: tuple[tuple[str, str], ...] = ()
    policies_changed: tuple[PolicyChange, ...] = ()
    #: policy paths that are not there at REF (new files)
    missing_at_ref: tuple[str, ...] = ()

    @property
    def deletes_added(self) -> tuple[ComparedAction, ...]:
        """Recovery points this change deletes that REF keeps (held or not)."""
        return tuple(c for c in self.added if c.action.type == "delete")

    @property
    def deletes_removed(self) -> tuple[ComparedAction, ...]:
        """Recovery points REF deletes that this change keeps."""
        return tuple(c for c in self.removed if c.action.type == "delete")

    @property
    def changes_nothing(self) -> bool:
        return not (self.added or self.removed or self.new_orphans or self.adopted) and not (
            self.stops_backing_up or self.starts_backing_up or self.moved
        )


def _kind(resource_id: str) -> str:
    if resource_id.startswith("i-"):
        return "instance"
    if resource_id.startswith("vol-"):
        return "volume"
    return "resource"


def _all_actions(plan: Plan) -> list[ComparedAction]:
    return [
        *(ComparedAction(a) for a in plan.actions),
        *(ComparedAction(h.action, h.held_by) for h in plan.held_deletes),
    ]


def _only_in(
    one: Sequence[ComparedAction], other: Sequence[ComparedAction]
) -> list[ComparedAction]:
    """The actions of ``one`` the other has not, matched one to one by identity."""
    unmatched: dict[Identity, int] = {}
    for c in other:
        key = identity(c.action)
        unmatched[key] = unmatched.get(key, 0) + 1
    left = []
    for c in one:
        key = identity(c.action)
        if unmatched.get(key, 0):
            unmatched[key] -= 1
        else:
            left.append(c)
    return left


def _names(*plans: Plan) -> dict[tuple[str, str], str]:
    """(region, resource id) -> its ``Name``, from whatever line of the plans names it."""
    names: dict[tuple[str, str], str] = {}
    for plan in plans:
        lines = (*plan.actions, *plan.kept, *plan.skipped, *(h.action for h in plan.held_deletes))
        for line in lines:
            if line.resource_name:
                names.setdefault((line.region, line.resource_id), line.resource_name)
    return names


def _resources(
    keys: Iterable[tuple[str, str]], by: Selected, names: dict[tuple[str, str], str]
) -> tuple[Resource, ...]:
    policies: dict[tuple[str, str], list[str]] = {}
    for region, policy, resource_id in by:
        policies.setdefault((region, resource_id), []).append(policy)
    return tuple(
        Resource(region, rid, names.get((region, rid)), tuple(sorted(policies[(region, rid)])))
        for region, rid in sorted(keys)
    )


def _definition(policy: Policy) -> dict[str, object]:
    return {f.name: getattr(policy, f.name) for f in fields(policy) if f.name not in _WHERE_WRITTEN}


def _policy_changes(
    now: PolicySet, then: PolicySet
) -> tuple[list[str], list[str], list[tuple[str, str]], list[PolicyChange]]:
    before = {p.name: p for p in then.policies}
    after = {p.name: p for p in now.policies}
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    renamed = []
    for old in removed:
        was = before[old]
        same = [
            new
            for new in added
            if after[new].resource == was.resource and after[new].selector == was.selector
        ]
        if len(same) == 1:
            renamed.append((old, same[0]))
    changed = []
    for name in after:
        if name in before:
            a, b = _definition(after[name]), _definition(before[name])
            differing = tuple(key for key in a if a[key] != b[key])
            if differing:
                changed.append(PolicyChange(name, differing))
    return added, removed, renamed, changed


def compare(
    ref: str, commit: str, now: Side, then: Side, missing_at_ref: Sequence[str] = ()
) -> Comparison:
    """Compare ``now`` (the policies as they are) with ``then`` (the policies at ``ref``).

    Both plans must be made over the same inventory at the same ``at``: then every
    difference is the policy change's.
    """
    ours, theirs = _all_actions(now.plan), _all_actions(then.plan)
    names = _names(now.plan, then.plan)
    covered_now = {(region, rid) for region, _, rid in now.selected}
    covered_then = {(region, rid) for region, _, rid in then.selected}
    moved = sorted(key for key in then.selected - now.selected if (key[0], key[2]) in covered_now)

    def orphan_key(o: Orphan) -> tuple[str, str, str]:
        return (o.region, o.policy, o.recovery_point)

    orphans_now = {orphan_key(o) for o in now.plan.orphans}
    orphans_then = {orphan_key(o) for o in then.plan.orphans}
    added, removed, renamed, changed = _policy_changes(now.policies, then.policies)
    return Comparison(
        ref=ref,
        commit=commit,
        added=tuple(_only_in(ours, theirs)),
        removed=tuple(_only_in(theirs, ours)),
        stops_backing_up=_resources(covered_then - covered_now, then.selected, names),
        starts_backing_up=_resources(covered_now - covered_then, now.selected, names),
        moved=tuple(moved),
        new_orphans=tuple(o for o in now.plan.orphans if orphan_key(o) not in orphans_then),
        adopted=tuple(o for o in then.plan.orphans if orphan_key(o) not in orphans_now),
        policies_added=tuple(added),
        policies_removed=tuple(removed),
        renamed=tuple(renamed),
        policies_changed=tuple(changed),
        missing_at_ref=tuple(missing_at_ref),
    )


def within_regions(inventory: Inventory, regions: Sequence[str]) -> Inventory:
    """``inventory`` as if only ``regions`` had been read (a subset of its regions).

    ``plan --compare`` reads the account once for both policy sets; each set is then
    planned over what it would have read itself, so that a copy target only REF's
    policies have adds nothing to this plan.
    """
    keep = set(regions)
    return Inventory(
        account_id=inventory.account_id,
        regions=tuple(r for r in inventory.regions if r in keep),
        instances=tuple(i for i in inventory.instances if i.region in keep),
        volumes=tuple(v for v in inventory.volumes if v.region in keep),
        snapshots=tuple(s for s in inventory.snapshots if s.region in keep),
        images=tuple(i for i in inventory.images if i.region in keep),
        resource_regions=None
        if inventory.resource_regions is None
        else tuple(r for r in inventory.resource_regions if r in keep),
    )


# --- the sentences people read ---------------------------------------------------------


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def _kinds(resources: Sequence[Resource]) -> str:
    """``3 instances and 1 volume``."""
    by_kind: dict[str, int] = {}
    for r in resources:
        by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
    parts = [_count(n, kind) for kind, n in sorted(by_kind.items())]
    return " and ".join(parts) if len(parts) <= 2 else ", ".join(parts)


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _held_note(deletes: Sequence[ComparedAction]) -> str:
    held = [c for c in deletes if c.held_by is not None]
    policies = sorted({c.action.policy for c in held})
    second_key = ""
    if policies:
        flags = " ".join(f"--allow-deletes {p}" for p in policies)
        second_key = f"a person must run `smartvault apply {flags}` to make them"
    if len(held) == len(deletes):
        return f"all {len(held):,} held by safety: {second_key}"
    if not held:
        return "all on the next run: safety holds none of them"
    return (
        f"{len(deletes) - len(held):,} on the next run, {len(held):,} held by safety: {second_key}"
    )


def _name_of(resource: Resource) -> str:
    name = f" ({resource.resource_name})" if resource.resource_name else ""
    return f"{resource.resource_id}{name}"


def lead(comparison: Comparison) -> str:
    """The one sentence to read first: ``this change deletes 212 recovery points that main
    keeps (…); it stops backing up 3 instances``."""
    ref = comparison.ref
    parts = []
    deletes = comparison.deletes_added
    if deletes:
        parts.append(
            f"deletes {_count(len(deletes), 'recovery point')} that {ref} keeps "
            f"({_held_note(deletes)})"
        )
    if comparison.stops_backing_up:
        parts.append(f"stops backing up {_kinds(comparison.stops_backing_up)}")
    if comparison.new_orphans:
        n = len(comparison.new_orphans)
        parts.append(
            f"leaves {_count(n, 'recovery point')} as {'an orphan' if n == 1 else 'orphans'} "
            "(kept, never deleted)"
        )
    if comparison.starts_backing_up:
        parts.append(f"starts backing up {_kinds(comparison.starts_backing_up)}")
    if comparison.deletes_removed:
        parts.append(
            f"keeps {_count(len(comparison.deletes_removed), 'recovery point')} that {ref} deletes"
        )
    if not parts and (comparison.added or comparison.removed):
        parts.append(
            f"adds {_count(len(comparison.added), 'action')} and removes "
            f"{_count(len(comparison.removed), 'action')}; it deletes nothing {ref} keeps"
        )
    if not parts:
        return f"this change does nothing that applying the policies at {ref} would not do"
    return "this change " + "; it ".join(parts)


def _action_counts(changes: Sequence[ComparedAction]) -> str:
    counts = {kind: sum(1 for c in changes if c.action.type == kind) for kind in ACTION_TYPES}
    return ", ".join(f"{n:,} {kind}" for kind, n in counts.items() if n) or "none"


def impact(comparison: Comparison) -> list[str]:
    """One sentence per fact a reviewer must weigh, most dangerous first."""
    ref = comparison.ref
    lines = []
    by_policy: dict[str, list[ComparedAction]] = {}
    for c in comparison.deletes_added:
        by_policy.setdefault(c.action.policy, []).append(c)
    for policy, deletes in by_policy.items():
        lines.append(
            f"policy `{policy}` deletes {_count(len(deletes), 'recovery point')} that {ref} "
            f"keeps ({_held_note(deletes)})"
        )
    for r in comparison.stops_backing_up:
        lines.append(
            f"{r.kind} {_name_of(r)} in {r.region} is no longer backed up "
            f"(at {ref}: {_quoted(r.policies)}); its recovery points are kept by their retention"
        )
    renamed = dict(comparison.renamed)
    orphaned: dict[str, int] = {}
    for o in comparison.new_orphans:
        orphaned[o.policy] = orphaned.get(o.policy, 0) + 1
    for policy, n in orphaned.items():
        also = ""
        if policy in renamed:
            also = (
                f"; `{policy}` looks renamed to `{renamed[policy]}`, which starts new "
                "lineages instead of continuing these"
            )
        become = "becomes an orphan" if n == 1 else "become orphans"
        lines.append(
            f"{_count(n, 'recovery point')} of policy `{policy}` {become}: kept, never "
            f"deleted, until a person deletes {'it' if n == 1 else 'them'}{also}"
        )
    for region, policy, rid in comparison.moved:
        lines.append(
            f"policy `{policy}` no longer backs up {_kind(rid)} {rid} in {region}; "
            "another policy still does"
        )
    for r in comparison.starts_backing_up:
        lines.append(
            f"{r.kind} {_name_of(r)} in {r.region} is now backed up by {_quoted(r.policies)}"
        )
    if comparison.deletes_removed:
        n = len(comparison.deletes_removed)
        lines.append(
            f"{_count(n, 'recovery point')} that {ref} deletes {'is' if n == 1 else 'are'} kept"
        )
    if comparison.adopted:
        n = len(comparison.adopted)
        lines.append(
            f"{_count(n, 'orphaned recovery point')} at {ref} "
            f"{'belongs' if n == 1 else 'belong'} to a policy again and follow"
            f"{'s' if n == 1 else ''} its retention"
        )
    for old, new in comparison.renamed:
        if old not in orphaned:
            lines.append(f"policy `{old}` looks renamed to `{new}`")
    gone = [n for n in comparison.policies_removed if n not in renamed]
    if gone:
        lines.append(f"removed: {_quoted(gone)}")
    fresh = [n for n in comparison.policies_added if n not in renamed.values()]
    if fresh:
        lines.append(f"new policies: {_quoted(fresh)}")
    lines.extend(
        f"policy `{c.name}` changes {', '.join(c.changed)}" for c in comparison.policies_changed
    )
    lines.extend(f"{path} is not there at {ref}: new" for path in comparison.missing_at_ref)
    lines.append(
        f"actions only in this plan: {_action_counts(comparison.added)}; "
        f"only in {ref}'s: {_action_counts(comparison.removed)}"
    )
    return lines
