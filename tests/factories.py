"""Builders for test data: sensible defaults, override what the test is about."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from smartvault.core.model import ArchiveAction
from smartvault.core.model import AuditRecord
from smartvault.core.model import BlockDevice
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Image
from smartvault.core.model import Instance
from smartvault.core.model import Inventory
from smartvault.core.model import Kept
from smartvault.core.model import Orphan
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.model import Policy
from smartvault.core.model import PolicySlot
from smartvault.core.model import Safety
from smartvault.core.model import Schedule
from smartvault.core.model import Selector
from smartvault.core.model import Skipped
from smartvault.core.model import Snapshot
from smartvault.core.model import TagCondition
from smartvault.core.model import TagFilter
from smartvault.core.model import VerifyAction
from smartvault.core.model import Volume
from smartvault.core.model import recovery_point_id
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_SLOT
from smartvault.formats.policy import parse_policies

REGION = "us-east-1"
ACCOUNT = "123456789012"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class Clock:
    """A clock a test sets and moves: ``clock()`` is now, ``clock.now = …`` or
    ``clock.advance(hours=1)`` changes it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def tag_filter(**tags: str | list[str]) -> TagFilter:
    return TagFilter(
        tuple(
            TagCondition(k, () if v == "*" else tuple(v) if isinstance(v, list) else (v,))
            for k, v in tags.items()
        )
    )


#: ``safety`` that never holds: for tests of retention itself, whose plans delete most of
#: a lineage at once (the deletion circuit breaker has tests of its own)
NO_BREAKER = Safety(max_delete_fraction=1)


def make_policy(name: str = "nightly", **overrides: Any) -> Policy:
    fields: dict[str, Any] = {
        "name": name,
        "schedule": Schedule("cron(0 3 * * ? *)", "UTC"),
        "selector": Selector(tags=tag_filter(backup="true")),
        "file": "policies/test.yaml",
        "line": 3,
    }
    fields.update(overrides)
    return Policy(**fields)


def make_instance(
    instance_id: str = "i-0000000000000001",
    *,
    tags: dict[str, str] | None = None,
    volumes: int = 1,
    state: str = "running",
    region: str = REGION,
) -> Instance:
    suffix = instance_id.split("-")[-1]
    return Instance(
        instance_id=instance_id,
        region=region,
        state=state,
        tags={"backup": "true"} if tags is None else tags,
        availability_zone=f"{region}a",
        root_device_name="/dev/xvda",
        block_devices=tuple(
            BlockDevice(
                "/dev/xvda" if i == 0 else f"/dev/xvd{chr(ord('b') + i - 1)}", f"vol-{suffix}{i}"
            )
            for i in range(volumes)
        ),
    )


def volumes_of(instance: Instance) -> list[Volume]:
    from smartvault.core.model import VolumeAttachment

    return [
        Volume(
            volume_id=d.volume_id,
            region=instance.region,
            availability_zone=instance.availability_zone,
            size_gib=8,
            tags=dict(instance.tags),
            attachments=(VolumeAttachment(instance.instance_id, d.device_name),),
        )
        for d in instance.block_devices
    ]


