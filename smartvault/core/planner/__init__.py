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
   so it never counts and is never acted on; the plan warns about it.
2. Each enabled policy selects its resources; a selected resource with no
   pending or completed recovery point at or after the policy's slot is due.
3. Each lineage is given its retention; completed points no rule keeps are
   deleted, failed ones too, unless an AMI uses them. Archives and copies follow.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from smartvault.core import retention as ret
from smartvault.core import schedules
from smartvault.core import tagging
from smartvault.core.model import RESOURCE_TAGS_CUT
from smartvault.core.model import TAG_INSTANCE_ID
from smartvault.core.model import TAG_POLICY
from smartvault.core.model import TAG_RECOVERY_POINT
from smartvault.core.model import TAG_RESOURCE_TAGS
from smartvault.core.model import TAG_SOURCE
from smartvault.core.model import Action
from smartvault.core.model import ArchiveAction
from smartvault.core.model import CopyAction
from smartvault.core.model import CopyRule
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Duration
from smartvault.core.model import Instance
from smartvault.core.model import Inventory
from smartvault.core.model import Kept
from smartvault.core.model import Orphan
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import PolicySlot
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import ResourceType
from smartvault.core.model import Retention
from smartvault.core.model import Skipped
from smartvault.core.model import Snapshot
from smartvault.core.model import TagFilter
from smartvault.core.model import Volume
from smartvault.core.model import is_managed
from smartvault.core.model import read_recovery_point
from smartvault.core.times import iso_utc

#: ``kept_by`` for points of a disabled policy, points not yet completed, and copies
#: whose copy rule was removed from the policy
KEPT_DISABLED = "disabled"
KEPT_PENDING = "pending"
KEPT_NO_COPY_RULE = "no_copy_rule"

#: Keeps every completed point (as keep_last); used when no retention can be chosen safely.
KEEP_ALL = Retention(keep_last=2**31)

_PENDING_STATES = frozenset({"pending", "recovering"})
# In the Recycle Bin: already deleted as far as a plan is concerned.
_IGNORED_STATES = frozenset({"recoverable"})
_ACTION_ORDER = {"create": 0, "copy": 1, "archive": 2, "delete": 3}

LineageKey = tuple[str, str, str, bool]  # region, policy, resource id, is a copy
#: (region, ``smartvault:source``, recovery point id) of a well-formed copy
CopySource = tuple[str, str, str]

#: At most this many warnings about malformed snapshots, the largest groups first; the
#: rest are summed up in one more, so a plan stays readable whatever was tagged.
MALFORMED_WARNINGS_MAX = 50
#: Snapshot ids named in one warning; the rest are counted.
MALFORMED_IDS_SHOWN = 10
_POLICY_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_RESOURCE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


# Not frozen: a frozen dataclass is three times slower to build, and a plan builds one
# per recovery point. Never changed after construction all the same.
@dataclass(slots=True)
class _RecoveryPoint:
    region: str
    policy: str
    resource_id: str
    id: str
    is_copy: bool
    created_at: datetime
    #: sorted
    snapshot_ids: tuple[str, ...]
    error_ids: tuple[str, ...]
    pending_ids: tuple[str, ...]
    standard_ids: tuple[str, ...]
    #: ``smartvault:resource-tags`` as written at creation (unparsed)
    recorded_tags: str | None

    @property
    def snapshot_id(self) -> str:
        """The smallest snapshot id: the tie-break of :func:`retention.order_key`."""
        return self.snapshot_ids[0]

    @property
    def failed(self) -> bool:
        return bool(self.error_ids)

    @property
    def pending(self) -> bool:
        return bool(self.pending_ids)


@dataclass(frozen=True, slots=True)
class _PolicyState:
    policy: Policy
    slot: datetime | None
    #: time between the slot and the firing before it (for the "backups are failing" warning)
    period: timedelta | None
    tz: ZoneInfo


