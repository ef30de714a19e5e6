"""Coverage: which policies protect each instance and volume, and whether its RPO is met.

Pure: ``coverage(policies, inventory, at)`` reads nothing but its arguments. "Selects" is
the planner's own :func:`~smartvault.core.planner.selection.select`, never a second
matcher; recovery points are the planner's (:func:`~smartvault.core.planner.lineages.
group_lineages`), so a malformed snapshot counts here no more than it does in a plan.

For each resource and each policy that concerns it:

* ``protects``: an enabled policy selects it; its RPO is met when the newest completed
  original recovery point is younger than two schedule periods (the period: the gap
  between the policy's slot at ``at`` and the firing before it); no completed point at
  all is a missed RPO;
* ``disabled``: a disabled policy would select it; it protects nothing;
* ``excluded``: the policy's ``selector.tags`` match, and a rule (``exclude_tags``,
  ``instance_states``) keeps it out: the rule is named.

Each also counts the resource's held recovery points of that policy (``held``: a
person's ``smartvault:hold``, originals and copies counted once per recovery point).

A volume attached to an instance gets what the instance policies do for that instance,
through it (``via``): protected with the instance's recovery points and RPO, excluded by
the instance's rule, or selected by a disabled policy; a boot volume a policy leaves out
(``snapshot.exclude_boot_volume``) is excluded by that rule. Resources come unprotected first, then
those with a missed RPO, then the rest; terminated instances and deleted volumes are
left out (they are gone, and there is nothing left to protect).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from typing import Literal

from smartvault.core.model import Instance
from smartvault.core.model import Inventory
from smartvault.core.model import PlanWarning
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Volume
from smartvault.core.planner.lineages import RecoveryPoint
from smartvault.core.planner.lineages import group_lineages
from smartvault.core.planner.selection import PolicyState
from smartvault.core.planner.selection import exclusion_rule
from smartvault.core.planner.selection import policy_state
from smartvault.core.planner.selection import resource_id_of
from smartvault.core.planner.selection import select
from smartvault.core.planner.selection import warn_unread_regions
from smartvault.core.planner.warnings import Warnings
from smartvault.core.tags import TAG_NAME

Relation = Literal["protects", "disabled", "excluded"]
Status = Literal["unprotected", "rpo-missed", "protected"]
Rpo = Literal["met", "missed"]

#: the order resources are listed in: what needs a person first
STATUS_ORDER: tuple[Status, ...] = ("unprotected", "rpo-missed", "protected")
#: gone, or going: nothing is left to protect
_GONE_STATES = frozenset({"terminated", "shutting-down", "deleting", "deleted"})


@dataclass(frozen=True)
class PointRef:
    """One recovery point, as coverage shows it."""

    id: str
    region: str
    created_at: datetime
    #: when a restore test last proved it (every snapshot carries ``smartvault:verified``)
    verified: datetime | None = None


@dataclass(frozen=True)
class CopyRef:
    """The copies of a lineage in one other region: the newest completed one, if any."""

    region: str
    newest: PointRef | None


@dataclass(frozen=True)
class PolicyCoverage:
    """What one policy does for one resource."""

    policy: str
    relation: Relation
    #: ``excluded``: the rule that keeps it out
    rule: str | None = None
    #: a volume protected through its instance: that instance's id
    via: str | None = None
    #: the newest completed original recovery point, and the newest verified one
    newest: PointRef | None = None
    newest_verified: PointRef | None = None
    copies: tuple[CopyRef, ...] = ()
    #: ``protects`` only: None when there is no schedule to measure against
    rpo: Rpo | None = None
    #: the schedule period (slot minus the firing before it); the RPO limit is twice it
    period: timedelta | None = None
    #: why the RPO is what it is, for people
    rpo_reason: str = ""
    #: how many of its recovery points a person holds (``smartvault:hold``), originals and
    #: copies counted once per recovery point id
    held: int = 0

    @property
    def rpo_limit(self) -> timedelta | None:
        return None if self.period is None else 2 * self.period


@dataclass(frozen=True)
class ResourceCoverage:
    region: str
    resource_type: Literal["instance", "volume"]
    resource_id: str
    #: the ``Name`` tag, when there is one
    name: str | None
    state: str
    policies: tuple[PolicyCoverage, ...] = ()
    #: a volume: the instances it is attached to
    attached_to: tuple[str, ...] = ()

    @property
    def protected(self) -> bool:
        return any(p.relation == "protects" for p in self.policies)

    @property
    def held(self) -> int:
        """Held recovery points of this resource itself (not those of an instance a
        volume is covered through, which that instance counts)."""
        return sum(p.held for p in self.policies if p.via is None)

    @property
    def excluded(self) -> bool:
        """Unprotected, and some policy's rule deliberately keeps it out."""
        return not self.protected and any(p.relation == "excluded" for p in self.policies)

    @property
    def status(self) -> Status:
        if not self.protected:
            return "unprotected"
        if any(p.relation == "protects" and p.rpo == "missed" for p in self.policies):
            return "rpo-missed"
        return "protected"


