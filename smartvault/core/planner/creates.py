"""The create for a selected resource that is due: which volumes, and every tag to write.

Pure. A resource is due when its lineage has no pending or completed recovery point
at or after the policy's slot; a failed point at the slot itself is deleted first (apply
runs that delete before the creates) and the slot made again in the same run, unless the
failed point must wait (snapshots still pending, or an AMI uses one): then the next run.
The tags of a new recovery point, highest precedence first (docs/retention.md):

1. SmartVault's own keys (``CreatedBy``, ``InstanceId``, ``smartvault:*``): a user
   tag can never override them, and user tags under ``smartvault:`` are dropped.
2. ``snapshot.tags`` (with ``{policy}``, ``{resource_id}`` and ``{slot}`` filled in).
3. ``snapshot.copy_tags``: the resource's tags (``true``: all but ``aws:*``).
4. ``Name``: unless 2 or 3 give one, ``<resource Name tag or id> <policy> <slot>``,
   for example ``web-1 prod-nightly 2026-11-28T03:00Z``.

AWS limits (:mod:`smartvault.core.tags`): a JSON tag that does not fit is cut to the
entries that fit (it stays valid JSON) and its whole value is returned in
``full_values`` for the audit record; any other value that does not fit is cut the
same way. Over 50 tags, the lowest-priority tags are dropped: copied tags last in
``copy_tags`` order (alphabetical for ``true``) first, then ``snapshot.tags`` in
reverse key order. Every cut or drop is described in ``problems`` so the plan can warn
about it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

from smartvault.core.model import CreateAction
from smartvault.core.model import Instance
from smartvault.core.model import Policy
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import Volume
from smartvault.core.planner.lineages import RecoveryPoint
from smartvault.core.planner.selection import PolicyState
from smartvault.core.planner.selection import resource_id_of
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import RESERVED_PREFIX
from smartvault.core.tags import RESOURCE_TAGS_CUT
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_DEVICES
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_KEY_MAX
from smartvault.core.tags import TAG_NAME
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_RESOURCE_TAGS
from smartvault.core.tags import TAG_SLOT
from smartvault.core.tags import TAG_VALUE_MAX
from smartvault.core.tags import TAGS_PER_RESOURCE_MAX
from smartvault.core.tags import aws_reserved
from smartvault.core.tags import fit_json
from smartvault.core.times import iso_utc


def create_if_due(
    state: PolicyState,
    region: str,
    resource: Instance | Volume,
    lineage: Iterable[RecoveryPoint],
    deleted_first: Callable[[RecoveryPoint], bool] = lambda _point: False,
) -> tuple[CreateAction | None, list[str]]:
    """The create for a selected resource when it is due, and what to warn about.

    ``deleted_first(point)``: the plan deletes that failed point, and apply deletes it
    before the creates; then its slot is made again in the same run."""
    policy, slot = state.policy, state.slot
    assert slot is not None  # only called for policies with a slot
    resource_id = resource_id_of(resource)
    rp_id = RecoveryPointId.format(policy.name, resource_id, slot)
    newest: RecoveryPoint | None = None
    remade = False
    for point in lineage:  # newest first
        if point.id == rp_id:
            if not point.failed:
                return None, []
            if point.held:
                # Kept by a person's hold: never deleted first, so never made again
                # under the same tags while it exists.
                return None, [
                    f"recovery point {rp_id} failed and is held (smartvault:hold): the slot is "
                    "attempted again only after `smartvault release` and a run that deletes it"
                ]
            if deleted_first(point):
                remade = True
                continue
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
    devices = devices_to_snapshot(policy, resource)
    if not devices:
        what = "no volumes" if isinstance(resource, Instance) else "no volume"
        return None, [f"due, but has {what} to snapshot: nothing is created"]
    reason = (
        "due: no recovery point yet"
        if newest is None
        else f"due: newest recovery point {iso_utc(newest.created_at)} is before "
        f"slot {iso_utc(slot)}"
    )
    if remade:
        reason += f"; {rp_id} failed: its snapshots are deleted first, then it is made again"
    tags = snapshot_tags(policy, resource, slot)
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


# --- the tags of a new recovery point --------------------------------------------


@dataclass(frozen=True)
class SnapshotTags:
    #: what to write on every snapshot of the recovery point
    tags: dict[str, str]
    #: key -> whole value, for each value that had to be cut to 256 characters
    full_values: dict[str, str] = field(default_factory=dict)
    #: one readable sentence per tag cut or dropped, for plan warnings
    problems: tuple[str, ...] = ()


def retention_tag_keys(policy: Policy) -> tuple[str, ...]:
    """The resource tag keys that choose a policy's retention, sorted."""
    keys = {key for rule in policy.retention_by_tag for key in rule.match.keys}
    if policy.retention_tag:
        keys.add(policy.retention_tag)
    return tuple(sorted(keys))


