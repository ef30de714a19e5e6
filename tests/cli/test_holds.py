"""`smartvault hold` and `release` end to end, against moto's simulated account.

A real backup and its cross-region copy, aged past every rule of the policy, held, kept by
the next plan, released, then planned for deletion; both changes read back from the audit
log. Then the refusals as a person sees them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from smartvault.cli import cli
from smartvault.errors import AwsError
from tests.cli import one_error_line
from tests.moto_helpers import age_recovery_point
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots
from tests.moto_helpers import tags_of

EAST, WEST = "us-east-1", "us-west-2"
POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
    retention:
      keep_last: 1
    copies:
      - region: us-west-2
        retention: {keep_last: 1}
"""


def run(runner: CliRunner, *args: str, regions: tuple[str, ...] = (EAST,)) -> Any:
    """The CLI with these --region values; fail loudly on an unexpected traceback."""
    flags = [word for region in regions for word in ("--region", region)]
    result = runner.invoke(cli, [*flags, *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def both(runner: CliRunner, *args: str) -> Any:
    return run(runner, *args, regions=(EAST, WEST))


def plan_json(runner: CliRunner) -> dict[str, Any]:
    result = both(runner, "plan", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def hold_tags(ec2: Any, rp: str) -> list[dict[str, str]]:
    """The hold tags of each snapshot of ``rp`` in ``ec2``'s region (``{}`` when none)."""
    snaps = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:smartvault:recovery-point", "Values": [rp]}]
    )["Snapshots"]
    return [{k: v for k, v in tags_of(s).items() if k.startswith("smartvault:hold")} for s in snaps]


@pytest.fixture
def backed_up(aws, tmp_path, monkeypatch) -> dict[str, Any]:
    """One instance backed up, its point copied to us-west-2, then both aged 30 days (so
    only keep_last keeps them); ./policies holds the policy, as hold reads it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "nightly.yaml").write_text(POLICY)
    east = boto3.client("ec2", region_name=EAST)
    west = boto3.client("ec2", region_name=WEST)
    launch(east, 1, volumes=2)
    runner = CliRunner()
    assert run(runner, "audit", "init").exit_code == 0
    assert both(runner, "apply", "--yes").exit_code == 0  # the point
    assert both(runner, "apply", "--yes").exit_code == 0  # its copy
    originals, copies = managed_snapshots(east), managed_snapshots(west)
    assert len(originals) == len(copies) == 2
    for snapshot in originals:
        age_recovery_point(east, snapshot, 30)
    for snapshot in copies:
        age_recovery_point(west, snapshot, 30)
    (rp,) = {tags_of(s)["smartvault:recovery-point"] for s in managed_snapshots(east)}
    assert both(runner, "apply", "--yes").exit_code == 0  # today's point
    return {"east": east, "west": west, "rp": rp, "runner": runner}


def test_a_held_point_is_kept_past_every_rule_then_released_and_planned_for_deletion(backed_up):
    east, west, rp, runner = (backed_up[k] for k in ("east", "west", "rp", "runner"))
    before = plan_json(runner)
    assert rp in {a["recovery_point"] for a in before["actions"] if a["type"] == "delete"}

    held = run(runner, "hold", rp, "--reason", "INC-1234 investigation")

    assert held.exit_code == 0, held.output
    assert f"{EAST}: held" in held.stdout
    assert f"{WEST}: held" in held.stdout
    assert (
        f"4 snapshot(s) in {EAST}, {WEST} (reason: INC-1234 investigation; by arn:aws:"
        in held.stdout
    )
    for ec2 in (east, west):
        tags = hold_tags(ec2, rp)
        assert len(tags) == 2
        assert all(t["smartvault:hold"] == "INC-1234 investigation" for t in tags)
        assert all(t["smartvault:hold-by"].startswith("arn:aws:") for t in tags)
    kept = plan_json(runner)
    assert rp not in {
        a["recovery_point"] for a in kept["actions"] if a["type"] in ("delete", "archive")
    }
    by_region = {k["region"]: k["kept_by"] for k in kept["kept"] if k["recovery_point"] == rp}
    assert by_region == {EAST: ["hold"], WEST: ["hold"]}
    listed = run(runner, "restore", "--instance", rp.split("/")[1], "--list")
    assert "held: INC-1234 investigation" in listed.stdout

    released = run(runner, "release", rp)

    assert released.exit_code == 0, released.output
    assert "next run's retention decides whether it is deleted" in released.stdout
    assert all(t == {} for ec2 in (east, west) for t in hold_tags(ec2, rp))
    after = plan_json(runner)
    deleted = {
        (a["region"], a["recovery_point"]) for a in after["actions"] if a["type"] == "delete"
    }
    assert (EAST, rp) in deleted
    records = json.loads(run(runner, "audit", "list", "--format", "json").stdout)
    mine = sorted(
        (r["action"], r["region"], r["outcome"])
        for r in records
        if r["action"] in ("hold", "release")
    )
    assert mine == [
        ("hold", EAST, "succeeded"),
        ("hold", WEST, "succeeded"),
        ("release", EAST, "succeeded"),
        ("release", WEST, "succeeded"),
    ]
    hold_record = next(r for r in records if r["action"] == "hold" and r["region"] == EAST)
    assert hold_record["reason"] == "INC-1234 investigation"
    assert hold_record["recovery_point"] == rp
    assert len(hold_record["snapshot_ids"]) == 2
    assert hold_record["actor"].startswith("cli:")
    assert hold_record["details"]["hold_by"].startswith("arn:aws:")
    release_record = next(r for r in records if r["action"] == "release" and r["region"] == EAST)
    assert release_record["details"]["released"] == "INC-1234 investigation"


def test_holding_a_held_point_replaces_its_reason_and_says_so(backed_up):
    rp, runner = backed_up["rp"], backed_up["runner"]
    run(runner, "hold", rp, "--reason", "first")

    again = run(runner, "hold", rp, "--reason", "second")

    assert again.exit_code == 0, again.output
    assert "already held (first): the reason is replaced" in again.stdout
    assert {t["smartvault:hold"] for t in hold_tags(backed_up["east"], rp)} == {"second"}


def test_releasing_a_point_that_is_not_held_changes_nothing_and_exits_0(backed_up):
    rp, runner = backed_up["rp"], backed_up["runner"]

    result = run(runner, "release", rp)

    assert result.exit_code == 0, result.output
    assert f"{rp} is not held" in result.stdout
    assert "nothing was changed" in result.stdout
    records = json.loads(run(runner, "audit", "list", "--format", "json").stdout)
    assert [r for r in records if r["action"] in ("hold", "release")] == []


def test_a_hold_set_after_planning_makes_the_saved_plans_delete_skip(backed_up, tmp_path):
    """A plan made before the hold still names the point for deletion. `apply --plan`
    refuses it as stale; carried out anyway, the delete step reads the snapshots again,
    sees the hold and deletes nothing."""
    from smartvault.apply.run import Executor
    from smartvault.aws.ec2 import Ec2Snapshots
    from smartvault.aws.volumes import Ec2Volumes
    from smartvault.engine import Engine
    from smartvault.engine import utc_now
    from smartvault.formats import plan_json as plan_format
    from smartvault.settings import Settings

    east, rp, runner = backed_up["east"], backed_up["rp"], backed_up["runner"]
    saved = tmp_path / "plan.json"
    assert both(runner, "plan", "--out", str(saved)).exit_code == 0
    run(runner, "hold", rp, "--reason", "after planning")

    refused = both(runner, "apply", "--plan", str(saved), "--yes")
    assert refused.exit_code == 1
    assert len(hold_tags(east, rp)) == 2

    plan = plan_format.loads(saved.read_text(), source=str(saved))
    plan = replace(plan, actions=tuple(a for a in plan.actions if a.type == "delete"))
    assert rp in {a.recovery_point for a in plan.actions}
    engine = Engine(Settings(regions=(EAST, WEST)))
    changes = engine.session.ec2_for_changes
    result = Executor(
        Ec2Snapshots(changes, sleep=lambda _s: None),
        engine.audit_log(),
        volumes=Ec2Volumes(changes, sleep=lambda _s: None),
        run_id="run-saved",
        actor="tester",
        clock=utc_now,
        sleep=lambda _s: None,
    ).apply(plan)

    (skipped,) = [
        r for r in result.results if r.action.recovery_point == rp and r.action.region == EAST
    ]
    assert skipped.outcome == "skipped"
    assert "held since planning" in skipped.reason
    assert len(hold_tags(east, rp)) == 2  # both snapshots are still there


class TestRefusals:
    def test_an_unknown_point_is_exit_1_naming_the_regions_searched(self, backed_up):
        result = run(backed_up["runner"], "hold", "nightly/i-0abc/20200101T0300Z", "--reason", "x")
        assert result.exit_code == 1
        line = one_error_line(result)
        assert "no snapshot of recovery point nightly/i-0abc/20200101T0300Z" in line
        assert f"{EAST}, {WEST}" in line
        assert "smartvault restore --instance ID --list" in line

    @pytest.mark.parametrize(
        "args",
        [
            ("hold", "nightly/i-0abc", "--reason", "x"),
            ("hold", "nightly/i-0abc/2026-11-20T03:00Z", "--reason", "x"),
            ("release", "not a point"),
        ],
        ids=["no-slot", "iso-slot", "release-garbage"],
    )
    def test_a_malformed_point_is_a_usage_error(self, runner, args):
        result = run(runner, *args)
        assert result.exit_code == 2
        assert "is not a recovery point id" in result.output
        assert "<policy>/<resource-id>/<slot>" in result.output

    @pytest.mark.parametrize(
        ("reason", "said"),
        [("", "give the reason"), ("   ", "give the reason"), ("x" * 257, "at most 256")],
        ids=["empty", "blank", "too-long"],
    )
    def test_a_missing_or_too_long_reason_is_a_usage_error(self, runner, reason, said):
        result = run(runner, "hold", "nightly/i-0abc/20261120T0300Z", "--reason", reason)
        assert result.exit_code == 2
        assert said in result.output

    def test_hold_without_reason_is_a_usage_error(self, runner):
        result = run(runner, "hold", "nightly/i-0abc/20261120T0300Z")
        assert result.exit_code == 2
        assert "--reason" in result.output

    def test_without_an_audit_table_nothing_is_changed(self, backed_up):
        rp, runner = backed_up["rp"], backed_up["runner"]
        boto3.client("dynamodb", region_name=EAST).delete_table(TableName="smartvault-audit")

        result = run(runner, "hold", rp, "--reason", "x")

        assert result.exit_code == 1
        line = one_error_line(result)
        assert "audit table smartvault-audit not found in us-east-1" in line
        assert "smartvault audit init" in line
        assert all(t == {} for t in hold_tags(backed_up["east"], rp))


class _Session:
    def __init__(self, arn: str | None = None, error: bool = False) -> None:
        self._arn, self._error = arn, error

    def caller_arn(self, region: str | None = None) -> str | None:
        if self._error:
            raise AwsError("could not reach STS")
        return self._arn


class _Engine:
    def __init__(self, session: _Session) -> None:
        self.session = session


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        (_Session("arn:aws:iam::123456789012:user/ana"), "arn:aws:iam::123456789012:user/ana"),
        (_Session("arn:aws:sts::1:assumed-role/" + "r" * 300), None),
        (_Session(error=True), "cli:"),
        (_Session(None), "cli:"),
    ],
    ids=["arn", "long-arn-cut", "sts-unreadable", "no-arn"],
)
def test_hold_by_is_the_callers_arn_else_the_cli_actor_within_256_characters(session, expected):
    from smartvault.cli.holds import _who

    who = _who(_Engine(session))  # type: ignore[arg-type]

    assert len(who) <= 256
    if expected is None:
        assert who == session.caller_arn()[:256]
    elif expected == "cli:":
        assert who.startswith("cli:")
    else:
        assert who == expected