class _Warnings:
    """Collects warnings once each; the plan lists them sorted."""

    def __init__(self) -> None:
        self._seen: set[PlanWarning] = set()

    def add(
        self,
        message: str,
        *,
        policy: str | None = None,
        resource_id: str | None = None,
        region: str | None = None,
    ) -> None:
        self._seen.add(PlanWarning(message, policy, resource_id, region))

    def sorted(self) -> tuple[PlanWarning, ...]:
        return tuple(
            sorted(
                self._seen,
                key=lambda w: (w.policy or "", w.region or "", w.resource_id or "", w.message),
            )
        )


def plan(policies: PolicySet, inventory: Inventory, at: datetime) -> Plan:
    """The plan for ``policies`` over ``inventory`` at ``at`` (aware); ``generated_at = at``.

    A large plan builds several objects per recovery point and frees almost none until
    it returns: callers that plan large inventories pause the cyclic garbage collector
    around this call (see ``engine.collector_paused``); the core leaves the interpreter
    as it is.
    """
    warnings = _Warnings()
    states = {p.name: _policy_state(p, at, warnings) for p in policies.policies}
    regions = set(inventory.regions)
    for loaded in policies.policies:
        if loaded.regions and not regions.intersection(loaded.regions):
            warnings.add(
                f"policy regions {', '.join(loaded.regions)} are not among the regions "
                f"read ({', '.join(inventory.regions)}): nothing is created for it",
                policy=loaded.name,
            )
        if loaded.enabled:
            for target in loaded.copies:
                if target.region not in regions:
                    warnings.add(
                        f"copies to {target.region} are not planned: that region was not read",
                        policy=loaded.name,
                    )

    kinds = {p.name: p.resource for p in policies.policies}
    lineages, copied, malformed = _lineages(inventory.snapshots, kinds)
    _warn_malformed(malformed, warnings)
    instances = {(i.region, i.instance_id): i for i in inventory.instances}
    volumes = {(v.region, v.volume_id): v for v in inventory.volumes}
    in_use_by = _images_by_snapshot(inventory)

    actions: list[Action] = []
    selected = _select(states, inventory, regions, warnings)
    for (region, policy_name, resource_id), resource in selected.items():
        selecting = states[policy_name]
        # Chosen again per lineage below; here so a bad retention_tag is reported
        # before the resource has any recovery point.
        _choose_retention(selecting.policy, resource.tags, resource_id, region, warnings)
        if selecting.slot is None:
            continue
        lineage = lineages.get((region, policy_name, resource_id, False), ())
        create, messages = _create(selecting, region, resource, lineage)
        if create is not None:
            actions.append(create)
        for message in messages:
            warnings.add(message, policy=policy_name, resource_id=resource_id, region=region)

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
        if not policy.enabled:
            kept.extend(_kept(p, (KEPT_DISABLED,)) for p in points)
            continue
        if is_copy:
            copy_rule = next((r for r in policy.copies if r.region == region), None)
            if copy_rule is None:
                warnings.add(
                    f"copies in {region} have no copy rule any more: they are kept until "
                    "a person deletes them",
                    policy=policy_name,
                    region=region,
                )
                kept.extend(_kept(p, (KEPT_NO_COPY_RULE,)) for p in points)
                continue
            retention, label = copy_rule.retention, f"copy rule for {region}"
        else:
            current: Instance | Volume | None = (
                instances.get((region, resource_id))
                if policy.resource == "instance"
                else volumes.get((region, resource_id))
            )
            tags = current.tags if current is not None else _recorded_tags(points)
            if tags is None:
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
            else:
                retention, label = _choose_retention(policy, tags, resource_id, region, warnings)
            if (region, policy_name, resource_id) in selected:
                _warn_if_stale(state, points, at, resource_id, region, warnings)

        decided = _decide(points, policy, retention, label, at, state.tz, in_use_by, is_copy)
        actions.extend(decided.actions)
        kept.extend(decided.kept)
        skipped.extend(decided.skipped)
        if not is_copy:
            actions.extend(_copies(points, policy, regions, copied, warnings))

    return Plan(
        at=at,
        generated_at=at,
        account_id=inventory.account_id,
        regions=inventory.regions,
        policies=tuple(PolicySlot(p.name, p.file, states[p.name].slot) for p in policies.policies),
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
    )


