"""The restore step on the in-memory EC2.

AWS makes a volume ``creating`` first and takes hours to bring a snapshot back from the
archive tier; moto does both at once. So waiting, a volume that never becomes available,
archived snapshots and a create that fails part-way are tested here, where the fake says
exactly what EC2 answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from smartvault.apply.claims import ClaimGuard
from smartvault.apply.ledger import RunLedger
from smartvault.apply.restore import RestoreStep
from smartvault.apply.restore import look
from smartvault.apply.restore import search
from smartvault.apply.step import RunContext
from smartvault.apply.trail import AuditTrail
from smartvault.core import restore as decide
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import Instance
from smartvault.core.model import Snapshot
from smartvault.core.model.restore import RestorePlan
from smartvault.core.tags import compact_json
from smartvault.errors import Ec2CallFailed
from tests.apply.fakes import FakeEc2
from tests.apply.test_claims import MemoryClaims
from tests.factories import REGION
from tests.factories import Clock

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
RP = "nightly/i-0abc/20261201T0300Z"
DEVICES = {"vol-f": "/dev/sdf", "vol-g": "/dev/sdg"}


@dataclass
class Records:
    """Audit records in memory, with every field of every update."""

    written: list = field(default_factory=list)
    updated: list = field(default_factory=list)

    def write(self, record):
        self.written.append(record)
        return AuditRecordRef("DAY#2026-12-02", f"sk-{len(self.written)}")

    def update_outcome(self, ref, outcome, **fields):
        self.updated.append((ref, outcome, fields))

    def pending_deletes(self, since, until):
        return []

    def close_pending(self, ref, outcome, *, error="", details):
        return True


def world(**fake) -> tuple[FakeEc2, RunContext, Records, Clock, list[str]]:
    clock = Clock(NOW)
    ec2 = FakeEc2(now=clock, **fake)
    for volume_id, _device in DEVICES.items():
        ec2.add(
            Snapshot(
                f"snap-{volume_id[4:]}",
                REGION,
                volume_id,
                "completed",
                NOW - timedelta(days=1),
                tags={
                    "CreatedBy": "SmartVault",
                    "InstanceId": "i-0abc",
                    "smartvault:policy": "nightly",
                    "smartvault:recovery-point": RP,
                    "smartvault:slot": "2026-12-01T03:00:00Z",
                    "smartvault:devices": compact_json(DEVICES),
                },
                volume_size_gib=10,
            )
        )
    ec2.instances[REGION, "i-target"] = Instance(
        "i-target", REGION, "stopped", availability_zone=f"{REGION}b"
    )
    records = Records()
    ledger = RunLedger("20261202T030000Z-00000001")
    trail = AuditTrail(records, ledger, actor="cli:tester@host", clock=clock)
    ctx = RunContext(
        ec2=ec2,
        volumes=ec2,
        trail=trail,
        claims=ClaimGuard(
            MemoryClaims(), trail, run_id=ledger.run_id, lease=timedelta(1), clock=clock
        ),
        ledger=ledger,
        clock=clock,
        sleep=lambda seconds: clock.advance(seconds=seconds),
    )
    return ec2, ctx, records, clock, []


def changes(ec2: FakeEc2) -> list[str]:
    return [call for call, _ in ec2.changes() if not call.startswith("Describe")]


def planned(ctx: RunContext, attach_to: str | None = "i-target") -> RestorePlan:
    found = search(ctx.ec2, [REGION], resource_type="instance", resource_id="i-0abc")
    (point,) = found.points
    looked = look(ctx, point, attach_to)
    return decide.plan_restore(
        point,
        now=NOW,
        zones=looked.zones,
        originals=looked.originals,
        instance=looked.instance,
        target=decide.Target(attach_to=attach_to),
    )


def test_volumes_that_stay_creating_are_waited_for_then_attached_and_recorded():
    ec2, ctx, records, _clock, said = world(creating_for=3)
    plan = planned(ctx)

    result = RestoreStep(ctx, on_progress=said.append).run(plan, wait=timedelta(minutes=15))

    assert result.ok, result.error
    assert [(m.snapshot_id, m.device) for m in result.made] == [
        ("snap-f", "/dev/sdf"),
        ("snap-g", "/dev/sdg"),
    ]
    calls = changes(ec2)
    assert calls == ["CreateVolume", "CreateVolume", "AttachVolume", "AttachVolume"]
    assert len(said) == 3  # one progress line per pause
    assert "waiting for 2 volume(s) to become available" in said[0]
    assert all(v.zone == f"{REGION}b" for v in plan.volumes)
    (record,) = records.written
    assert (record.action, record.outcome, record.actor) == (
        "restore",
        "pending",
        "cli:tester@host",
    )
    assert [v["snapshot_id"] for v in json.loads(record.details["planned"])] == ["snap-f", "snap-g"]
    ((_, outcome, fields),) = records.updated
    assert outcome == "succeeded"
    made = json.loads(fields["details"]["volumes"])
    assert [m["device"] for m in made] == ["/dev/sdf", "/dev/sdg"]


def test_a_client_token_per_run_and_snapshot_so_a_retry_makes_no_second_volume():
    ec2, ctx, _records, _clock, _said = world()
    plan = planned(ctx, attach_to=None)
    step = RestoreStep(ctx, on_progress=lambda _: None)

    first = step.run(plan, wait=timedelta(minutes=1))
    again = step.run(plan, wait=timedelta(minutes=1))  # the same run: the same tokens

    assert ec2.tokens_sent[:2] == [f"{ctx.ledger.run_id}-snap-f", f"{ctx.ledger.run_id}-snap-g"]
    assert [m.volume_id for m in first.made] == [m.volume_id for m in again.made]
    assert len(ec2.volumes_by_id) == 2


def test_a_volume_that_never_becomes_available_fails_after_the_wait_naming_it():
    ec2, ctx, records, clock, said = world(never_available={"snap-g"})
    plan = planned(ctx)

    result = RestoreStep(ctx, on_progress=said.append).run(plan, wait=timedelta(minutes=2))

    assert not result.ok
    stuck = next(m.volume_id for m in result.made if m.snapshot_id == "snap-g")
    made_ok = next(m.volume_id for m in result.made if m.snapshot_id == "snap-f")
    assert f"not available after --wait 120s: {stuck} creating" in result.error
    assert made_ok in result.error  # every volume made is named, to use or delete
    assert clock() <= NOW + timedelta(minutes=2, seconds=1)
    assert "AttachVolume" not in changes(ec2)
    assert "DeleteVolume" not in changes(ec2)
    ((_, outcome, fields),) = records.updated
    assert outcome == "failed"
    assert stuck in fields["error"]


def test_a_create_that_fails_part_way_names_what_was_made():
    _ec2, ctx, records, _clock, _said = world(
        fail={("CreateVolume", "snap-g"): Ec2CallFailed("could not create", "VolumeLimitExceeded")}
    )

    result = RestoreStep(ctx, on_progress=lambda _: None).run(planned(ctx), wait=timedelta(1))

    (made,) = result.made
    assert made.snapshot_id == "snap-f"
    assert "could not create" in result.error
    assert f"{made.volume_id} (from snap-f, not attached)" in result.error
    assert records.updated[0][1] == "failed"


def test_archived_snapshots_are_brought_back_once_each_for_the_days_and_nothing_made():
    ec2, ctx, records, _clock, _said = world()
    key = (REGION, "snap-g")
    ec2.snapshots[key] = replace(ec2.snapshots[key], storage_tier="archive")
    plan = planned(ctx)

    thawed = RestoreStep(ctx, on_progress=lambda _: None).bring_back(plan, days=5)

    assert plan.archived == ("snap-g",)
    assert thawed.ok
    assert thawed.hours == (("snap-g", 72),)
    assert ec2.restored_for == [("snap-g", 5)]
    assert changes(ec2) == ["RestoreSnapshotTier"]
    assert ec2.volumes_by_id == {}
    assert records.written[0].details["archived"] == "snap-g"
    assert records.updated[0][1] == "succeeded"