@dataclass(frozen=True)
class Coverage:
    at: datetime
    account_id: str
    #: the regions whose instances and volumes were read
    regions: tuple[str, ...]
    #: unprotected first, then missed RPOs, then the rest (each by region, type, id)
    resources: tuple[ResourceCoverage, ...]
    warnings: tuple[PlanWarning, ...] = ()

    def count(self, status: Status) -> int:
        return sum(1 for r in self.resources if r.status == status)

    @property
    def excluded_count(self) -> int:
        return sum(1 for r in self.resources if r.excluded)

    @property
    def has_gaps(self) -> bool:
        """A missed RPO, or a resource no policy protects and no rule deliberately excludes:
        what ``coverage --detailed-exitcode`` reports with exit 2."""
        return any(
            r.status == "rpo-missed" or (r.status == "unprotected" and not r.excluded)
            for r in self.resources
        )


# --- building it -------------------------------------------------------------------


def coverage(
    policies: PolicySet, inventory: Inventory, at: datetime, regions: Iterable[str] = ()
) -> Coverage:
    """Coverage of every instance and volume of ``inventory`` in ``regions`` (default: every
    region it holds resources of) at ``at`` (aware)."""
    warnings = Warnings()
    states = {p.name: policy_state(p, at, warnings) for p in policies.policies}
    warn_unread_regions(policies, inventory.regions, warnings)
    # Disabled policies are selected as if enabled, with the planner's own code: what
    # they would protect is shown, as not protecting.
    as_enabled = {
        name: s if s.policy.enabled else replace(s, policy=replace(s.policy, enabled=True))
        for name, s in states.items()
    }
    selected = select(as_enabled, inventory, Warnings()).selected
    kinds = {p.name: p.resource for p in policies.policies}
    lineages, _, _ = group_lineages(inventory.snapshots, kinds)
    copies_of: dict[tuple[str, str], dict[str, list[RecoveryPoint]]] = defaultdict(dict)
    for (region, policy, rid, is_copy), points in lineages.items():
        if is_copy:
            copies_of[(policy, rid)][region] = points

    wanted = set(regions) or {i.region for i in inventory.instances} | {
        v.region for v in inventory.volumes
    }
    instance_entries: dict[tuple[str, str], tuple[PolicyCoverage, ...]] = {}
    out: list[ResourceCoverage] = []
    for instance in inventory.instances:
        if instance.region not in wanted or instance.state in _GONE_STATES:
            continue
        entries = _entries(instance, policies, states, selected, lineages, copies_of, at)
        instance_entries[(instance.region, instance.instance_id)] = entries
        out.append(_resource(instance, "instance", entries))
    by_id = {(i.region, i.instance_id): i for i in inventory.instances}
    for volume in inventory.volumes:
        if volume.region not in wanted or volume.state in _GONE_STATES:
            continue
        entries = _entries(volume, policies, states, selected, lineages, copies_of, at)
        via = _through_instances(volume, by_id, instance_entries, policies)
        out.append(_resource(volume, "volume", (*entries, *via)))
    out.sort(
        key=lambda r: (
            STATUS_ORDER.index(r.status),
            r.region,
            r.resource_type != "instance",
            r.resource_id,
        )
    )
    return Coverage(
        at=at,
        account_id=inventory.account_id,
        regions=tuple(sorted(wanted)),
        resources=tuple(out),
        warnings=warnings.sorted(),
    )


def _resource(
    resource: Instance | Volume,
    kind: Literal["instance", "volume"],
    entries: tuple[PolicyCoverage, ...],
) -> ResourceCoverage:
    return ResourceCoverage(
        region=resource.region,
        resource_type=kind,
        resource_id=resource_id_of(resource),
        name=resource.tags.get(TAG_NAME) or None,
        state=resource.state,
        policies=entries,
        attached_to=()
        if isinstance(resource, Instance)
        else tuple(a.instance_id for a in resource.attachments),
    )


