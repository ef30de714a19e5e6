"""The deletion circuit breaker from the command line: a held plan, and a person's second key."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.cli import run
from tests.moto_helpers import backdate
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots

#: the policy as it was: thirty nights kept
KEPT_LONG = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
    retention:
      keep_last: 30
"""
#: the edit that went wrong: one night kept
CUT_TO_ONE = KEPT_LONG.replace("keep_last: 30", "keep_last: 1")


def last_slot(now: datetime) -> datetime:
    """The most recent 03:00 UTC at or before ``now``."""
    slot = now.astimezone(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def seed_lineage(ec2: Any, instance_id: str, nights: int, policy: str = "nightly") -> list[str]:
    """``nights`` recovery points of ``instance_id``, one per night before tonight's slot,
    tagged as SmartVault tags them (one volume each); their snapshot ids, newest first."""
    (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    (volume,) = [m["Ebs"]["VolumeId"] for m in reservation["Instances"][0]["BlockDeviceMappings"]]
    region = ec2.meta.region_name
    ids = []
    for night in range(1, nights + 1):
        slot = last_slot(datetime.now(UTC)) - timedelta(days=night)
        rp = f"{policy}/{instance_id}/{slot:%Y%m%dT%H%MZ}"
        tags = {
            "CreatedBy": "SmartVault",
            "InstanceId": instance_id,
            "smartvault:policy": policy,
            "smartvault:recovery-point": rp,
            "smartvault:slot": f"{slot:%Y-%m-%dT%H:%M:%SZ}",
        }
        snapshot_id = ec2.create_snapshot(
            VolumeId=volume,
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )["SnapshotId"]
        backdate(region, snapshot_id, slot + timedelta(seconds=4))
        ids.append(snapshot_id)
    return ids


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "nightly.yaml"
    path.write_text(text)
    return str(path)


def held_account(runner: Any, ec2: Any, tmp_path: Path) -> tuple[str, list[str], str]:
    """An instance with ten nightly points and a policy edited to keep one: the path of
    the edited policy, the ten snapshot ids (newest first), and the instance id."""
    (instance,) = launch(ec2, 1)
    snapshots = seed_lineage(ec2, instance, 10)
    run(runner, "audit", "init")
    return write(tmp_path, CUT_TO_ONE), snapshots, instance


def test_the_plan_holds_nine_of_ten_and_says_what_lifts_it(runner, ec2, tmp_path):
    path, snapshots, instance = held_account(runner, ec2, tmp_path)

    shown = run(runner, "plan", path)
    plan = json.loads(run(runner, "plan", "--format", "json", path).output)
    markdown = run(runner, "plan", "--format", "markdown", path).output

    assert shown.exit_code == 0, shown.output
    assert [a["type"] for a in plan["actions"]] == ["create"]
    held = plan["held_deletes"]
    assert sorted(s for h in held for s in h["snapshot_ids"]) == sorted(snapshots[1:])
    assert {json.dumps(h["held_by"], sort_keys=True) for h in held} == {
        json.dumps(
            {
                "rule": "max_delete_fraction",
                "limit": 0.5,
                "deletes": 9,
                "completed": 10,
                "resource_id": instance,
            },
            sort_keys=True,
        )
    }
    assert "safety held 9 deletions, none is planned" in shown.output
    assert "✗ held" in shown.output
    assert "9 deletions held by safety." in shown.output
    assert "⛔ **safety held 9 deletions** of `nightly`: none of them is made" in markdown


def test_apply_makes_the_backups_deletes_nothing_and_exits_1(runner, ec2, tmp_path):
    path, snapshots, _ = held_account(runner, ec2, tmp_path)

    result = run(runner, "apply", "--yes", path)

    assert result.exit_code == 1, result.output
    assert "safety held 9 deletions of nightly: none was made" in result.stderr
    assert "smartvault apply --allow-deletes nightly" in result.stderr
    remaining = {s["SnapshotId"] for s in managed_snapshots(ec2)}
    assert set(snapshots) < remaining
    assert len(remaining) == 11  # tonight's backup was still made
    records = json.loads(run(runner, "audit", "list", "--format", "json").output)
    assert [r["action"] for r in records] == ["create"]


def test_allow_deletes_deletes_exactly_the_nine_and_each_record_says_so(runner, ec2, tmp_path):
    path, snapshots, instance = held_account(runner, ec2, tmp_path)

    result = run(runner, "apply", "--yes", "--allow-deletes", "nightly", path)

    assert result.exit_code == 0, result.output
    remaining = {s["SnapshotId"] for s in managed_snapshots(ec2)}
    assert snapshots[0] in remaining
    assert not set(snapshots[1:]) & remaining
    records = json.loads(run(runner, "audit", "list", "--format", "json").output)
    deletes = [r for r in records if r["action"] == "delete"]
    assert sorted(s for r in deletes for s in r["snapshot_ids"]) == sorted(snapshots[1:])
    assert {r["outcome"] for r in deletes} == {"succeeded"}
    assert {r["details"]["safety_lifted"] for r in deletes} == {
        "--allow-deletes: max_delete_fraction 0.5: this run would delete 9 of the 10 "
        f"completed recovery points of {instance}"
    }
    assert all(r["actor"].startswith("cli:") for r in deletes)


def test_a_saved_plan_carries_its_second_key(runner, ec2, tmp_path):
    path, snapshots, _ = held_account(runner, ec2, tmp_path)
    saved = tmp_path / "plan.json"
    run(runner, "plan", "--allow-deletes", "nightly", "--out", str(saved), path)

    both = run(runner, "apply", "--yes", "--plan", str(saved), "--allow-deletes", "nightly", path)
    applied = run(runner, "apply", "--yes", "--plan", str(saved), path)

    assert json.loads(saved.read_text())["allow_deletes"] == ["nightly"]
    assert both.exit_code == 1
    assert "--allow-deletes cannot be given with --plan" in both.stderr
    assert applied.exit_code == 0, applied.output
    assert not set(snapshots[1:]) & {s["SnapshotId"] for s in managed_snapshots(ec2)}


def test_allow_deletes_of_an_unknown_policy_is_refused_with_a_suggestion(runner, ec2, tmp_path):
    path, _, _ = held_account(runner, ec2, tmp_path)

    planned = run(runner, "plan", "--allow-deletes", "nightlyy", path)
    applied = run(runner, "apply", "--yes", "--allow-deletes", "nightlyy", path)

    for result in (planned, applied):
        assert result.exit_code == 1
        assert "no policy named nightlyy (did you mean nightly?)" in result.stderr
        assert "--allow-deletes" in result.stderr
        assert "Traceback" not in result.output
    assert len(managed_snapshots(ec2)) == 10


def test_the_policy_as_it_was_deletes_nothing_and_holds_nothing(runner, ec2, tmp_path):
    (instance,) = launch(ec2, 1)
    seed_lineage(ec2, instance, 10)

    plan = json.loads(run(runner, "plan", "--format", "json", write(tmp_path, KEPT_LONG)).output)

    assert plan["held_deletes"] == []
    assert [a["type"] for a in plan["actions"]] == ["create"]
