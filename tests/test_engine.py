"""The composition root: one run for the CLI and the Lambda, and what it does around the core."""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

import lambda_entry
from smartvault.cli import cli
from smartvault.core.model import Plan
from smartvault.core.report import ActionResult
from smartvault.engine import Engine
from smartvault.engine import RunRequest
from smartvault.engine import collector_paused
from smartvault.errors import AuditError
from smartvault.errors import ConfigError
from smartvault.errors import PlanFileError
from smartvault.formats import plan_json
from smartvault.lambda_app import RunFailed
from smartvault.settings import Settings
from tests.factories import REGION
from tests.moto_helpers import count_calls
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots
from tests.test_lambda_app import POLICY


@pytest.mark.parametrize("enabled_before", [True, False])
def test_planning_pauses_the_garbage_collector_and_restores_it_even_on_error(
    enabled_before: bool,
) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled_before else gc.disable)()
        seen: list[bool] = []

        def plan_that_fails() -> None:
            with collector_paused():
                seen.append(gc.isenabled())
                raise RuntimeError("planning failed")

        with pytest.raises(RuntimeError):
            plan_that_fails()
        assert seen == [False]
        assert gc.isenabled() is enabled_before
    finally:
        (gc.enable if was else gc.disable)()


# --- one run for both doors -----------------------------------------------------


class Context:
    function_name = "smartvault"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A policy file, and the environment both doors read: the Lambda's, and the CLI's
    SMARTVAULT_AUDIT_TABLE."""
    path = tmp_path / "policies.yaml"
    path.write_text(POLICY)
    monkeypatch.setenv("SMARTVAULT_POLICY_PATH", str(path))
    monkeypatch.setenv("SMARTVAULT_REGIONS", REGION)
    monkeypatch.setenv("SMARTVAULT_AUDIT_TABLE", "audit")
    return str(path)


@pytest.fixture
def ec2(aws):
    return boto3.client("ec2", region_name=REGION)


def engine() -> Engine:
    return Engine(Settings(regions=(REGION,), audit_table="audit"))


def audit_records() -> list[dict]:
    table = boto3.resource("dynamodb", region_name=REGION).Table("audit")
    return [i for i in table.scan()["Items"] if str(i["pk"]).startswith("DAY#")]


def through_the_cli(*args: str):
    return CliRunner().invoke(cli, ["--region", REGION, "apply", "--yes", *args])


def test_both_doors_refuse_a_missing_policy_path_in_the_same_words(ec2, policies, monkeypatch):
    missing = str(Path(policies).parent / "nowhere")
    monkeypatch.setenv("SMARTVAULT_POLICY_PATH", missing)
    launch(ec2, 1)

    by_cli = through_the_cli(missing)
    with pytest.raises(ConfigError) as by_lambda:
        lambda_entry.handler({}, Context())

    assert by_cli.exit_code == 1
    assert by_cli.stderr == f"Error: {by_lambda.value}\n"
    assert f"no such file or directory: {missing}: name the policy" in str(by_lambda.value)
    assert managed_snapshots(ec2) == []


def test_without_the_audit_table_the_cli_refuses_and_the_lambda_reports_every_action_failed(
    ec2, policies
):
    """Neither door changes anything; the unattended one says so as failed actions, which
    is what its policies' failure notifications are sent for."""
    launch(ec2, 1)

    by_cli = through_the_cli(policies)
    with pytest.raises(RunFailed) as raised:  # after notifying: the invocation is an error
        lambda_entry.handler({}, Context())
    summary = raised.value.summary

    assert by_cli.exit_code == 1
    assert "audit table audit not found in us-east-1" in by_cli.stderr
    assert summary["ok"] is False
    assert summary["outcomes"]["failed"] == 1
    assert managed_snapshots(ec2) == []


def test_the_audit_table_is_checked_once_per_run(ec2, policies):
    launch(ec2, 1)
    engine().audit_log().ensure_table()
    eng = engine()
    calls = count_calls(eng.session)

    report = eng.run(RunRequest(paths=(policies,)))

    assert report.result is not None
    assert report.result.ok
    assert calls["dynamodb:DescribeTable"] == 1