def _entries(
    resource: Instance | Volume,
    policies: PolicySet,
    states: dict[str, PolicyState],
    selected: dict[tuple[str, str, str], Instance | Volume],
    lineages: dict[tuple[str, str, str, bool], list[RecoveryPoint]],
    copies_of: dict[tuple[str, str], dict[str, list[RecoveryPoint]]],
    at: datetime,
) -> tuple[PolicyCoverage, ...]:
    kind = "instance" if isinstance(resource, Instance) else "volume"
    rid = resource_id_of(resource)
    entries: list[PolicyCoverage] = []
    for policy in policies.policies:
        if policy.resource != kind:
            continue
        points = lineages.get((resource.region, policy.name, rid, False), [])
        copy_lineages = copies_of.get((policy.name, rid), {})
        copies = _copies(copy_lineages, resource.region)
        held = _held(points, copy_lineages)
        if (resource.region, policy.name, rid) in selected:
            if policy.enabled:
                entry = _protects(policy, states[policy.name], points, copies, at, via=None)
                entries.append(replace(entry, held=held))
            else:
                newest, verified = _newest(points)
                entries.append(
                    PolicyCoverage(
                        policy.name, "disabled", None, None, newest, verified, copies, held=held
                    )
                )
            continue
        rule = exclusion_rule(policy, resource)
        if rule is not None:
            if not policy.enabled:
                rule += " (and the policy is disabled)"
            entries.append(PolicyCoverage(policy.name, "excluded", rule=rule, held=held))
    return tuple(entries)


def _protects(
    policy: Policy,
    state: PolicyState,
    points: list[RecoveryPoint],
    copies: tuple[CopyRef, ...],
    at: datetime,
    via: str | None,
) -> PolicyCoverage:
    newest, verified = _newest(points)
    rpo: Rpo | None
    if newest is None:
        rpo, reason = "missed", "no completed recovery point"
    elif state.period is None:
        rpo = None
        reason = f"the schedule {policy.schedule.expression} has not fired twice yet"
    else:
        limit = 2 * state.period
        age = at - newest.created_at
        rpo = "met" if age < limit else "missed"
        word = "within" if rpo == "met" else "older than"
        reason = f"newest is {format_age(age)} old: {word} 2 x {format_age(state.period)}"
    return PolicyCoverage(
        policy.name,
        "protects",
        via=via,
        newest=newest,
        newest_verified=verified,
        copies=copies,
        rpo=rpo,
        period=state.period,
        rpo_reason=reason,
    )


def _through_instances(
    volume: Volume,
    instances: dict[tuple[str, str], Instance],
    instance_entries: dict[tuple[str, str], tuple[PolicyCoverage, ...]],
    policies: PolicySet,
) -> list[PolicyCoverage]:
    """What the instance policies do for ``volume`` through the instance it is attached to:
    the same as for the instance (``via`` names it), except that a boot volume a policy
    leaves out (``snapshot.exclude_boot_volume``) is excluded by that rule."""
    found: list[PolicyCoverage] = []
    for attachment in volume.attachments:
        key = (volume.region, attachment.instance_id)
        instance = instances.get(key)
        if instance is None:
            continue
        for entry in instance_entries.get(key, ()):
            policy = policies.get(entry.policy)
            boot = attachment.device == instance.root_device_name
            leaves_out = policy is not None and policy.snapshot.exclude_boot_volume
            if entry.relation != "excluded" and boot and leaves_out:
                rule = "snapshot.exclude_boot_volume: it is the boot volume"
                found.append(
                    PolicyCoverage(entry.policy, "excluded", rule=rule, via=instance.instance_id)
                )
                continue
            found.append(replace(entry, via=instance.instance_id))
    return found


def _newest(points: list[RecoveryPoint]) -> tuple[PointRef | None, PointRef | None]:
    """The newest completed point and the newest completed verified one (newest first)."""
    newest: PointRef | None = None
    for point in points:
        if point.failed or point.pending:
            continue
        ref = PointRef(point.id, point.region, point.created_at, point.verified)
        if newest is None:
            newest = ref
        if point.verified is not None:
            return newest, ref
    return newest, None


def _held(points: list[RecoveryPoint], copies: dict[str, list[RecoveryPoint]]) -> int:
    """Recovery points held in the lineage or any of its copy lineages, each id once."""
    ids = {p.id for p in points if p.held}
    ids.update(p.id for region_points in copies.values() for p in region_points if p.held)
    return len(ids)


def _copies(by_region: dict[str, list[RecoveryPoint]], home: str) -> tuple[CopyRef, ...]:
    return tuple(
        CopyRef(region, _newest(points)[0])
        for region, points in sorted(by_region.items())
        if region != home
    )


def format_age(age: timedelta) -> str:
    """``3d 2h``, ``5h 10m``, ``12m``: an age or a period, to the minute."""
    minutes = max(0, int(age.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"
