"""Each policy's slot at the plan's time, and the resources each enabled policy selects.

Pure. A policy whose time zone or schedule cannot be read, or whose schedule has not
fired yet, gets no slot and creates nothing, with a warning saying why; a disabled policy
gets no slot and no warning. Only resources in regions read and in the policy's regions
are selected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from smartvault.core import schedules
from smartvault.core.model import Instance
from smartvault.core.model import Inventory
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Volume
from smartvault.core.planner.warnings import Warnings
from smartvault.core.times import iso_utc

#: (region, policy, resource id) of each resource a policy selects
Selected = dict[tuple[str, str, str], Instance | Volume]


@dataclass(frozen=True, slots=True)
class PolicyState:
    policy: Policy
    slot: datetime | None
    #: time between the slot and the firing before it (for the "backups are failing" warning)
    period: timedelta | None
    tz: ZoneInfo


def policy_state(policy: Policy, at: datetime, warnings: Warnings) -> PolicyState:
    """The policy's time zone, and its slot at ``at`` with the period before it."""
    try:
        tz = ZoneInfo(policy.schedule.timezone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        tz = ZoneInfo("UTC")
        warnings.add(
            f"unknown time zone {policy.schedule.timezone!r}: calendar retention is read in UTC",
            policy=policy.name,
        )
    if not policy.enabled:
        return PolicyState(policy, None, None, tz)
    try:
        trigger = schedules.parse(policy.schedule.expression, policy.schedule.timezone)
    except schedules.ScheduleError as exc:
        warnings.add(f"schedule cannot be read ({exc}): nothing is created", policy=policy.name)
        return PolicyState(policy, None, None, tz)
    slot = trigger.slot(at)
    if slot is None:
        warnings.add(
            f"schedule {policy.schedule.expression} has not fired at or before "
            f"{iso_utc(at)}: nothing is created",
            policy=policy.name,
        )
        return PolicyState(policy, None, None, tz)
    previous = trigger.previous(slot)
    return PolicyState(policy, slot, None if previous is None else slot - previous, tz)


def warn_unread_regions(policies: PolicySet, read: Sequence[str], warnings: Warnings) -> None:
    """Warn about policies, and enabled policies' copies, aimed only at regions not read."""
    regions = set(read)
    for loaded in policies.policies:
        if loaded.regions and not regions.intersection(loaded.regions):
            warnings.add(
                f"policy regions {', '.join(loaded.regions)} are not among the regions "
                f"read ({', '.join(read)}): nothing is created for it",
                policy=loaded.name,
            )
        if loaded.enabled:
            for target in loaded.copies:
                if target.region not in regions:
                    warnings.add(
                        f"copies to {target.region} are not planned: that region was not read",
                        policy=loaded.name,
                    )


def resource_id_of(resource: Instance | Volume) -> str:
    return resource.instance_id if isinstance(resource, Instance) else resource.volume_id


def select(
    states: Mapping[str, PolicyState],
    inventory: Inventory,
    regions: set[str],
    warnings: Warnings,
) -> Selected:
    """(region, policy, resource id) -> resource, for every enabled policy's selection."""
    selected: Selected = {}
    by_resource: dict[tuple[str, str], list[str]] = defaultdict(list)
    for state in states.values():
        policy = state.policy
        if not policy.enabled:
            continue
        candidates: Iterable[Instance | Volume]
        if policy.resource == "instance":
            candidates = (
                i for i in inventory.instances if i.state in policy.selector.instance_states
            )
        else:
            candidates = (v for v in inventory.volumes if v.state in ("in-use", "available"))
        for resource in candidates:
            if resource.region not in regions or not policy.applies_to_region(resource.region):
                continue
            if not policy.selector.matches(resource.tags):
                continue
            rid = resource_id_of(resource)
            selected[(resource.region, policy.name, rid)] = resource
            by_resource[(resource.region, rid)].append(policy.name)
    for (region, rid), names in by_resource.items():
        if len(names) > 1:
            warnings.add(
                f"selected by {len(names)} policies ({', '.join(sorted(names))}): "
                "each keeps its own recovery points",
                resource_id=rid,
                region=region,
            )
    return selected


def exclusion_rule(policy: Policy, resource: Instance | Volume) -> str | None:
    """The rule that keeps ``resource`` out of ``policy`` although ``selector.tags`` match it:
    ``exclude_tags backup-skip`` or ``instance_states: stopped not in [running]``.

    None when the tags do not match, or the policy does not apply in the resource's region,
    or nothing excludes it. Only explains: :func:`select` alone decides what is selected
    (``smartvault coverage`` calls this for resources :func:`select` left out).
    """
    if not policy.applies_to_region(resource.region):
        return None
    if not policy.selector.tags.matches_all(resource.tags):
        return None
    for condition in policy.selector.exclude_tags.conditions:
        if condition.matches(resource.tags):
            value = resource.tags[condition.key]
            return f"exclude_tags {condition.key}" + (f": {value}" if condition.values else "")
    if isinstance(resource, Instance):
        if resource.state not in policy.selector.instance_states:
            states = ", ".join(policy.selector.instance_states)
            return f"instance_states: {resource.state} not in [{states}]"
    elif resource.state not in ("in-use", "available"):
        return f"volume state {resource.state}: only in-use and available volumes are backed up"
    return None
