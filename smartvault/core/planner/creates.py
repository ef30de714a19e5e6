"""The create for a selected resource that is due: which volumes, and every tag to write.

Pure. A resource is due when its lineage has no pending or completed recovery point
at or after the policy's slot; a failed point at the slot itself is deleted first and
the slot attempted again by the next run. Its tags are
:func:`smartvault.core.tagging.snapshot_tags`.
"""

from __future__ import annotations

from collections.abc import Iterable

from smartvault.core import tagging
from smartvault.core.model import CreateAction
from smartvault.core.model import Instance
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import Volume
from smartvault.core.planner.lineages import RecoveryPoint
from smartvault.core.planner.selection import PolicyState
from smartvault.core.planner.selection import resource_id_of
from smartvault.core.times import iso_utc


def create_if_due(
    state: PolicyState,
    region: str,
    resource: Instance | Volume,
    lineage: Iterable[RecoveryPoint],
) -> tuple[CreateAction | None, list[str]]:
    """The create for a selected resource when it is due, and what to warn about."""
    policy, slot = state.policy, state.slot
    assert slot is not None  # only called for policies with a slot
    resource_id = resource_id_of(resource)
    rp_id = RecoveryPointId.format(policy.name, resource_id, slot)
    newest: RecoveryPoint | None = None
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