def make_recovery_point(
    policy: str,
    resource_id: str,
    slot: datetime,
    *,
    volume_ids: tuple[str, ...] = ("vol-1",),
    created_at: datetime | None = None,
    state: str = "completed",
    region: str = REGION,
    extra_tags: dict[str, str] | None = None,
    snapshot_prefix: str | None = None,
) -> list[Snapshot]:
    """The snapshots of one managed recovery point, tagged as SmartVault tags them."""
    rp = recovery_point_id(policy, resource_id, slot)
    created = created_at or slot.replace(second=4)
    prefix = snapshot_prefix or "snap-" + hashlib.sha256(rp.encode()).hexdigest()[:12]
    tags = {
        TAG_CREATED_BY: CREATED_BY_VALUE,
        TAG_POLICY: policy,
        TAG_RECOVERY_POINT: rp,
        TAG_SLOT: slot.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if resource_id.startswith("i-"):
        tags[TAG_INSTANCE_ID] = resource_id
    tags.update(extra_tags or {})
    return [
        Snapshot(
            snapshot_id=f"{prefix}{i}",
            region=region,
            volume_id=vol,
            state=state,
            start_time=created,
            tags=dict(tags),
            volume_size_gib=8,
        )
        for i, vol in enumerate(volume_ids)
    ]


def make_inventory(
    *,
    instances: list[Instance] | None = None,
    volumes: list[Volume] | None = None,
    snapshots: list[Snapshot] | None = None,
    images: list[Image] | None = None,
    regions: tuple[str, ...] = (REGION,),
    resource_regions: tuple[str, ...] | None = None,
) -> Inventory:
    instances = instances or []
    if volumes is None:
        volumes = [v for inst in instances for v in volumes_of(inst)]
    return Inventory(
        account_id=ACCOUNT,
        regions=regions,
        instances=tuple(instances),
        volumes=tuple(volumes),
        snapshots=tuple(snapshots or []),
        images=tuple(images or []),
        resource_regions=resource_regions,
    )


# One action of each type, as in the plan format's documentation.
CREATE = CreateAction(
    region="us-east-1",
    policy="prod-nightly",
    resource_id="i-0abc",
    resource_type="instance",
    recovery_point="prod-nightly/i-0abc/20261128T0200Z",
    slot=utc(2026, 11, 28, 2),
    volume_ids=("vol-1", "vol-2"),
    reason="due: newest recovery point 2026-11-27T02:00:04Z is before slot 2026-11-28T02:00:00Z",
    tags={"smartvault:policy": "prod-nightly", "CreatedBy": "SmartVault"},
)
DELETE = DeleteAction(
    region="us-east-1",
    policy="prod-nightly",
    resource_id="i-0abc",
    recovery_point="prod-nightly/i-0abc/20261119T0200Z",
    snapshot_ids=("snap-1", "snap-2"),
    created_at=utc(2026, 11, 19, 2, 0, 3),
    reason="older than max_age 7d; not kept by keep_last 3",
)
ARCHIVE = ArchiveAction(
    region="us-east-1",
    policy="prod-nightly",
    resource_id="i-0abc",
    recovery_point="prod-nightly/i-0abc/20260801T0200Z",
    snapshot_ids=("snap-7",),
    created_at=utc(2026, 8, 1, 2, 0, 5),
    reason="older than archive.after 90d",
)
COPY = CopyAction(
    region="us-east-1",
    policy="prod-nightly",
    resource_id="i-0abc",
    recovery_point="prod-nightly/i-0abc/20261127T0200Z",
    snapshot_ids=("snap-3",),
    created_at=utc(2026, 11, 27, 2, 0, 4),
    target_region="us-west-2",
    reason="copy rule us-west-2",
    kms_key_id="alias/backup",
)
VERIFY = VerifyAction(
    region="us-west-2",
    policy="prod-nightly",
    resource_id="i-0abc",
    recovery_point="prod-nightly/i-0abc/20261127T0200Z",
    snapshot_ids=("snap-13", "snap-14"),
    created_at=utc(2026, 11, 27, 2, 10, 4),
    reason="no verified recovery point yet",
    timeout=timedelta(minutes=45),
)


def make_record(now: datetime, **fields: Any) -> AuditRecord:
    """A succeeded ``create`` audit record two hours before ``now``; ``fields`` override."""
    base: dict[str, Any] = {
        "run_id": "run-1",
        "timestamp": now - timedelta(hours=2),
        "action": "create",
        "outcome": "succeeded",
        "policy": "nightly",
        "region": "us-east-1",
        "resource_id": "i-0abc",
        "recovery_point": "nightly/i-0abc/20261202T0300Z",
    }
    return AuditRecord(**{**base, **fields})


def make_plan(**overrides: Any) -> Plan:
    """A small plan with one of everything; override what the test is about."""
    fields: dict[str, Any] = {
        "at": utc(2026, 11, 28, 17),
        "generated_at": utc(2026, 11, 28, 17, 0, 2),
        "account_id": "123456789012",
        "regions": ("us-east-1",),
        "policies": (PolicySlot("prod-nightly", "policies/prod.yaml", utc(2026, 11, 28, 2)),),
        "actions": (CREATE, DELETE),
        "kept": (
            Kept(
                "us-east-1",
                "prod-nightly",
                "i-0abc",
                "prod-nightly/i-0abc/20261127T0200Z",
                ("snap-3",),
                utc(2026, 11, 27, 2, 0, 4),
                ("keep_last", "daily"),
            ),
        ),
        "skipped": (
            Skipped(
                "us-east-1",
                "prod-nightly",
                "i-0abc",
                "prod-nightly/i-0abc/20261101T0200Z",
                ("snap-5",),
                "in use by AMI ami-0123",
            ),
        ),
        "orphans": (
            Orphan(
                "us-east-1",
                "old-policy",
                "old-policy/i-9/20250101T0000Z",
                ("snap-9",),
                utc(2025, 1, 1, 0, 0, 4),
            ),
        ),
        "warnings": (PlanWarning("backups are failing", "prod-nightly", "i-0abc", "us-east-1"),),
    }
    fields.update(overrides)
    return Plan(**fields)


# --- policy documents ---------------------------------------------------------

MINIMAL_POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags:
        backup: "true"
    schedule:
      expression: cron(0 3 * * ? *)
"""


def parse_one(text: str) -> Any:
    """The single policy in ``text``, which must be valid."""
    policies, problems = parse_policies(textwrap.dedent(text), "p.yaml")
    assert problems == []
    assert len(policies) == 1
    return policies[0]


def problems_of(text: str) -> list[str]:
    policies, problems = parse_policies(textwrap.dedent(text), "p.yaml")
    assert policies == []
    return [str(p) for p in problems]


def with_policy_lines(*lines: str) -> str:
    """MINIMAL_POLICY plus ``lines`` (indented as policy keys, or deeper as written)."""
    return MINIMAL_POLICY + "".join(f"    {line}\n" for line in lines)


def with_tags(tags: str) -> str:
    return MINIMAL_POLICY.replace('        backup: "true"\n', tags)
