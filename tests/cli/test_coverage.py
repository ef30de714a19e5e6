"""`smartvault coverage` against moto's simulated account: a mixed fleet, every format, the
exit codes, and the number of AWS calls."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from smartvault.aws.session import AwsSession
from smartvault.engine import Engine
from smartvault.settings import Settings
from tests.cli import run
from tests.moto_helpers import age_recovery_point
from tests.moto_helpers import count_calls
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots
from tests.moto_helpers import tags_of

REGION = "us-east-1"
POLICIES = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
      exclude_tags: {backup-skip: "*"}
      instance_states: [running]
    schedule:
      expression: cron(0 3 * * ? *)
  - name: data
    resource: volume
    selector:
      tags: {data: keep}
    schedule:
      expression: rate(1 day)
  - name: retired
    enabled: false
    selector:
      tags: {team: legacy}
    schedule:
      expression: cron(0 4 * * ? *)
"""


@pytest.fixture
def fleet(runner: Any, ec2: Any, tmp_path: Path) -> dict[str, str]:
    """Protected (one verified, one with an old point), excluded by tag and by state,
    untagged, one only a disabled policy would select, and a volume policy's volume."""
    path = tmp_path / "policies.yaml"
    path.write_text(POLICIES)
    (fresh,) = launch(ec2, tags={"backup": "true", "Name": "web-1"})
    (late,) = launch(ec2, tags={"backup": "true", "Name": "db-1"})
    (skipped,) = launch(ec2, tags={"backup": "true", "backup-skip": "yes"})
    (stopped,) = launch(ec2, tags={"backup": "true"})
    ec2.stop_instances(InstanceIds=[stopped])
    (untagged,) = launch(ec2, tags={"Name": "scratch"})
    (legacy,) = launch(ec2, tags={"team": "legacy"})
    volume = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=1,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "data", "Value": "keep"}]}],
    )["VolumeId"]
    assert run(runner, "audit", "init").exit_code == 0
    assert run(runner, "apply", "--yes", str(path)).exit_code == 0
    for snapshot in managed_snapshots(ec2):
        instance = tags_of(snapshot).get("InstanceId")
        if instance == late:
            age_recovery_point(ec2, snapshot, days=5)
        elif instance == fresh:
            ec2.create_tags(
                Resources=[snapshot["SnapshotId"]],
                Tags=[{"Key": "smartvault:verified", "Value": "2026-12-01T00:00:00Z"}],
            )
    return {
        "path": str(path),
        "fresh": fresh,
        "late": late,
        "skipped": skipped,
        "stopped": stopped,
        "untagged": untagged,
        "legacy": legacy,
        "volume": volume,
    }


def _by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["resource_id"]: r for r in report["resources"]}


