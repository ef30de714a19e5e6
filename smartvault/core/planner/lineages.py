"""Managed snapshots grouped into recovery points, and recovery points into lineages.

Pure. A recovery point is the snapshots of one region, policy, recovery-point tag and
copy-or-not; a lineage is the recovery points of one region, policy, resource and
copy-or-not, newest first (:func:`~smartvault.core.retention.order_key`). A managed
snapshot whose recovery-point tag does not agree with its own tags is malformed
(:func:`~smartvault.core.model.read_recovery_point`): it is in no recovery point, so it
never counts and is never acted on; the plan warns about it, in a bounded number of
warnings. Snapshots in the Recycle Bin are none of these.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from smartvault.core import retention as ret
from smartvault.core.model import ResourceType
from smartvault.core.model import Snapshot
from smartvault.core.model import is_managed
from smartvault.core.model import read_recovery_point
from smartvault.core.planner.warnings import Warnings
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_RESOURCE_TAGS
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import TAG_VERIFIED
from smartvault.core.times import parse_iso_utc

_PENDING_STATES = frozenset({"pending", "recovering"})
# In the Recycle Bin: already deleted as far as a plan is concerned.
_IGNORED_STATES = frozenset({"recoverable"})

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
class RecoveryPoint:
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
    #: the oldest ``smartvault:verified`` time of its snapshots, when every one of them
    #: carries a readable one; else None (:func:`verified_at`)
    verified: datetime | None = None
    #: the ``smartvault:hold`` reason when any of its snapshots carries a non-empty one
    #: (:func:`hold_of`); None when it is not held
    hold: str | None = None

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

    @property
    def held(self) -> bool:
        return self.hold is not None


@dataclass(frozen=True, slots=True)
class Malformed:
    snapshot: Snapshot
    reason: str


def group_lineages(
    snapshots: Iterable[Snapshot], kinds: Mapping[str, ResourceType]
) -> tuple[dict[LineageKey, list[RecoveryPoint]], set[CopySource], list[Malformed]]:
    """Managed snapshots grouped into recovery points, and those into lineages (newest first).

    Also which snapshots have a well-formed copy where (:data:`CopySource`; a copy in any
    state counts: pending, completed, or failed and deleted by its copy retention first),
    and the malformed managed snapshots. ``kinds`` is each loaded policy's resource type.
    Snapshots in the Recycle Bin are none of these.
    """
    # Most recovery points are one snapshot: a list only for those of several (a list
    # per point is 9 MB for 100,000 of them, held until the lineages are built).
    groups: dict[tuple[str, str, str, str, bool], Snapshot | list[Snapshot]] = {}
    copied: set[CopySource] = set()
    malformed: list[Malformed] = []
    # Parsing makes a new string of each id's resource id; every plan entry of the
    # resource keeps one, so they share the first (100,000 points: 7 MB less).
    resource_ids: dict[str, str] = {}
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
            malformed.append(Malformed(snapshot, rp))
            continue
        # read_recovery_point parsed the tag exactly: it is the canonical id.
        rp_id = tags[TAG_RECOVERY_POINT]
        source = tags.get(TAG_SOURCE)
        if source is not None:
            copied.add((snapshot.region, source, rp_id))
        resource_id = resource_ids.setdefault(rp.resource_id, rp.resource_id)
        key = (snapshot.region, policy, rp_id, resource_id, source is not None)
        found = groups.setdefault(key, snapshot)
        if isinstance(found, list):
            found.append(snapshot)
        elif found is not snapshot:
            groups[key] = [found, snapshot]

    lineages: dict[LineageKey, list[RecoveryPoint]] = defaultdict(list)
    for (region, policy, rp_id, resource_id, is_copy), found in groups.items():
        members = sorted(found, key=_snapshot_id) if isinstance(found, list) else [found]
        first = members[0]
        created_at = first.start_time
        errors: list[str] = []
        pending: list[str] = []
        standard: list[str] = []
        verified = verified_at(members)
        holds: list[str] = []
        for member in members:
            if hold := member.tags.get(TAG_HOLD):  # read here: one pass over the members
                holds.append(hold)
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
            RecoveryPoint(
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
                verified,
                _joined(holds) if holds else None,
            )
        )
    for points in lineages.values():
        if len(points) > 1:
            points.sort(key=ret.order_key)
    return lineages, copied, malformed


def verified_at(members: list[Snapshot]) -> datetime | None:
    """When a restore test last proved a recovery point: the oldest ``smartvault:verified``
    time of its snapshots, or None unless every one carries a readable time.

    A snapshot without it, or with a value that does not read as an ISO time with a zone,
    makes the whole point unverified: a tag someone else wrote can only ever cause one
    more restore test, never one fewer.
    """
    oldest: datetime | None = None
    for member in members:
        text = member.tags.get(TAG_VERIFIED)
        if text is None:
            return None
        try:
            moment = parse_iso_utc(text)
        except OverflowError:  # an offset that moves year 1 or 9999 out of range
            return None
        if moment is None:
            return None
        if oldest is None or moment < oldest:
            oldest = moment
    return oldest


def hold_of(members: Iterable[Snapshot]) -> str | None:
    """A person's hold on a recovery point: the non-empty ``smartvault:hold`` values of
    its snapshots (sorted, joined by ``; ``), or None when none carries one.

    One held snapshot holds the whole point: a hold that reached only some snapshots
    (a person tagged one by hand, or a ``hold`` stopped half-way) must still keep all of
    them, or the point would lose the snapshots that make it whole.
    """
    reasons = [text for m in members if (text := m.tags.get(TAG_HOLD))]
    return _joined(reasons) if reasons else None


def _joined(reasons: list[str]) -> str:
    return "; ".join(sorted(set(reasons)))


def _snapshot_id(snapshot: Snapshot) -> str:
    return snapshot.snapshot_id


def warn_malformed(malformed: list[Malformed], warnings: Warnings) -> None:
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
