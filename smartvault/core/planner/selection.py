"""Each policy's slot at the plan's time, and the resources each enabled policy selects.

Pure. A policy whose time zone or schedule cannot be read, or whose schedule has not
fired yet, gets no slot and creates nothing, with a warning saying why; a disabled policy
gets no slot and no warning. Only resources in regions read and in the policy's regions
are selected; each policy's selected and excluded resources are counted per region, and
an enabled policy that selects nothing in a region it covers is a warning.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
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
from smartvault.core.model import PolicyRegion
from smartvault.core.model import PolicySet
from smartvault.core.model import TagFilter
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


#: the volume states a volume policy backs up; a volume being created or deleted, or in
#: error, is neither selected nor excluded
VOLUME_STATES = ("in-use", "available")
#: other values of one key shown in the hint of a warning about a selector that
#: matches nothing
HINT_VALUES_MAX = 5


@dataclass(frozen=True, slots=True)
class Selection:
    #: (region, policy, resource id) -> resource, for every enabled policy
    selected: Selected
    #: policy name -> what its selector found in each region it covers (disabled ones too)
    regions: dict[str, tuple[PolicyRegion, ...]]


def select(
    states: Mapping[str, PolicyState], inventory: Inventory, warnings: Warnings
) -> Selection:
    """What each policy's selector selects and excludes, in each region it covers.

    A region is covered when its resources were read (``inventory.resource_regions``)
    and the policy's ``regions`` allow it. A resource ``selector.tags`` matches is
    excluded when ``exclude_tags`` matches it, else (instances) when its state is not in
    ``instance_states``; else selected (a volume: when ``in-use`` or ``available``).
    Disabled policies are counted and select nothing. An enabled policy that selects
    nothing in a region it covers is a warning naming its selector.
    """
    read = inventory.regions if inventory.resource_regions is None else inventory.resource_regions
    covered = sorted(set(read) & set(inventory.regions))
    by_region: dict[tuple[str, str], list[Instance | Volume]] = defaultdict(list)
    for instance in inventory.instances:
        by_region[("instance", instance.region)].append(instance)
    for volume in inventory.volumes:
        by_region[("volume", volume.region)].append(volume)

    selected: Selected = {}
    counts: dict[str, tuple[PolicyRegion, ...]] = {}
    by_resource: dict[tuple[str, str], list[str]] = defaultdict(list)
    for state in states.values():
        policy = state.policy
        selector = policy.selector
        is_instance = policy.resource == "instance"
        found: list[PolicyRegion] = []
        for region in covered:
            if not policy.applies_to_region(region):
                continue
            chosen = by_tags = by_state = unready = 0
            for resource in by_region.get((policy.resource, region), ()):
                if not selector.tags.matches_all(resource.tags):
                    continue
                if selector.exclude_tags.matches_any(resource.tags):
                    by_tags += 1
                    continue
                if is_instance:
                    if resource.state not in selector.instance_states:
                        by_state += 1
                        continue
                elif resource.state not in VOLUME_STATES:
                    unready += 1
                    continue
                chosen += 1
                if policy.enabled:
                    rid = resource_id_of(resource)
                    selected[(region, policy.name, rid)] = resource
                    by_resource[(region, rid)].append(policy.name)
            found.append(PolicyRegion(region, chosen, by_tags + by_state))
            if policy.enabled and not chosen:
                resources = by_region.get((policy.resource, region), ())
                warnings.add(
                    _nothing_selected(policy, region, (by_tags, by_state, unready), resources),
                    policy=policy.name,
                    region=region,
                )
        counts[policy.name] = tuple(found)
    for (region, rid), names in by_resource.items():
        if len(names) > 1:
            warnings.add(
                f"selected by {len(names)} policies ({', '.join(sorted(names))}): "
                "each keeps its own recovery points",
                resource_id=rid,
                region=region,
            )
    return Selection(selected, counts)


# --- a selector that selects nothing ----------------------------------------------

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._/@+-]*")
#: words YAML reads as something other than a string, so they are written quoted
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def _scalar(text: str) -> str:
    """A key or value as a policy would write it: bare when plain, else JSON-quoted."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def describe_tags(tags: TagFilter) -> str:
    """A tag filter as written in a policy: ``{env: [prod, production], owner: "*"}``."""
    entries = []
    for condition in tags.conditions:
        if not condition.values:
            value = '"*"'
        elif len(condition.values) == 1:
            value = _scalar(condition.values[0])
        else:
            value = "[" + ", ".join(_scalar(v) for v in condition.values) + "]"
        entries.append(f"{_scalar(condition.key)}: {value}")
    return "{" + ", ".join(entries) + "}"


def _nothing_selected(
    policy: Policy,
    region: str,
    left_out: tuple[int, int, int],
    resources: Sequence[Instance | Volume],
) -> str:
    """Why an enabled policy selects nothing in ``region``: one sentence naming the selector.

    ``left_out``: how many resources ``selector.tags`` matches that exclude_tags excludes,
    that instance_states excludes, and (volumes) that are neither in-use nor available.
    """
    kind = policy.resource
    selector = policy.selector
    written = f"selector.tags {describe_tags(selector.tags)}"
    by_tags, by_state, unready = left_out
    matched = sum(left_out)
    if matched:
        excluded = []
        if by_tags:
            excluded.append(
                f"exclude_tags {describe_tags(selector.exclude_tags)} excludes {by_tags}"
            )
        if by_state:
            states = ", ".join(selector.instance_states)
            excluded.append(f"instance_states [{states}] excludes {by_state}")
        if unready:
            verb = "is" if unready == 1 else "are"
            excluded.append(f"{unready} {verb} neither in-use nor available")
        noun = kind if matched == 1 else f"{kind}s"
        return (
            f"{written} matches {matched} {noun} in {region}, but "
            f"{' and '.join(excluded)}: nothing is backed up there"
        )
    message = f"{written} matches no {kind} in {region}: nothing is backed up there"
    hints = _other_values(selector.tags, resources)
    if hints:
        message += f" (of the {kind}s read in {region}, {'; '.join(hints)})"
    return message


def _other_values(tags: TagFilter, resources: Sequence[Instance | Volume]) -> list[str]:
    """For each key the filter gives values for: how many of ``resources`` have the key
    with another value, and which values (a few). Only what was read anyway: SmartVault
    reads the resources some selector matches, so this is a hint, never a census."""
    hints = []
    for condition in tags.conditions:
        if not condition.values:
            continue
        seen: set[str] = set()
        having = 0
        for resource in resources:
            value = resource.tags.get(condition.key)
            if value is not None and value not in condition.values:
                having += 1
                seen.add(value)
        if not having:
            continue
        values = sorted(seen)
        shown = ", ".join(_scalar(v) for v in values[:HINT_VALUES_MAX])
        if len(values) > HINT_VALUES_MAX:
            shown += f" and {len(values) - HINT_VALUES_MAX} more"
        verb = "has" if having == 1 else "have"
        other = "another value" if len(values) == 1 else "other values"
        hints.append(f"{having} {verb} the tag {_scalar(condition.key)} with {other}: {shown}")
    return hints


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