# --- policies ------------------------------------------------------------------


def _policy_state(policy: Policy, at: datetime, warnings: _Warnings) -> _PolicyState:
    try:
        tz = ZoneInfo(policy.schedule.timezone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        tz = ZoneInfo("UTC")
        warnings.add(
            f"unknown time zone {policy.schedule.timezone!r}: calendar retention is read in UTC",
            policy=policy.name,
        )
    if not policy.enabled:
        return _PolicyState(policy, None, None, tz)
    try:
        trigger = schedules.parse(policy.schedule.expression, policy.schedule.timezone)
    except schedules.ScheduleError as exc:
        warnings.add(f"schedule cannot be read ({exc}): nothing is created", policy=policy.name)
        return _PolicyState(policy, None, None, tz)
    slot = trigger.slot(at)
    if slot is None:
        warnings.add(
            f"schedule {policy.schedule.expression} has not fired at or before "
            f"{iso_utc(at)}: nothing is created",
            policy=policy.name,
        )
        return _PolicyState(policy, None, None, tz)
    previous = trigger.previous(slot)
    return _PolicyState(policy, slot, None if previous is None else slot - previous, tz)


def _describe_match(match: TagFilter) -> str:
    return ", ".join(f"{c.key}={'|'.join(c.values) or '*'}" for c in match.conditions)


def _choose_retention(
    policy: Policy,
    tags: Mapping[str, str],
    resource_id: str,
    region: str,
    warnings: _Warnings,
) -> tuple[Retention, str]:
    """The first matching retention_by_tag, else retention; then a valid retention_tag."""
    chosen, label = policy.retention, ""
    for number, rule in enumerate(policy.retention_by_tag, start=1):
        if rule.match.matches_all(tags):
            chosen, label = (
                rule.retention,
                f"retention_by_tag {number}: {_describe_match(rule.match)}",
            )
            break
    if policy.retention_tag and (value := tags.get(policy.retention_tag)) is not None:
        try:
            max_age = Duration.parse(value)
        except ValueError:
            # Never widen deletion on a typo: keep the rule's own max_age.
            kept_age = chosen.max_age or "none"
            warnings.add(
                f"tag {policy.retention_tag}={value!r} is not a duration like 30d: "
                f"using max_age {kept_age}",
                policy=policy.name,
                resource_id=resource_id,
                region=region,
            )
        else:
            chosen = replace(chosen, max_age=max_age)
            tag_label = f"max_age from tag {policy.retention_tag}"
            label = f"{label}; {tag_label}" if label else tag_label
    return chosen, label


# --- resources and creates --------------------------------------------------------


def _resource_id(resource: Instance | Volume) -> str:
    return resource.instance_id if isinstance(resource, Instance) else resource.volume_id


def _select(
    states: Mapping[str, _PolicyState],
    inventory: Inventory,
    regions: set[str],
    warnings: _Warnings,
) -> dict[tuple[str, str, str], Instance | Volume]:
    """(region, policy, resource id) -> resource, for every enabled policy's selection."""
    selected: dict[tuple[str, str, str], Instance | Volume] = {}
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
            resource_id = _resource_id(resource)
            selected[(resource.region, policy.name, resource_id)] = resource
            by_resource[(resource.region, resource_id)].append(policy.name)
    for (region, resource_id), names in by_resource.items():
        if len(names) > 1:
            warnings.add(
                f"selected by {len(names)} policies ({', '.join(sorted(names))}): "
                "each keeps its own recovery points",
                resource_id=resource_id,
                region=region,
            )
    return selected


def _create(
    state: _PolicyState,
    region: str,
    resource: Instance | Volume,
    lineage: Iterable[_RecoveryPoint],
) -> tuple[CreateAction | None, list[str]]:
    """The create for a selected resource when it is due, and what to warn about."""
    policy, slot = state.policy, state.slot
    assert slot is not None  # only called for policies with a slot
    resource_id = _resource_id(resource)
    rp_id = RecoveryPointId.format(policy.name, resource_id, slot)
    newest: _RecoveryPoint | None = None
    for point in lineage:  # newest first
        if point.id == rp_id:
            if not point.failed:
                return None, []
            # Never tag a new attempt like the failed one while that one still exists:
            # the two would read as one failed recovery point.
            return None, [
                f"recovery point {rp_id} failed: it is deleted first, and the slot is "
                "attempted again by the next run"
            ]
        if newest is None and not point.failed:
            newest = point
    if newest is not None and newest.created_at >= slot:
        return None, []
    devices = tagging.devices_to_snapshot(policy, resource)
    if not devices:
        what = "no volumes" if isinstance(resource, Instance) else "no volume"
        return None, [f"due, but has {what} to snapshot: nothing is created"]
    reason = (
        "due: no recovery point yet"
        if newest is None
        else f"due: newest recovery point {iso_utc(newest.created_at)} is before "
        f"slot {iso_utc(slot)}"
    )
    tags = tagging.snapshot_tags(policy, resource, slot)
    action = CreateAction(
        region=region,
        policy=policy.name,
        resource_id=resource_id,
        resource_type=policy.resource,
        recovery_point=rp_id,
        slot=slot,
        volume_ids=tuple(sorted(devices)),
        reason=reason,
        tags=tags.tags,
        exclude_boot_volume=policy.snapshot.exclude_boot_volume,
        full_tag_values=tags.full_values,
    )
    return action, list(tags.problems)


# --- recovery points and lineages -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Malformed:
    snapshot: Snapshot
    reason: str


def _lineages(
    snapshots: Iterable[Snapshot], kinds: Mapping[str, ResourceType]
) -> tuple[dict[LineageKey, list[_RecoveryPoint]], set[CopySource], list[_Malformed]]:
    """Managed snapshots grouped into recovery points, and those into lineages (newest first).

    Also which snapshots have a well-formed copy where (:data:`CopySource`; a copy in any
    state counts: pending, completed, or failed and deleted by its copy retention first),
    and the malformed managed snapshots. ``kinds`` is each loaded policy's resource type.
    Snapshots in the Recycle Bin are none of these.
    """
    groups: dict[tuple[str, str, str, str, bool], list[Snapshot]] = defaultdict(list)
    copied: set[CopySource] = set()
    malformed: list[_Malformed] = []
    for snapshot in snapshots:
        tags = snapshot.tags
        # Defence in depth: the inventory should hold managed snapshots only.
        if not is_managed(tags):
            continue
        policy = tags[TAG_POLICY]
        if snapshot.state in _IGNORED_STATES:
            continue
        rp = read_recovery_point(snapshot, kinds.get(policy))
        if isinstance(rp, str):
            malformed.append(_Malformed(snapshot, rp))
            continue
        # read_recovery_point parsed the tag exactly: it is the canonical id.
        rp_id = tags[TAG_RECOVERY_POINT]
        source = tags.get(TAG_SOURCE)
        if source is not None:
            copied.add((snapshot.region, source, rp_id))
        groups[(snapshot.region, policy, rp_id, rp.resource_id, source is not None)].append(
            snapshot
        )

    lineages: dict[LineageKey, list[_RecoveryPoint]] = defaultdict(list)
    for (region, policy, rp_id, resource_id, is_copy), members in groups.items():
        if len(members) > 1:
            members.sort(key=_snapshot_id)
        first = members[0]
        created_at = first.start_time
        errors: list[str] = []
        pending: list[str] = []
        standard: list[str] = []
        for member in members:
            if member.start_time < created_at:
                created_at = member.start_time
            if member.state == "error":
                errors.append(member.snapshot_id)
            elif member.state in _PENDING_STATES:
                pending.append(member.snapshot_id)
            # A temporarily restored snapshot is still an archived one: EC2 re-archives
            # it by itself, so it is neither archived again nor copied meanwhile.
            if member.storage_tier == "standard" and member.restore_expiry is None:
                standard.append(member.snapshot_id)
        snapshot_ids = tuple(m.snapshot_id for m in members)
        lineages[(region, policy, resource_id, is_copy)].append(
            _RecoveryPoint(
                region,
                policy,
                resource_id,
                rp_id,
                is_copy,
                created_at,
                snapshot_ids,
                tuple(errors),
                tuple(pending),
                snapshot_ids if len(standard) == len(members) else tuple(standard),
                first.tags.get(TAG_RESOURCE_TAGS),
            )
        )
    for points in lineages.values():
        if len(points) > 1:
            points.sort(key=ret.order_key)
    return lineages, copied, malformed


def _snapshot_id(snapshot: Snapshot) -> str:
    return snapshot.snapshot_id


def _warn_malformed(malformed: list[_Malformed], warnings: _Warnings) -> None:
    """One warning per group of malformed snapshots with the same reason, bounded.

    Their tags were written by someone else, so only a valid policy name and resource
    id reach the warning's fields; values in the message are quoted (``repr``).
    """
    groups: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for entry in malformed:
        snapshot = entry.snapshot
        policy = snapshot.tags.get(TAG_POLICY, "")
        instance_id = snapshot.tags.get(TAG_INSTANCE_ID, "")
        resource_id = instance_id if _RESOURCE_ID_RE.fullmatch(instance_id) else snapshot.volume_id
        key = (
            policy if _POLICY_NAME_RE.fullmatch(policy) else "",
            snapshot.region,
            resource_id,
            entry.reason,
        )
        groups[key].append(snapshot.snapshot_id)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    for (policy, region, resource_id, reason), ids in ordered[:MALFORMED_WARNINGS_MAX]:
        ids.sort()
        if len(ids) == 1:
            message = (
                f"managed snapshot {ids[0]} is part of no recovery point: {reason}. "
                "SmartVault leaves it alone; remove its CreatedBy/smartvault:* tags, "
                "or delete it by hand if it is not a backup"
            )
        else:
            message = (
                f"{len(ids)} snapshots ({_some(ids)}) are managed but part of no recovery "
                f"point; for each, {reason}. SmartVault leaves them alone; remove their "
                "CreatedBy/smartvault:* tags, or delete them by hand if they are not backups"
            )
        warnings.add(message, policy=policy or None, resource_id=resource_id or None, region=region)
    rest = sorted(s for _, ids in ordered[MALFORMED_WARNINGS_MAX:] for s in ids)
    if rest:
        warnings.add(
            f"{len(rest)} more malformed managed snapshots, not listed one by one "
            f"({_some(rest)}): each is part of no recovery point. SmartVault leaves them "
            "alone; remove their CreatedBy/smartvault:* tags, or delete them by hand if they "
            "are not backups"
        )


def _some(ids: list[str]) -> str:
    """The first few of ``ids`` (sorted), and how many more."""
    shown = ", ".join(ids[:MALFORMED_IDS_SHOWN])
    more = len(ids) - MALFORMED_IDS_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _images_by_snapshot(inventory: Inventory) -> dict[str, tuple[str, ...]]:
    users: dict[str, set[str]] = defaultdict(set)
    for image in inventory.images:
        for snapshot_id in image.snapshot_ids:
            users[snapshot_id].add(image.image_id)
    return {snapshot_id: tuple(sorted(ids)) for snapshot_id, ids in users.items()}


def _recorded_tags(points: list[_RecoveryPoint]) -> dict[str, str] | None:
    """The resource tags recorded on the newest recovery point that has them.

    ``{}`` when none was recorded; None when they cannot be trusted to choose a
    retention: unreadable, or cut to fit 256 characters.
    """
    text = next((p.recorded_tags for p in points if p.recorded_tags is not None), None)
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return None
    return None if RESOURCE_TAGS_CUT in value else value


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _warn_if_stale(
    state: _PolicyState,
    points: list[_RecoveryPoint],
    at: datetime,
    resource_id: str,
    region: str,
    warnings: _Warnings,
) -> None:
    """Warn when a selected resource's newest completed point is two schedule periods old."""
    if state.period is None:
        return
    newest = next((p for p in points if not p.failed and not p.pending), None)
    if newest is None:
        failed = sum(1 for p in points if p.failed)
        if failed:
            warnings.add(
                f"backups are failing: none has completed, {failed} failed",
                policy=state.policy.name,
                resource_id=resource_id,
                region=region,
            )
        return
    try:
        stale_before = at - 2 * state.period
    except OverflowError:
        return  # two periods reach back past year 1: nothing can be older
    if newest.created_at < stale_before:
        warnings.add(
            "backups are failing: the newest completed recovery point is from "
            f"{iso_utc(newest.created_at)}, more than two schedule periods "
            f"({_human(state.period)} each) ago",
            policy=state.policy.name,
            resource_id=resource_id,
            region=region,
        )


# --- retention, archive, copies ---------------------------------------------------


@dataclass
class _Decided:
    actions: list[Action]
    kept: list[Kept]
    skipped: list[Skipped]


def _kept(point: _RecoveryPoint, kept_by: tuple[str, ...]) -> Kept:
    return Kept(
        point.region,
        point.policy,
        point.resource_id,
        point.id,
        point.snapshot_ids,
        point.created_at,
        kept_by,
    )


def _skipped(point: _RecoveryPoint, reason: str) -> Skipped:
    return Skipped(
        point.region, point.policy, point.resource_id, point.id, point.snapshot_ids, reason
    )


def _delete(point: _RecoveryPoint, reason: str) -> DeleteAction:
    return DeleteAction(
        point.region,
        point.policy,
        point.resource_id,
        point.id,
        point.snapshot_ids,
        point.created_at,
        reason,
    )


def _images(point: _RecoveryPoint, in_use_by: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The AMIs using any snapshot of the point, sorted."""
    return tuple(sorted({i for s in point.snapshot_ids for i in in_use_by.get(s, ())}))


# A plan has few distinct retentions and many deletions; bounded, so a warm Lambda
# that plans again and again does not grow.
@functools.lru_cache(maxsize=1024)
def _not_kept_reason(retention: Retention, label: str) -> str:
    return ret.explain_not_kept(retention) + (f" ({label})" if label else "")


def _decide(
    points: list[_RecoveryPoint],
    policy: Policy,
    retention: Retention,
    label: str,
    at: datetime,
    tz: ZoneInfo,
    in_use_by: Mapping[str, tuple[str, ...]],
    is_copy: bool,
) -> _Decided:
    """Keep, delete, skip or archive each recovery point of one lineage (newest first)."""
    decided = _Decided([], [], [])
    completed = [p for p in points if not p.failed and not p.pending]
    verdicts = ret.evaluate_ordered(completed, retention, at, tz)
    newest_id = completed[0].id if completed else None
    archive_before = None
    if not is_copy and policy.archive_after is not None:
        # OverflowError: archive.after reaches back past year 1, so nothing is old enough
        with contextlib.suppress(OverflowError):
            archive_before = at - policy.archive_after.delta
    for point in points:
        images = _images(point, in_use_by) if in_use_by else ()
        if point.failed:
            verb = "is" if len(point.error_ids) == 1 else "are"
            errors = f"{', '.join(point.error_ids)} {verb} in state error"
            if point.pending:
                # Deleting now would leave the pending snapshots to finish as a
                # recovery point that looks whole; wait for them, then delete all.
                decided.skipped.append(
                    _skipped(
                        point,
                        f"failed: {errors}; deleted once {', '.join(point.pending_ids)} "
                        "finish pending",
                    )
                )
            elif images:
                decided.skipped.append(_skipped(point, f"in use by AMI {', '.join(images)}"))
            else:
                # Error snapshots last: a run stopped half-way leaves a point that still
                # reads as failed, not a few completed snapshots that look whole.
                healthy = tuple(s for s in point.snapshot_ids if s not in point.error_ids)
                decided.actions.append(
                    replace(
                        _delete(point, f"failed: {errors}"),
                        snapshot_ids=healthy + point.error_ids,
                    )
                )
            continue
        if point.pending:
            decided.kept.append(_kept(point, (KEPT_PENDING,)))
            continue
        kept_by = verdicts[point.id]
        if not kept_by:
            if images:
                decided.skipped.append(_skipped(point, f"in use by AMI {', '.join(images)}"))
            else:
                decided.actions.append(_delete(point, _not_kept_reason(retention, label)))
            continue
        decided.kept.append(_kept(point, kept_by))
        if (
            archive_before is not None
            and point.id != newest_id
            and point.created_at < archive_before
            and point.standard_ids
            and not images
        ):
            decided.actions.append(
                ArchiveAction(
                    point.region,
                    point.policy,
                    point.resource_id,
                    point.id,
                    point.standard_ids,
                    point.created_at,
                    f"older than archive after {policy.archive_after}; "
                    f"kept by {', '.join(kept_by)}",
                )
            )
    return decided


def _copies(
    points: list[_RecoveryPoint],
    policy: Policy,
    regions: set[str],
    copied: set[CopySource],
    warnings: _Warnings,
) -> list[CopyAction]:
    """Copy the newest completed point of a source lineage to each copy rule's region.

    Only the newest: adding a copy rule starts disaster recovery from now on, it does
    not copy the history. Only its snapshots that have no copy in the target region yet
    (no well-formed snapshot there of the same recovery point whose ``smartvault:source``
    names them): a copy that stopped half-way is completed by the next plan, a complete
    one is never copied again, and a malformed or foreign "copy" never stops a real one.
    """
    newest = next((p for p in points if not p.failed and not p.pending), None)
    if newest is None:
        return []
    actions = []
    for rule in policy.copies:
        if rule.region not in regions or rule.region == newest.region:
            continue
        missing = tuple(
            s
            for s in newest.snapshot_ids
            if (rule.region, f"{newest.region}/{s}", newest.id) not in copied
        )
        if not missing:
            continue  # copied already (pending, completed, or failed and being deleted)
        if any(s not in newest.standard_ids for s in missing):
            warnings.add(
                f"newest recovery point {newest.id} is archived: not copied to {rule.region}",
                policy=policy.name,
                resource_id=newest.resource_id,
                region=newest.region,
            )
            continue
        actions.append(_copy(newest, rule, missing))
    return actions


def _copy(point: _RecoveryPoint, rule: CopyRule, missing: tuple[str, ...]) -> CopyAction:
    if len(missing) == len(point.snapshot_ids):
        reason = f"newest recovery point has no copy in {rule.region}"
    else:
        reason = (
            f"completes the copy to {rule.region}: {len(missing)} of "
            f"{len(point.snapshot_ids)} snapshots missing"
        )
    return CopyAction(
        region=point.region,
        policy=point.policy,
        resource_id=point.resource_id,
        recovery_point=point.id,
        snapshot_ids=missing,
        created_at=point.created_at,
        target_region=rule.region,
        reason=reason,
        kms_key_id=rule.kms_key_id,
    )


# --- ordering -------------------------------------------------------------------


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


def _kept_key(kept: Kept) -> tuple[str, str, str, str, tuple[str, ...]]:
    return (kept.policy, kept.region, kept.resource_id, kept.recovery_point, kept.snapshot_ids)
