"""Managed snapshots and recovery-point ids: what SmartVault made, and what it is part of."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING

from smartvault.core.model.policy import ResourceType
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_SLOT
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.times import iso_utc
from smartvault.core.times import parse_iso_utc

if TYPE_CHECKING:
    from smartvault.core.model.account import Snapshot


# --- managed snapshots and actions ----------------------------------------------

RECOVERY_POINT_SLOT_FORMAT = "%Y%m%dT%H%MZ"


def is_managed(tags: Mapping[str, str]) -> bool:
    """Made by SmartVault (``CreatedBy=SmartVault`` and a ``smartvault:policy``): the only
    snapshots it may ever delete, archive, copy or tag."""
    return tags.get(TAG_CREATED_BY) == CREATED_BY_VALUE and bool(tags.get(TAG_POLICY))


# --- recovery-point ids ---------------------------------------------


# Exactly what SmartVault writes: a policy name (§2: never a "/"), a resource id
# (instance and volume ids are letters, digits and "-"), a UTC minute.
_RECOVERY_POINT_RE = re.compile(
    r"(?P<policy>[a-z0-9][a-z0-9-]{0,62})/(?P<resource>[A-Za-z0-9][A-Za-z0-9-]{0,63})/"
    r"(?P<slot>[0-9]{8}T[0-9]{4}Z)"
)


@dataclass(frozen=True)
class RecoveryPointId:
    """``<policy>/<resource-id>/<slot as %Y%m%dT%H%MZ, UTC>``: the one home of that format."""

    policy: str
    resource_id: str
    #: aware, UTC, whole minutes
    slot: datetime

    @staticmethod
    def format(policy: str, resource_id: str, slot: datetime) -> str:
        """The id of ``resource_id``'s recovery point at ``slot``: deterministic, so retries
        find what they made."""
        return f"{policy}/{resource_id}/{slot.astimezone(UTC).strftime(RECOVERY_POINT_SLOT_FORMAT)}"

    @classmethod
    def parse(cls, text: str) -> RecoveryPointId | None:
        """The parts of an id exactly as :meth:`format` writes it; None for anything else."""
        match = _RECOVERY_POINT_RE.fullmatch(text)
        if match is None:
            return None
        try:  # the regex fixed the form; this refuses days that do not exist (20261131)
            slot = datetime.fromisoformat(match["slot"])
        except ValueError:
            return None
        policy, resource_id, _ = match.groups()
        return cls(policy, resource_id, slot)

    def __str__(self) -> str:
        return self.format(self.policy, self.resource_id, self.slot)


def recovery_point_id(policy: str, resource_id: str, slot: datetime) -> str:
    """``<policy>/<resource-id>/<slot as %Y%m%dT%H%MZ>``: :meth:`RecoveryPointId.format`."""
    return RecoveryPointId.format(policy, resource_id, slot)


def read_recovery_point(
    snapshot: Snapshot, resource_type: ResourceType | None
) -> RecoveryPointId | str:
    """The recovery point a managed snapshot is part of, or why it is part of none.

    It is part of one only when its ``smartvault:recovery-point`` tag parses and agrees with
    its own tags (DESIGN §1): the same policy; the resource in ``InstanceId`` (instance
    policies) or its own VolumeId (volume policies; a copy, with ``smartvault:source``, has
    an arbitrary VolumeId and is exempt); the slot in ``smartvault:slot`` (the same instant).
    ``resource_type`` is None when the policy is not loaded: then ``InstanceId`` must agree
    when the snapshot has one, else its VolumeId (unless a copy). The reason names the
    tag and what it disagrees with.
    """
    tags = snapshot.tags
    text = tags.get(TAG_RECOVERY_POINT)
    if not text:
        return f"it has no {TAG_RECOVERY_POINT} tag"
    rp = RecoveryPointId.parse(text)
    if rp is None:
        return (
            f"its {TAG_RECOVERY_POINT} tag {text!r} does not read as "
            "<policy>/<resource-id>/<slot>, with the slot as YYYYMMDDTHHMMZ"
        )
    said = "its " + TAG_RECOVERY_POINT + " tag"  # not an f-string: this is the hot path
    policy = tags.get(TAG_POLICY)
    if rp.policy != policy:
        return f"{said} names policy {rp.policy!r}, but its {TAG_POLICY} tag is {policy!r}"
    instance_id = tags.get(TAG_INSTANCE_ID)
    is_copy = TAG_SOURCE in tags
    if resource_type == "instance" or (resource_type is None and instance_id is not None):
        if instance_id is None:
            return f"{said} names resource {rp.resource_id!r}, but it has no {TAG_INSTANCE_ID} tag"
        if instance_id != rp.resource_id:
            return (
                f"{said} names resource {rp.resource_id!r}, but its {TAG_INSTANCE_ID} tag is "
                f"{instance_id!r}"
            )
    elif not is_copy and snapshot.volume_id != rp.resource_id:
        return (
            f"{said} names resource {rp.resource_id!r}, but it is a snapshot of volume "
            f"{snapshot.volume_id}"
        )
    slot_text = tags.get(TAG_SLOT)
    if slot_text is None:
        return f"{said} names slot {iso_utc(rp.slot)}, but it has no {TAG_SLOT} tag"
    if parse_iso_utc(slot_text) != rp.slot:
        return f"{said} names slot {iso_utc(rp.slot)}, but its {TAG_SLOT} tag is {slot_text!r}"
    return rp
