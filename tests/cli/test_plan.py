"""`smartvault plan` against moto's simulated account: JSON, Markdown, --at, --out, exit codes."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import jsonschema
import pytest

from smartvault.cli import cli
from smartvault.formats.plan_json import plan_schema
from tests.cli import POLICY
from tests.cli import run
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots


def test_plan_json_lists_one_create_per_due_instance_and_matches_the_schema(
    runner, ec2, policy_file
):
    instances = launch(ec2, 3)
    launch(ec2, 1, tags={"backup": "false"})

    result = run(runner, "plan", "--format", "json", policy_file)

    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    jsonschema.validate(plan, plan_schema())
    creates = [a for a in plan["actions"] if a["type"] == "create"]
    assert sorted(a["resource_id"] for a in creates) == sorted(instances)
    assert plan["summary"]["create"] == 3


def test_plan_never_writes_to_aws(runner, ec2, policy_file):
    launch(ec2, 2)

    run(runner, "plan", policy_file)

    assert managed_snapshots(ec2) == []


def test_detailed_exitcode_is_2_with_changes_and_0_once_applied(runner, ec2, policy_file):
    launch(ec2, 2)
    assert run(runner, "audit", "init").exit_code == 0

    assert run(runner, "plan", "--detailed-exitcode", policy_file).exit_code == 2
    assert run(runner, "apply", "--yes", policy_file).exit_code == 0
    assert run(runner, "plan", "--detailed-exitcode", policy_file).exit_code == 0


def test_a_due_restore_test_is_a_change_until_the_snapshots_are_verified(
    runner, ec2, policy_file, tmp_path
):
    """Made with a policy without ``verify``, so the apply does no restore test itself."""
    launch(ec2, 1)
    assert run(runner, "audit", "init").exit_code == 0
    assert run(runner, "apply", "--yes", policy_file).exit_code == 0
    testing = tmp_path / "testing.yaml"
    testing.write_text(POLICY + "    verify: {every: 7d}\n")

    due = run(runner, "plan", "--detailed-exitcode", "--format", "json", str(testing))

    assert due.exit_code == 2, due.output
    plan = json.loads(due.stdout)
    assert [a["type"] for a in plan["actions"]] == ["verify"]
    assert plan["actions"][0]["reason"] == "no verified recovery point yet"
    assert [k["verified"] for k in plan["kept"]] == [None]

    ids = [s["SnapshotId"] for s in managed_snapshots(ec2)]
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    ec2.create_tags(Resources=ids, Tags=[{"Key": "smartvault:verified", "Value": stamp}])

    done = run(runner, "plan", "--detailed-exitcode", "--format", "json", str(testing))

    assert done.exit_code == 0, done.output
    assert [k["verified"] for k in json.loads(done.stdout)["kept"]] == [stamp]


def test_plan_without_a_region_says_how_to_set_one(runner, policy_file, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)

    result = runner.invoke(cli, ["plan", policy_file])

    assert result.exit_code == 1
    assert "--region" in result.output
    assert "Traceback" not in result.output


def test_plan_with_an_unreachable_endpoint_fails_in_one_readable_line(runner, policy_file):
    result = runner.invoke(
        cli, ["--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9", "plan", policy_file]
    )

    assert result.exit_code == 1
    assert "could not reach" in result.output
    assert "Traceback" not in result.output


def test_plan_markdown_starts_with_a_summary_table(runner, ec2, policy_file):
    launch(ec2, 1)

    result = run(runner, "plan", "--format", "markdown", policy_file)

    assert result.exit_code == 0
    assert "| create |" in result.output.lower() or "create" in result.output.split("\n\n")[1]


def test_plan_at_a_later_time_shows_what_that_run_would_delete(runner, ec2, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace("keep_last: 2", "keep_last: 1"))
    launch(ec2, 1)
    run(runner, "audit", "init")
    run(runner, "apply", "--yes", str(path))
    later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    result = run(runner, "plan", "--format", "json", "--at", later, str(path))

    plan = json.loads(result.output)
    # 30 days on, the recovery point is past max_age, but it is the newest: keep_last 1 keeps it.
    assert plan["summary"]["delete"] == 0
    assert plan["summary"]["create"] == 1
    assert plan["kept"][0]["kept_by"] == ["keep_last"]


def test_plan_out_to_an_unwritable_place_is_one_readable_line(runner, ec2, policy_file, tmp_path):
    launch(ec2, 1)

    result = run(runner, "plan", "--out", str(tmp_path / "no-such-dir" / "plan.json"), policy_file)

    assert result.exit_code == 1
    assert "cannot write the plan to" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("at", ["1970-01-01T00:00:00Z", "2999-12-31T23:59:59Z"])
def test_a_plan_at_either_end_of_the_years_is_a_plan(runner, ec2, policy_file, at):
    launch(ec2, 1)

    result = run(runner, "plan", "--format", "json", "--at", at, policy_file)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["at"] == at