def test_coverage_json_shows_every_resource_with_what_protects_it(
    runner: Any, fleet: dict[str, str]
) -> None:
    result = run(runner, "coverage", "--format", "json", fleet["path"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    resources = _by_id(report)
    fresh = resources[fleet["fresh"]]
    assert (fresh["status"], fresh["name"]) == ("protected", "web-1")
    (entry,) = fresh["policies"]
    assert (entry["policy"], entry["relation"], entry["rpo"]) == ("nightly", "protects", "met")
    assert entry["newest_verified"]["verified"] == "2026-12-01T00:00:00Z"
    assert entry["period_seconds"] == 86400
    late = resources[fleet["late"]]["policies"][0]
    assert (resources[fleet["late"]]["status"], late["rpo"]) == ("rpo-missed", "missed")
    assert late["newest_verified"] is None
    assert [(p["relation"], p["rule"]) for p in resources[fleet["skipped"]]["policies"]] == [
        ("excluded", "exclude_tags backup-skip")
    ]
    assert [p["rule"] for p in resources[fleet["stopped"]]["policies"]] == [
        "instance_states: stopped not in [running]"
    ]
    assert resources[fleet["untagged"]]["policies"] == []
    assert [(p["policy"], p["relation"]) for p in resources[fleet["legacy"]]["policies"]] == [
        ("retired", "disabled")
    ]
    volume = resources[fleet["volume"]]
    assert [(p["policy"], p["rpo"]) for p in volume["policies"]] == [("data", "met")]
    statuses = [r["status"] for r in report["resources"]]
    assert statuses == sorted(statuses, key=["unprotected", "rpo-missed", "protected"].index)
    assert report["summary"]["unprotected"] == statuses.count("unprotected")
    assert report["summary"]["excluded"] == 4  # two instances and their root volumes
    # the instance's root volume, protected through it
    (root,) = [
        r
        for r in report["resources"]
        if r["resource_type"] == "volume" and any(p["via"] == fleet["fresh"] for p in r["policies"])
    ]
    assert [(p["policy"], p["relation"]) for p in root["policies"]] == [("nightly", "protects")]


def test_coverage_text_and_markdown_list_the_gaps_first_and_name_the_rules(
    runner: Any, fleet: dict[str, str]
) -> None:
    """One fleet for both (building it takes seconds); --detailed-exitcode says 2: gaps."""
    result = run(runner, "coverage", fleet["path"])

    assert result.exit_code == 0, result.output
    text = result.output
    assert text.index("Unprotected") < text.index("RPO missed") < text.index("Protected, RPO met")
    assert f"{fleet['skipped']}  instance, us-east-1, running" in text
    assert "excluded from nightly by exclude_tags backup-skip" in text
    assert "excluded from nightly by instance_states: stopped not in [running]" in text
    assert "retired would select it, but the policy is disabled" in text
    assert f"{fleet['fresh']} (web-1)" in text
    assert "RPO MISSED: newest is 5d" in text
    assert "\x1b[" not in text  # no colour when not on a terminal

    markdown = run(runner, "coverage", "--format", "markdown", fleet["path"]).output
    assert markdown.startswith("### SmartVault coverage")
    assert markdown.count("| Resource | Name | Region | Policy |") == 3
    assert f"| `{fleet['late']}` (instance) | db-1 | us-east-1 | `nightly` |" in markdown
    assert "**missed**" in markdown

    assert run(runner, "coverage", "--detailed-exitcode", fleet["path"]).exit_code == 2


def test_detailed_exitcode_is_0_when_everything_is_protected_in_time(
    runner: Any, ec2: Any, tmp_path: Path
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICIES)
    launch(ec2, tags={"backup": "true"})
    assert run(runner, "audit", "init").exit_code == 0
    assert run(runner, "apply", "--yes", str(path)).exit_code == 0

    result = run(runner, "coverage", "--detailed-exitcode", str(path))

    assert result.exit_code == 0, result.output
    assert "0 unprotected, 0 RPO missed, 2 protected." in result.output


def test_a_usage_error_with_detailed_exitcode_exits_1(runner: Any, aws: None) -> None:
    """Exit 2 means "gaps" with --detailed-exitcode: a wrong flag must not look like one."""
    result = run(runner, "coverage", "--detailed-exitcode", "--format", "yaml")
    assert result.exit_code == 1


def test_a_missing_policy_path_is_one_line(runner: Any, aws: None) -> None:
    result = run(runner, "coverage", "nowhere.yaml")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "no such file or directory: nowhere.yaml" in result.stderr


def test_coverage_reads_the_account_once_unfiltered(ec2: Any, tmp_path: Path) -> None:
    """One account-id call, then one page each of snapshots, instances and volumes per
    working region, and only snapshots in a copy target; no AMIs."""
    path = tmp_path / "p.yaml"
    path.write_text(
        POLICIES.replace(
            "    schedule:\n      expression: rate(1 day)\n",
            "    schedule:\n      expression: rate(1 day)\n"
            "    copies:\n      - region: us-west-2\n",
            1,
        )
    )
    launch(ec2, count=3, tags={"backup": "true"})
    launch(ec2, tags={"Name": "untagged"})
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)
    page_sizes: list[object] = []
    session.boto_session.events.register(
        "before-parameter-build.ec2",
        lambda params, **_: page_sizes.append(params.get("MaxResults")),
    )
    engine = Engine(Settings(regions=(REGION,)), session=session)

    report = engine.coverage(engine.load_policies((str(path),)))

    assert calls == Counter(
        {
            "sts:GetCallerIdentity": 1,
            "ec2:DescribeSnapshots": 2,
            "ec2:DescribeInstances": 1,
            "ec2:DescribeVolumes": 1,
        }
    )
    assert page_sizes == [1000] * 4  # snapshots twice, instances, volumes
    assert report.regions == (REGION,)
    assert sum(r.resource_type == "instance" for r in report.resources) == 4
