"""The catch-up schedule finishes what the last run left (DESIGN §6), against moto.

The handler is invoked with the very inputs the template gives the schedules, so these
tests also prove that the catch-up schedule's event runs every policy, for real.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import yaml

import lambda_entry
from smartvault.deploy import cloudformation_template
from smartvault.formats.policy import load_policies
from tests.moto_helpers import ACCOUNT
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots
from tests.moto_helpers import tags_of
from tests.test_lambda_app import FakeContext

POLICY = """\
version: 1
policies:
  - name: nightly
    regions: [us-east-1]
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
    copies:
      - region: us-west-2
"""


@pytest.fixture
def account(tmp_path, monkeypatch, aws) -> dict[str, Any]:
    """An account with an audit table and two instances, and the schedules' inputs."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "nightly.yaml").write_text(POLICY)
    monkeypatch.setenv("SMARTVAULT_POLICY_PATH", str(folder))
    monkeypatch.setenv("SMARTVAULT_REGIONS", "us-east-1")
    monkeypatch.setenv("SMARTVAULT_AUDIT_TABLE", "audit")
    from smartvault.engine import Engine
    from smartvault.settings import Settings

    Engine(Settings(regions=("us-east-1",), audit_table="audit")).audit_log().ensure_table()
    launch(boto3.client("ec2", region_name="us-east-1"), 2)
    text, _ = cloudformation_template(load_policies([str(folder)]), regions=["us-east-1"])
    found = yaml.safe_load(text)["Resources"]
    return {
        "scheduled": json.loads(found["PolicyScheduleNightly"]["Properties"]["Target"]["Input"]),
        "catch_up": json.loads(found["CatchUpSchedule"]["Properties"]["Target"]["Input"]),
    }


def snapshots(region: str) -> list[dict[str, Any]]:
    return managed_snapshots(boto3.client("ec2", region_name=region))


def fail_snapshots(region: str, snapshot_ids: list[str]) -> None:
    """Put snapshots in state ``error``, as EBS does when a snapshot fails after its call
    succeeded (moto completes every snapshot at once: no API can fail one)."""
    from moto.ec2.models import ec2_backends

    for snapshot_id in snapshot_ids:
        ec2_backends[ACCOUNT][region].snapshots[snapshot_id].status = "error"


def test_one_catch_up_run_remakes_a_failed_slot_and_copies_a_completed_source(account):
    """One nightly run, two instances: one recovery point then fails (a snapshot in state
    ``error``), the other completes. The first catch-up run copies the completed one,
    deletes the failed one (releasing its claim) and makes the failed slot's recovery
    point again. One scenario, because each moto account costs seconds to set up."""
    lambda_entry.handler(account["scheduled"], FakeContext())
    failed, source = snapshots("us-east-1")
    recovery_point = tags_of(failed)["smartvault:recovery-point"]
    fail_snapshots("us-east-1", [failed["SnapshotId"]])
    assert snapshots("us-west-2") == []  # the source was pending when that run planned

    first = lambda_entry.handler(account["catch_up"], FakeContext())

    assert (first["planned"]["copy"], first["planned"]["delete"]) == (1, 1)
    assert first["planned"]["create"] == 1
    (copy,) = snapshots("us-west-2")
    assert tags_of(copy)["smartvault:source"] == f"us-east-1/{source['SnapshotId']}"
    assert (
        tags_of(copy)["smartvault:recovery-point"] == tags_of(source)["smartvault:recovery-point"]
    )
    remade = [
        s
        for s in snapshots("us-east-1")
        if tags_of(s)["smartvault:recovery-point"] == recovery_point
    ]
    assert [s["State"] for s in remade] == ["completed"]
    assert remade[0]["SnapshotId"] != failed["SnapshotId"]
