"""What applying a plan needs from AWS, as Protocols.

``smartvault.aws`` implements them against boto3
(:class:`~smartvault.aws.ec2.Ec2Snapshots`, :class:`~smartvault.aws.volumes.Ec2Volumes`
and :class:`~smartvault.aws.audit.AuditLog`); tests may implement them in memory. Failures
arrive as SmartVault's own errors: :class:`~smartvault.errors.Ec2CallFailed` (and
:class:`~smartvault.errors.Ec2OutcomeUnknown`) from EC2, :class:`~smartvault.errors.AuditError`
from the audit table. Nothing here knows botocore.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Protocol

from smartvault.core.model import AuditRecord
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import ClaimResult
from smartvault.core.model import Instance
from smartvault.core.model import Outcome
from smartvault.core.model import Snapshot
from smartvault.core.model import Volume


class Ec2(Protocol):
    """The snapshot calls of :mod:`smartvault.aws.ec2`."""

    def find(self, region: str, filter_name: str, values: Sequence[str]) -> list[Snapshot]: ...

    def by_id(self, region: str, ids: Sequence[str]) -> dict[str, Snapshot]: ...

    def delete(self, region: str, snapshot_id: str) -> None: ...

    def archive(self, region: str, snapshot_id: str) -> None: ...

    def create_snapshots(
        self,
        region: str,
        instance_id: str,
        *,
        exclude_boot_volume: bool,
        description: str,
        tags: Mapping[str, str],
    ) -> tuple[str, ...]: ...

    def create_snapshot(
        self, region: str, volume_id: str, *, description: str, tags: Mapping[str, str]
    ) -> tuple[str, ...]: ...

    def copy_snapshot(
        self,
        region: str,
        source_region: str,
        source_id: str,
        *,
        description: str,
        tags: Mapping[str, str],
        kms_key_id: str | None = None,
    ) -> str: ...


class Volumes(Protocol):
    """The volume calls of :mod:`smartvault.aws.volumes`."""

    def volumes(self, region: str, filter_name: str, values: Sequence[str]) -> list[Volume]: ...

    def instance(self, region: str, instance_id: str) -> Instance | None: ...

    def zones(self, region: str) -> tuple[str, ...]: ...

    def create_volume(
        self,
        region: str,
        snapshot_id: str,
        *,
        zone: str,
        volume_type: str,
        tags: Mapping[str, str],
        client_token: str,
        iops: int | None = None,
        throughput: int | None = None,
        kms_key_id: str | None = None,
    ) -> Volume: ...

    def attach(self, region: str, volume_id: str, instance_id: str, device: str) -> None: ...

    def delete_volume(self, region: str, volume_id: str) -> None: ...

    def restore_from_archive(self, region: str, snapshot_id: str, days: int) -> int | None: ...

    def mark_verified(self, region: str, snapshot_ids: Sequence[str], value: str) -> None: ...


class Records(Protocol):
    """The audit records of :class:`~smartvault.aws.audit.AuditRecords`."""

    def write(self, record: AuditRecord) -> AuditRecordRef: ...

    def update_outcome(
        self,
        ref: AuditRecordRef,
        outcome: Outcome,
        *,
        error: str = "",
        snapshot_ids: Sequence[str] | None = None,
        reason: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None: ...

    def pending_deletes(
        self, since: datetime, until: datetime
    ) -> list[tuple[AuditRecordRef, AuditRecord]]: ...

    def close_pending(
        self,
        ref: AuditRecordRef,
        outcome: Outcome,
        *,
        error: str = "",
        details: Mapping[str, str],
    ) -> bool: ...


class Claims(Protocol):
    """The create and copy claims of :class:`~smartvault.aws.audit.Claims`."""

    def acquire(self, claim_id: str, run_id: str, lease: timedelta) -> ClaimResult: ...

    def renew(self, claim: ClaimResult, run_id: str, lease: timedelta) -> ClaimResult | None: ...

    def take_over(self, done: ClaimResult, run_id: str, lease: timedelta) -> ClaimResult: ...

    def complete(self, claim_id: str, run_id: str, snapshot_ids: Sequence[str]) -> None: ...

    def release(
        self, claim_id: str, run_id: str | None = None, *, only_done: bool = False
    ) -> bool: ...


class Audit(Protocol):
    """The audit table as a whole: its records, its claims, and whether it can be written."""

    @property
    def records(self) -> Records: ...

    @property
    def claims(self) -> Claims: ...

    def check_writable(self) -> None: ...