def devices_to_snapshot(policy: Policy, resource: Instance | Volume) -> dict[str, str]:
    """volume id -> device name of what one recovery point of ``resource`` holds.

    An instance: its attached volumes, without the root device when the policy sets
    ``exclude_boot_volume``. A volume: itself (device ``""`` when detached).
    """
    if isinstance(resource, Volume):
        device = resource.attachments[0].device if resource.attachments else ""
        return {resource.volume_id: device}
    exclude_root = policy.snapshot.exclude_boot_volume
    return {
        d.volume_id: d.device_name
        for d in resource.block_devices
        if not (exclude_root and d.device_name == resource.root_device_name)
    }


def _substitute(template: str, policy: str, resource_id: str, slot: str) -> str:
    # Plain replacement, not str.format: other braces in a value stay as written.
    return (
        template.replace("{policy}", policy)
        .replace("{resource_id}", resource_id)
        .replace("{slot}", slot)
    )


def snapshot_tags(policy: Policy, resource: Instance | Volume, slot: datetime) -> SnapshotTags:
    """Every tag of the snapshots of one new recovery point, and what had to give way.

    ``smartvault:recovery-point`` and ``smartvault:slot`` are both made from ``slot`` here,
    so they always agree (a snapshot whose tags disagree is malformed, DESIGN §1).
    """
    resource_id = resource_id_of(resource)
    slot_text = iso_utc(slot)
    problems: list[str] = []
    full_values: dict[str, str] = {}

    own: dict[str, str] = {TAG_CREATED_BY: CREATED_BY_VALUE}
    if isinstance(resource, Instance):
        own[TAG_INSTANCE_ID] = resource.instance_id
    own[TAG_POLICY] = policy.name
    own[TAG_RECOVERY_POINT] = RecoveryPointId.format(policy.name, resource_id, slot)
    own[TAG_SLOT] = slot_text
    relevant = {k: resource.tags[k] for k in retention_tag_keys(policy) if k in resource.tags}
    json_tags: dict[str, dict[str, str]] = {TAG_RESOURCE_TAGS: relevant}
    if isinstance(resource, Instance):
        json_tags[TAG_DEVICES] = devices_to_snapshot(policy, resource)
    for key, mapping in json_tags.items():
        # Incomplete resource tags must not choose a retention once the resource is
        # gone (a dropped `tier: gold` would fall back to a shorter rule): mark them.
        marker = {RESOURCE_TAGS_CUT: "true"} if key == TAG_RESOURCE_TAGS else None
        text, full = fit_json(mapping, marker)
        own[key] = text
        if full is not None:
            full_values[key] = full
            problems.append(
                f"tag {key} is {len(full)} characters, more than AWS's {TAG_VALUE_MAX}: "
                "written with the entries that fit; the whole value is in the audit record"
            )

    # (key, value, origin) in priority order, highest first
    candidates: list[tuple[str, str, str]] = [
        (key, _substitute(value, policy.name, resource_id, slot_text), "snapshot.tags")
        for key, value in sorted(policy.snapshot.tags.items())
    ]
    copy_tags = policy.snapshot.copy_tags
    if copy_tags is True:
        copied = [k for k in sorted(resource.tags) if not aws_reserved(k)]
    elif copy_tags is False:
        copied = []
    else:
        copied = [k for k in copy_tags if k in resource.tags]
    candidates.extend((key, resource.tags[key], "copy_tags") for key in copied)

    user: dict[str, str] = {}
    for key, value, origin in candidates:
        if key in own or key in user:
            continue  # a higher-priority source already set it
        if key.startswith(RESERVED_PREFIX) or aws_reserved(key):
            problems.append(f"{origin} tag {key} not written: the prefix is reserved")
            continue
        if len(key) > TAG_KEY_MAX:
            problems.append(
                f"{origin} tag {key[:40]}… not written: its key is longer than "
                f"AWS's {TAG_KEY_MAX} characters"
            )
            continue
        if len(value) > TAG_VALUE_MAX:
            full_values[key] = value
            value = value[:TAG_VALUE_MAX]
            problems.append(
                f"{origin} tag {key} cut to {TAG_VALUE_MAX} characters; "
                "the whole value is in the audit record"
            )
        user[key] = value

    if TAG_NAME not in user:
        label = resource.tags.get(TAG_NAME) or resource_id
        user[TAG_NAME] = f"{label} {policy.name} {slot.astimezone(UTC):%Y-%m-%dT%H:%MZ}"[
            :TAG_VALUE_MAX
        ]

    # One more is the create step's: smartvault:volumes, read from the volumes just
    # before the recovery point is made (the planner never reads volume settings).
    room = TAGS_PER_RESOURCE_MAX - len(own) - 1
    if len(user) > room:
        # Keep Name and the highest-priority tags; candidates is already in priority order.
        keep = [TAG_NAME, *(k for k, _, _ in candidates if k in user and k != TAG_NAME)][:room]
        dropped = [k for k in user if k not in keep]
        user = {k: user[k] for k in keep}
        for key in dropped:
            full_values.pop(key, None)
        problems.append(
            f"AWS allows {TAGS_PER_RESOURCE_MAX} tags per snapshot: not writing "
            + ", ".join(dropped)
        )

    return SnapshotTags(tags={**own, **user}, full_values=full_values, problems=tuple(problems))
