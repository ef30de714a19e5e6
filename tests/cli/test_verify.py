"""`smartvault verify` end to end, against moto's simulated account.

moto makes a volume ``available`` at once, so here a restore test always passes; the
waiting, time limits and interruptions are shown in tests/apply/test_verify.py.
"""

from __future__ import annotations

import json

import pytest

from tests.cli import POLICY
from tests.cli import run
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots
from tests.moto_helpers import tags_of

VERIFYING = POLICY + "    verify:\n      every: 7d\n"


@pytest.fixture
def verifying_file(tmp_path) -> str:
    path = tmp_path / "weekly.yaml"
    path.write_text(VERIFYING)
    return str(path)


def test_verify_runs_only_restore_tests_and_creates_no_backup(runner, ec2, policy_file):
    launch(ec2, 1)  # a backup is due, but verify never takes one
    run(runner, "audit", "init")
    result = run(runner, "verify", "--yes", policy_file)
    assert result.exit_code == 0, result.output
    assert "No restore test is due." in result.output
    assert managed_snapshots(ec2) == []


def test_verify_deletes_test_volumes_an_earlier_run_left_even_with_no_test_due(
    runner, ec2, policy_file
):
    left = ec2.create_volume(
        Size=8,
        AvailabilityZone="us-east-1a",
        TagSpecifications=[
            {
                "ResourceType": "volume",
                "Tags": [
                    {"Key": "CreatedBy", "Value": "SmartVault"},
                    {"Key": "smartvault:verify", "Value": "nightly/i-0abc/20261130T0300Z"},
                    {"Key": "smartvault:policy", "Value": "nightly"},
                ],
            }
        ],
    )["VolumeId"]
    someone_elses = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    run(runner, "audit", "init")

    result = run(runner, "verify", "--yes", policy_file)

    assert result.exit_code == 0, result.output
    assert f"note: deleted test volume {left}" in result.output
    assert [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]] == [someone_elses]
    records = json.loads(run(runner, "audit", "list", "--format", "json").output)
    assert [(r["action"], r["outcome"], r["details"]["test_volume"]) for r in records] == [
        ("verify", "succeeded", left)
    ]


def test_verify_refuses_an_unknown_policy_name(runner, ec2, policy_file):
    result = run(runner, "verify", "--yes", "--policy", "nightly-typo", policy_file)
    assert result.exit_code == 1
    assert "nightly-typo" in result.stderr
    assert "Traceback" not in result.output


def test_verify_tests_the_newest_point_once_and_not_again_before_every_has_passed(
    runner, ec2, verifying_file
):
    launch(ec2, 1, volumes=2)
    run(runner, "audit", "init")
    run(runner, "apply", "--yes", verifying_file)  # the recovery point to test

    first = run(runner, "verify", "--yes", verifying_file)
    second = run(runner, "verify", "--yes", verifying_file)

    assert first.exit_code == 0, first.output
    assert all("smartvault:verified" in tags_of(s) for s in managed_snapshots(ec2))
    assert second.exit_code == 0, second.output
    assert "No restore test is due." in second.output
    records = json.loads(run(runner, "audit", "list", "--format", "json").output)
    assert [r["outcome"] for r in records if r["action"] == "verify"] == ["succeeded"]
    assert not [v for v in ec2.describe_volumes()["Volumes"] if "smartvault:verify" in tags_of(v)]