def test_both_doors_apply_the_same_plan_to_the_same_account(policies):
    def account() -> None:
        ec2 = boto3.client("ec2", region_name=REGION)
        launch(ec2, 2)
        launch(ec2, 1, tags={"tier": "gold"})
        engine().audit_log().ensure_table()

    with mock_aws():
        account()
        by_cli = through_the_cli(policies)
        cli_records = sorted((r["policy"], r["action"], r["outcome"]) for r in audit_records())
    with mock_aws():
        account()
        summary = lambda_entry.handler({}, Context())
        lambda_records = sorted((r["policy"], r["action"], r["outcome"]) for r in audit_records())

    assert by_cli.exit_code == 0, by_cli.output
    assert "Run " in by_cli.stdout
    assert "3 succeeded, 0 failed, 0 skipped, 0 not started." in by_cli.stdout
    assert summary["outcomes"] == {"succeeded": 3, "failed": 0, "skipped": 0, "not_started": 0}
    assert cli_records == lambda_records
    assert [(p, a) for p, a, _ in lambda_records] == [
        ("nightly", "create"),
        ("nightly", "create"),
        ("weekly", "create"),
    ]


def test_a_dry_run_shows_the_plan_and_neither_asks_nor_changes_anything(ec2, policies):
    launch(ec2, 1)
    shown: list[Plan] = []

    def never(plan: Plan, run_id: str) -> None:
        raise AssertionError("a dry run asks nothing")

    report = engine().run(
        RunRequest(paths=(policies,), dry_run=True, on_plan=shown.append, before_apply=never)
    )

    assert report.result is None
    assert shown == [report.plan]
    assert report.plan.summary["create"] == 1
    assert managed_snapshots(ec2) == []


def test_the_plan_is_shown_before_the_audit_table_is_checked_and_nothing_is_asked_without_it(
    ec2, policies
):
    launch(ec2, 1)
    calls: list[str] = []

    with pytest.raises(AuditError, match="audit table audit not found"):
        engine().run(
            RunRequest(
                paths=(policies,),
                on_plan=lambda plan: calls.append("on_plan"),
                before_apply=lambda plan, run_id: calls.append("before_apply"),
            )
        )

    assert calls == ["on_plan"]
    assert managed_snapshots(ec2) == []


def test_before_apply_gets_the_run_id_and_raising_there_changes_nothing(ec2, policies):
    launch(ec2, 1)
    engine().audit_log().ensure_table()
    asked: list[str] = []

    def decline(plan: Plan, run_id: str) -> None:
        asked.append(run_id)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine().run(RunRequest(paths=(policies,), run_id="run-1", before_apply=decline))

    assert asked == ["run-1"]
    assert managed_snapshots(ec2) == []
    assert audit_records() == []


def test_every_record_and_the_report_carry_the_run_id_asked_for(ec2, policies):
    launch(ec2, 1)
    engine().audit_log().ensure_table()
    results: list[ActionResult] = []

    report = engine().run(
        RunRequest(paths=(policies,), run_id="run-1", actor="test", on_result=results.append)
    )

    assert report.result is not None
    assert report.result.run_id == "run-1"
    assert [r.outcome for r in results] == ["succeeded"]
    assert {(r["run_id"], r["actor"]) for r in audit_records()} == {("run-1", "test")}


def test_only_the_policies_asked_for_are_planned_and_applied(ec2, policies):
    launch(ec2, 1)
    launch(ec2, 1, tags={"tier": "gold"})
    engine().audit_log().ensure_table()

    report = engine().run(RunRequest(paths=(policies,), policies=("weekly",)))

    assert [p.name for p in report.plan.policies] == ["weekly"]
    assert {a.policy for a in report.plan.actions} == {"weekly"}
    assert report.ok
    assert len(managed_snapshots(ec2)) == 1


def test_an_unknown_policy_name_is_refused_before_any_aws_call(policies):
    eng = engine()
    calls = count_calls(eng.session)

    with pytest.raises(ConfigError) as refused:
        eng.run(RunRequest(paths=(policies,), policies=("nighty",), policies_named_in="--x"))

    assert str(refused.value) == (
        f"no policy named nighty (did you mean nightly?) in {policies}: fix --x "
        "(known: nightly, weekly)"
    )
    assert calls == Counter()


def test_a_stale_saved_plan_is_refused_before_anything_is_shown_or_asked(ec2, policies, tmp_path):
    launch(ec2, 1)
    engine().audit_log().ensure_table()
    saved = tmp_path / "plan.json"
    saved.write_text(plan_json.dumps(engine().plan(engine().load_policies([policies]))))
    launch(ec2, 1)  # planning again now gives a second create
    calls: list[str] = []

    with pytest.raises(PlanFileError, match="no longer matches"):
        engine().run(
            RunRequest(
                paths=(policies,),
                saved_plan=str(saved),
                on_plan=lambda plan: calls.append("on_plan"),
                before_apply=lambda plan, run_id: calls.append("before_apply"),
            )
        )

    assert calls == []
    assert managed_snapshots(ec2) == []
