"""Audit records and claims, as SmartVault reads and writes them (no storage details)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Literal

# --- audit -----------------------------------------------------

AuditAction = Literal[
    "create", "delete", "archive", "copy", "verify", "restore", "notify", "hold", "release"
]
Outcome = Literal["pending", "succeeded", "failed", "skipped"]


@dataclass(frozen=True)
class AuditRecord:
    run_id: str
    #: aware, UTC
    timestamp: datetime
    action: AuditAction
    outcome: Outcome
    policy: str
    region: str
    resource_id: str
    recovery_point: str
    snapshot_ids: tuple[str, ...] = ()
    reason: str = ""
    error: str = ""
    actor: str = ""
    #: the AWS account the action was in ("" in records written before fleets)
    account_id: str = ""
    #: extra facts, e.g. the full value of a tag that had to be cut to 256 characters
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecordRef:
    """The key of one audit record, to update its outcome later."""

    pk: str
    sk: str


ClaimStatus = Literal["claimed", "held", "done"]


@dataclass(frozen=True)
class ClaimResult:
    """What claiming a recovery point (or a copy of one) found.

    ``claimed``: this run now holds it until ``lease_until``. ``held``: another run
    (``run_id``) holds a live lease. ``done``: run ``run_id`` completed it with
    ``snapshot_ids``. ``version`` guards a take-over.
    """

    status: ClaimStatus
    recovery_point: str
    run_id: str
    lease_until: datetime
    snapshot_ids: tuple[str, ...] = ()
    version: int = 0
