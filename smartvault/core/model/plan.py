"""The plan: actions to take, with their reasons, and what was kept, skipped or orphaned.

Every action, kept and skipped entry also says which resource it is about by name
(``resource_name``: its ``Name`` tag, when known) and which retention rule its lineage
follows (``retention``, spelled as in docs/plan-format.md: ``default``, ``retention``,
``retention_by_tag[N]``, each maybe followed by ``+retention_tag``, or ``copies[N]``;
None when no rule applies: a disabled policy, a copy whose copy rule is gone, or a
resource whose recorded tags cannot be read).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from fractions import Fraction
from typing import ClassVar
from typing import Literal

from smartvault.core.model.policy import ResourceType
from smartvault.core.model.policy import Tags

#: the plan's action types, in the one order every summary and rendering uses
ACTION_TYPES = ("create", "delete", "archive", "copy", "verify")


# --- the plan --------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateAction:
    """Take one recovery point: one ``CreateSnapshots`` (instance) or ``CreateSnapshot``."""

    type: ClassVar[str] = "create"
    region: str
    policy: str
    resource_id: str
    resource_type: ResourceType
    recovery_point: str
    slot: datetime
    volume_ids: tuple[str, ...]
    reason: str
    #: every tag to write at creation, computed by the planner
    tags: Tags = field(default_factory=dict)
    exclude_boot_volume: bool = False
    #: key -> whole value of each tag in ``tags`` cut to 256 characters (for the audit record)
    full_tag_values: Mapping[str, str] = field(default_factory=dict)
    resource_name: str | None = None
    retention: str | None = None


@dataclass(frozen=True, slots=True)
class _RecoveryPointAction:
    """An action on the snapshots of a recovery point that exists."""

    region: str
    policy: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    created_at: datetime
    reason: str
    resource_name: str | None = None
    retention: str | None = None


@dataclass(frozen=True, slots=True)
class HeldBy:
    """The ``safety`` rule that held a policy's deletions in a region, with its numbers.

    ``max_delete_fraction``: one lineage (``resource_id``, in ``region``) would lose
    ``deletes`` of its ``completed`` recovery points, more than ``limit`` of them.
    ``max_deletes``: the policy would delete ``deletes`` recovery points in the region,
    more than ``limit``.
    """

    rule: Literal["max_delete_fraction", "max_deletes"]
    limit: float | int
    deletes: int
    #: the lineage's completed recovery points (``max_delete_fraction`` only)
    completed: int | None = None
    #: the lineage that tripped it (``max_delete_fraction`` only)
    resource_id: str | None = None

    @staticmethod
    def headline(rules: Sequence[HeldBy]) -> HeldBy:
        """The rule a policy's held deletions in a region are named by (the plan's warning,
        the rendered plan, the notification): the lineage that would lose the largest
        share (ties: the first resource id), else the cap. ``rules`` is not empty."""
        shares = sorted(
            (r for r in rules if r.rule == "max_delete_fraction"),
            key=lambda r: r.resource_id or "",
        )
        if not shares:
            return rules[0]
        return max(shares, key=lambda r: Fraction(r.deletes, r.completed or 1))

    def __str__(self) -> str:
        if self.rule == "max_deletes":
            return (
                f"max_deletes {self.limit}: this run would delete {self.deletes} recovery "
                "points of the policy in the region"
            )
        return (
            f"max_delete_fraction {self.limit}: this run would delete {self.deletes} of the "
            f"{self.completed} completed recovery points of {self.resource_id}"
        )


@dataclass(frozen=True, slots=True)
class DeleteAction(_RecoveryPointAction):
    """Delete a recovery point's snapshots: retention keeps it no more, or it failed."""

    type: ClassVar[str] = "delete"
    #: the ``safety`` rule that would have held it, when ``--allow-deletes`` lifted it
    #: for this run (the person's second key, recorded with the deletion)
    safety_lifted: HeldBy | None = None


@dataclass(frozen=True, slots=True)
class HeldDelete:
    """A deletion ``safety`` held back: planned by retention, not made this run."""

    action: DeleteAction
    held_by: HeldBy


@dataclass(frozen=True, slots=True)
class ArchiveAction(_RecoveryPointAction):
    """Move a retained recovery point's snapshots to the EBS archive tier."""

    type: ClassVar[str] = "archive"


@dataclass(frozen=True, slots=True)
class VerifyAction(_RecoveryPointAction):
    """A restore test: volumes from a recovery point's snapshots, timed until every one
    is ``available``; then the snapshots are tagged ``smartvault:verified`` and the test
    volumes deleted."""

    type: ClassVar[str] = "verify"
    #: a test volume not ``available`` by then is a failed verification
    timeout: timedelta = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class CopyAction:
    type: ClassVar[str] = "copy"
    region: str
    policy: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    created_at: datetime
    target_region: str
    reason: str
    kms_key_id: str | None = None
    resource_name: str | None = None
    #: ``copies[N]``: the copy rule that asks for it, whose retention keeps the copies
    retention: str | None = None


Action = CreateAction | DeleteAction | ArchiveAction | CopyAction | VerifyAction


@dataclass(frozen=True, slots=True)
class Kept:
    region: str
    policy: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    created_at: datetime
    #: the rules that keep it: keep_last, max_age, hourly, daily, weekly, monthly,
    #: yearly, disabled (its policy is disabled), pending (not yet completed)
    kept_by: tuple[str, ...]
    #: when a restore test last proved it restorable: the oldest ``smartvault:verified``
    #: time of its snapshots when every one carries a readable one, else None
    verified: datetime | None = None
    resource_name: str | None = None
    retention: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    region: str
    policy: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    reason: str
    resource_name: str | None = None
    retention: str | None = None


@dataclass(frozen=True, slots=True)
class Orphan:
    """Managed snapshots whose policy is in no loaded file: listed, never deleted."""

    region: str
    policy: str
    recovery_point: str
    snapshot_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class PlanWarning:
    message: str
    policy: str | None = None
    resource_id: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class PolicyRegion:
    """What one policy's selector found in one region it covers."""

    region: str
    #: resources the policy backs up there
    selected: int = 0
    #: resources ``selector.tags`` matches that ``exclude_tags`` or ``instance_states``
    #: then removes
    excluded: int = 0


@dataclass(frozen=True)
class PolicySlot:
    name: str
    file: str
    #: None for a disabled policy
    slot: datetime | None
    #: one entry per region read for resources that the policy covers, sorted by region
    regions: tuple[PolicyRegion, ...] = ()

    @property
    def selected(self) -> int:
        return sum(r.selected for r in self.regions)

    @property
    def excluded(self) -> int:
        return sum(r.excluded for r in self.regions)


@dataclass(frozen=True)
class Plan:
    at: datetime
    generated_at: datetime
    account_id: str
    regions: tuple[str, ...]
    policies: tuple[PolicySlot, ...] = ()
    actions: tuple[Action, ...] = ()
    kept: tuple[Kept, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    orphans: tuple[Orphan, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    #: deletions ``safety`` held back (none of them is among ``actions``)
    held_deletes: tuple[HeldDelete, ...] = ()
    #: the policies whose ``safety`` a person lifted for this plan (``--allow-deletes``)
    allow_deletes: tuple[str, ...] = ()
    format_version: int = 1

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTION_TYPES, 0)
        for action in self.actions:
            counts[action.type] += 1
        counts["kept"] = len(self.kept)
        counts["skipped"] = len(self.skipped)
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)
