"""The shared vocabulary: policies, what exists in the account, and plans.

Everything here is an immutable value built from the standard library only, so
the pure core (schedules, retention, planner, rendering) can import it without
pulling in YAML, JSON Schema or boto3. Mappings held by these records are never
mutated after construction.
"""

from __future__ import annotations

from smartvault.core.model.account import BlockDevice
from smartvault.core.model.account import Image
from smartvault.core.model.account import Instance
from smartvault.core.model.account import Inventory
from smartvault.core.model.account import Snapshot
from smartvault.core.model.account import Volume
from smartvault.core.model.account import VolumeAttachment
from smartvault.core.model.audit import AuditAction
from smartvault.core.model.audit import AuditRecord
from smartvault.core.model.audit import AuditRecordRef
from smartvault.core.model.audit import ClaimResult
from smartvault.core.model.audit import ClaimStatus
from smartvault.core.model.audit import Outcome
from smartvault.core.model.plan import ACTION_TYPES
from smartvault.core.model.plan import Action
from smartvault.core.model.plan import ArchiveAction
from smartvault.core.model.plan import CopyAction
from smartvault.core.model.plan import CreateAction
from smartvault.core.model.plan import DeleteAction
from smartvault.core.model.plan import HeldBy
from smartvault.core.model.plan import HeldDelete
from smartvault.core.model.plan import Kept
from smartvault.core.model.plan import Orphan
from smartvault.core.model.plan import Plan
from smartvault.core.model.plan import PlanWarning
from smartvault.core.model.plan import PolicyRegion
from smartvault.core.model.plan import PolicySlot
from smartvault.core.model.plan import Skipped
from smartvault.core.model.plan import VerifyAction
from smartvault.core.model.policy import DEFAULT_RETENTION
from smartvault.core.model.policy import DEFAULT_SAFETY
from smartvault.core.model.policy import DEFAULT_TIMEOUT
from smartvault.core.model.policy import TIMEOUT_MAX
from smartvault.core.model.policy import TIMEOUT_MIN
from smartvault.core.model.policy import CopyRule
from smartvault.core.model.policy import Duration
from smartvault.core.model.policy import Notify
from smartvault.core.model.policy import Policy
from smartvault.core.model.policy import PolicySet
from smartvault.core.model.policy import ResourceType
from smartvault.core.model.policy import Retention
from smartvault.core.model.policy import RetentionRule
from smartvault.core.model.policy import Safety
from smartvault.core.model.policy import Schedule
from smartvault.core.model.policy import Selector
from smartvault.core.model.policy import SnapshotSettings
from smartvault.core.model.policy import TagCondition
from smartvault.core.model.policy import TagFilter
from smartvault.core.model.policy import Tags
from smartvault.core.model.policy import Verify
from smartvault.core.model.policy import format_timeout
from smartvault.core.model.policy import parse_timeout
from smartvault.core.model.recovery_points import RECOVERY_POINT_SLOT_FORMAT
from smartvault.core.model.recovery_points import RecoveryPointId
from smartvault.core.model.recovery_points import is_managed
from smartvault.core.model.recovery_points import read_recovery_point
from smartvault.core.model.recovery_points import recovery_point_id
from smartvault.core.model.volumes import VolumeSpec
from smartvault.core.model.volumes import decode_volume_specs
from smartvault.core.model.volumes import encode_volume_specs

__all__ = [
    "ACTION_TYPES",
    "DEFAULT_RETENTION",
    "DEFAULT_SAFETY",
    "DEFAULT_TIMEOUT",
    "RECOVERY_POINT_SLOT_FORMAT",
    "TIMEOUT_MAX",
    "TIMEOUT_MIN",
    "Action",
    "ArchiveAction",
    "AuditAction",
    "AuditRecord",
    "AuditRecordRef",
    "BlockDevice",
    "ClaimResult",
    "ClaimStatus",
    "CopyAction",
    "CopyRule",
    "CreateAction",
    "DeleteAction",
    "Duration",
    "HeldBy",
    "HeldDelete",
    "Image",
    "Instance",
    "Inventory",
    "Kept",
    "Notify",
    "Orphan",
    "Outcome",
    "Plan",
    "PlanWarning",
    "Policy",
    "PolicyRegion",
    "PolicySet",
    "PolicySlot",
    "RecoveryPointId",
    "ResourceType",
    "Retention",
    "RetentionRule",
    "Safety",
    "Schedule",
    "Selector",
    "Skipped",
    "Snapshot",
    "SnapshotSettings",
    "TagCondition",
    "TagFilter",
    "Tags",
    "Verify",
    "VerifyAction",
    "Volume",
    "VolumeAttachment",
    "VolumeSpec",
    "decode_volume_specs",
    "encode_volume_specs",
    "format_timeout",
    "is_managed",
    "parse_timeout",
    "read_recovery_point",
    "recovery_point_id",
]
