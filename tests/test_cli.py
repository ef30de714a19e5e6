"""The ``smartvault`` command end to end, against moto's simulated account."""

from __future__ import annotations

import json
import os
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import boto3
import jsonschema
import pytest
from moto import mock_aws

from smartvault.cli import cli
from smartvault.formats.plan_json import plan_schema
from tests.bounded import bounded
from tests.moto_helpers import age_recovery_point
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots
from tests.moto_helpers import tags_of

POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
    retention:
      keep_last: 2
      max_age: 7d
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> str:
    path = tmp_path / "nightly.yaml"
    path.write_text(POLICY)
    return str(path)


@pytest.fixture
def ec2():
    with mock_aws():
        client = boto3.client("ec2", region_name="us-east-1")
        yield client


def run(runner, *args: str):
    """Invoke the CLI in us-east-1; fail loudly on an unexpected traceback."""
    result = runner.invoke(cli, ["--region", "us-east-1", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


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


def test_apply_creates_tagged_recovery_points_and_a_second_run_creates_nothing(
    runner, ec2, policy_file
):
    (instance,) = launch(ec2, 1, tags={"backup": "true", "Name": "web"}, volumes=2)
    run(runner, "audit", "init")

    first = run(runner, "apply", "--yes", policy_file)
    second = run(runner, "apply", "--yes", policy_file)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "Nothing to do." in second.output
    snapshots = managed_snapshots(ec2)
    assert len(snapshots) == 2  # one per attached volume, one recovery point
    for snapshot in snapshots:
        tags = tags_of(snapshot)
        assert tags["CreatedBy"] == "SmartVault"
        assert tags["InstanceId"] == instance
        assert tags["smartvault:policy"] == "nightly"
        assert tags["smartvault:recovery-point"].startswith(f"nightly/{instance}/")
        assert "smartvault:devices" in tags


def test_keep_last_keeps_recovery_points_past_max_age(runner, ec2, policy_file):
    launch(ec2, 1)
    run(runner, "audit", "init")
    run(runner, "apply", "--yes", policy_file)
    (old,) = managed_snapshots(ec2)
    age_recovery_point(ec2, old, days=12)

    run(runner, "apply", "--yes", policy_file)  # today's recovery point
    result = run(runner, "apply", "--yes", policy_file)

    assert result.exit_code == 0, result.output
    assert old["SnapshotId"] in {s["SnapshotId"] for s in managed_snapshots(ec2)}
    assert len(managed_snapshots(ec2)) == 2


def test_expired_snapshots_are_deleted_with_a_succeeded_audit_record(runner, ec2, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace("keep_last: 2", "keep_last: 1"))
    launch(ec2, 1)
    run(runner, "audit", "init")
    run(runner, "apply", "--yes", str(path))
    (old,) = managed_snapshots(ec2)
    age_recovery_point(ec2, old, days=10)

    created = run(runner, "apply", "--yes", str(path))  # today's; the old one is still newest
    deleted = run(runner, "apply", "--yes", str(path))

    assert created.exit_code == 0, created.output
    assert deleted.exit_code == 0, deleted.output
    remaining = {s["SnapshotId"] for s in managed_snapshots(ec2)}
    assert old["SnapshotId"] not in remaining
    assert len(remaining) == 1
    records = json.loads(run(runner, "audit", "list", "--format", "json").output)
    deletes = [r for r in records if r["action"] == "delete"]
    assert [(r["outcome"], r["snapshot_ids"]) for r in deletes] == [
        ("succeeded", [old["SnapshotId"]])
    ]
    timestamps = [r["timestamp"] for r in records]
    assert timestamps == sorted(timestamps, reverse=True)


def test_apply_without_yes_and_without_a_terminal_refuses(runner, ec2, policy_file):
    launch(ec2, 1)
    run(runner, "audit", "init")

    result = run(runner, "apply", policy_file)

    assert result.exit_code == 1
    assert "--yes" in result.output
    assert managed_snapshots(ec2) == []


def test_saved_plan_applies_exactly_its_actions(runner, ec2, policy_file, tmp_path):
    launch(ec2, 2)
    run(runner, "audit", "init")
    saved = tmp_path / "plan.json"

    assert run(runner, "plan", "--out", str(saved), policy_file).exit_code == 0
    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 0, result.output
    assert len(managed_snapshots(ec2)) == 2


def test_saved_plan_is_refused_when_the_account_changed(runner, ec2, policy_file, tmp_path):
    launch(ec2, 1)
    run(runner, "audit", "init")
    saved = tmp_path / "plan.json"
    run(runner, "plan", "--out", str(saved), policy_file)
    launch(ec2, 1)  # a new instance now matches: planning again gives another create

    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 1
    assert "no longer matches" in result.output
    assert managed_snapshots(ec2) == []


def _iso_in(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_saved_plan_evaluated_too_long_ago_is_refused(runner, ec2, policy_file, tmp_path):
    launch(ec2, 1)
    run(runner, "audit", "init")
    saved = tmp_path / "plan.json"
    run(runner, "plan", "--at", _iso_in(-timedelta(hours=25)), "--out", str(saved), policy_file)

    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 1
    assert "--max-plan-age" in result.output
    assert managed_snapshots(ec2) == []


def test_the_age_of_a_saved_plan_is_measured_from_its_at_not_its_generated_at(
    runner, ec2, policy_file, tmp_path
):
    """generated_at is not part of what the staleness check re-plans: editing it proves nothing."""
    launch(ec2, 1)
    run(runner, "audit", "init")
    saved = tmp_path / "plan.json"
    run(runner, "plan", "--at", _iso_in(-timedelta(hours=25)), "--out", str(saved), policy_file)
    data = json.loads(saved.read_text())
    data["generated_at"] = _iso_in(timedelta(0))
    saved.write_text(json.dumps(data))

    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 1
    assert "--max-plan-age" in result.output
    assert managed_snapshots(ec2) == []


def test_a_saved_plan_evaluated_in_the_future_is_refused_whole(runner, ec2, tmp_path):
    """A plan --at 30 days ahead would delete what the policy keeps today and stamp a
    recovery point with a future slot: it can be looked at, never applied."""
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace("keep_last: 2", "keep_last: 1"))
    launch(ec2, 1)
    run(runner, "audit", "init")
    run(runner, "apply", "--yes", str(path))
    age_recovery_point(ec2, managed_snapshots(ec2)[0], days=1)
    run(runner, "apply", "--yes", str(path))
    before = sorted(s["SnapshotId"] for s in managed_snapshots(ec2))
    saved = tmp_path / "plan.json"
    planned = run(
        runner, "plan", "--at", _iso_in(timedelta(days=30)), "--out", str(saved), str(path)
    )
    assert planned.exit_code == 0, planned.output
    assert json.loads(saved.read_text())["summary"]["delete"] == 1

    result = run(runner, "apply", "--plan", str(saved), "--yes", str(path))

    assert result.exit_code == 1
    assert "in the future" in result.output
    assert sorted(s["SnapshotId"] for s in managed_snapshots(ec2)) == before
    assert "delete" not in run(runner, "audit", "list").output


def test_a_saved_plan_a_minute_ahead_of_the_clock_is_applied(runner, ec2, policy_file, tmp_path):
    """Five minutes of clock skew between the reviewer's machine and this one are allowed."""
    launch(ec2, 1)
    run(runner, "audit", "init")
    saved = tmp_path / "plan.json"
    run(runner, "plan", "--at", _iso_in(timedelta(minutes=1)), "--out", str(saved), policy_file)

    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 0, result.output
    assert len(managed_snapshots(ec2)) == 1


def test_invalid_policies_fail_plan_with_located_errors_and_no_traceback(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("keep_last: 2", "keep_last: 0"))

    result = run(runner, "plan", str(bad))

    assert result.exit_code == 1
    assert f"{bad}:9:18: keep_last: 0 is less than the minimum of 1" in result.output
    assert "Traceback" not in result.output


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


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "http:// or https:// URL with a host"),
        ("http://", "http:// or https:// URL with a host"),
        ("ftp://127.0.0.1:21", "http:// or https:// URL with a host"),
        ("http://127.0.0.1:99999", "port must be a number from 1 to 65535"),
        ("http://127.0.0.1:0", "port must be a number from 1 to 65535"),
        ("http://127.0.0.1 :5000", "must not contain spaces"),
    ],
)
def test_a_malformed_endpoint_url_is_a_usage_error_not_a_traceback(
    runner, policy_file, url, message
):
    result = run(runner, "--endpoint-url", url, "plan", policy_file)

    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_malformed_aws_endpoint_url_is_one_line_naming_the_variable(
    runner, policy_file, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not a url")

    result = run(runner, "plan", policy_file)

    assert result.exit_code == 1
    assert "AWS_ENDPOINT_URL 'not a url' is not an endpoint URL" in result.output
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


# --- what an operator gets wrong --------------------------------------------------


def one_error_line(result) -> str:
    """The single line a failed command printed on stderr (and no traceback)."""
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_apply_before_audit_init_fails_in_one_line_before_asking(runner, ec2, policy_file):
    launch(ec2, 2)

    result = run(runner, "apply", "--yes", policy_file)

    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("Error: audit table smartvault-audit not found in us-east-1")
    assert "smartvault audit init" in line
    assert "failed:" not in result.output
    assert managed_snapshots(ec2) == []


def test_audit_list_without_the_table_says_how_to_find_or_create_it(runner, ec2):
    result = run(runner, "audit", "list")

    assert result.exit_code == 1
    line = one_error_line(result)
    assert "audit table smartvault-audit not found in us-east-1" in line
    assert "--audit-table" in line
    assert "smartvault audit init" in line
    assert "next run" not in line


@pytest.mark.parametrize("command", ["plan", "apply", "deploy template"])
def test_a_missing_policy_path_is_one_line_naming_it(runner, ec2, command, tmp_path):
    result = run(runner, *command.split(), str(tmp_path / "nowhere"))

    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"no such file or directory: {tmp_path / 'nowhere'}" in line


def test_without_paths_and_without_a_policies_folder_the_error_says_so(
    runner, ec2, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)

    result = run(runner, "plan")

    assert result.exit_code == 1
    assert "run from the folder that holds policies/" in one_error_line(result)


def test_an_empty_policy_folder_is_reported_with_a_count(runner, ec2, tmp_path):
    result = run(runner, "plan", str(tmp_path))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path}: no policy files (*.yaml, *.yml) in this directory",
        "1 problem in the policies: fix it (see `smartvault validate`); nothing was done",
    ]


def test_regions_may_be_comma_separated_with_spaces(runner, ec2, policy_file):
    result = runner.invoke(cli, ["--region", "us-east-1, us-west-2", "plan", policy_file])

    assert result.exit_code == 0, result.output
    assert "Regions: us-east-1, us-west-2;" in result.output


def test_a_malformed_audit_table_name_is_a_usage_error(runner, ec2):
    result = run(runner, "--audit-table", "my table", "audit", "init")

    assert result.exit_code == 2
    assert "is not a DynamoDB table name" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "list", "--since", "100000d"),
        ("apply", "--yes", "--max-duration", "99999999999999999999d"),
    ],
    ids=["since", "max-duration"],
)
def test_an_absurd_duration_is_a_usage_error_not_a_traceback(runner, ec2, args):
    result = run(runner, *args)

    assert result.exit_code == 2
    assert "is too long; at most 3660d" in result.output


@pytest.mark.parametrize(
    "at",
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "3000-01-01T00:00:00Z",
        "1969-12-31",
    ],
    ids=["past-year-9999", "before-year-1", "year-3000", "before-1970"],
)
def test_an_at_outside_the_years_slots_can_count_is_a_usage_error(runner, policy_file, at):
    result = run(runner, "plan", "--at", at, policy_file)

    assert result.exit_code == 2
    assert "outside the years 1970 to 2999" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("at", ["1970-01-01T00:00:00Z", "2999-12-31T23:59:59Z"])
def test_a_plan_at_either_end_of_the_years_is_a_plan(runner, ec2, policy_file, at):
    launch(ec2, 1)

    result = run(runner, "plan", "--format", "json", "--at", at, policy_file)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["at"] == at


def test_detailed_exitcode_turns_a_usage_error_into_1_not_2(runner, ec2, policy_file):
    detailed = run(runner, "plan", "--detailed-exitcode", "--at", "yesterday", policy_file)
    plain = run(runner, "plan", "--at", "yesterday", policy_file)

    assert detailed.exit_code == 1
    assert plain.exit_code == 2
    assert "not an ISO 8601 time" in detailed.output


@pytest.mark.parametrize("answer", ["n\n", ""], ids=["no", "end-of-input"])
def test_declining_at_the_prompt_changes_nothing_and_says_so(
    runner, ec2, policy_file, monkeypatch, answer
):
    monkeypatch.setattr("smartvault.cli._stdin_is_tty", lambda: True)
    launch(ec2, 1)
    run(runner, "audit", "init")

    result = runner.invoke(cli, ["--region", "us-east-1", "apply", policy_file], input=answer)

    assert result.exit_code == 1
    assert "Apply this action? [y/N]" in result.output
    assert result.stderr.strip() == "Not applied: nothing was changed."
    assert "Aborted" not in result.output
    assert managed_snapshots(ec2) == []


def test_confirming_at_the_prompt_applies(runner, ec2, policy_file, monkeypatch):
    monkeypatch.setattr("smartvault.cli._stdin_is_tty", lambda: True)
    launch(ec2, 2)
    run(runner, "audit", "init")

    result = runner.invoke(cli, ["--region", "us-east-1", "apply", policy_file], input="y\n")

    assert result.exit_code == 0, result.output
    assert "Apply these 2 actions? [y/N]" in result.output
    assert len(managed_snapshots(ec2)) == 2


def test_max_duration_stops_and_says_to_run_again_once(runner, ec2, policy_file, monkeypatch):
    # An hour passes once the first recovery point exists.
    monkeypatch.setattr(
        "smartvault.cli._monotonic", lambda: 3600.0 if managed_snapshots(ec2) else 0.0
    )
    launch(ec2, 3)
    run(runner, "audit", "init")

    result = run(runner, "apply", "--yes", "--max-duration", "1m", policy_file)

    assert result.exit_code == 0, result.output
    assert len(managed_snapshots(ec2)) == 1
    assert result.stderr.splitlines() == [
        "Stopped after --max-duration 1m: 2 not started; "
        "run `smartvault apply` again to finish the work."
    ]


def test_progress_on_a_terminal_counts_against_the_total(capsys):
    from smartvault.cli import _Progress
    from smartvault.core.report import ActionResult
    from tests.factories import CREATE

    progress = _Progress(tty=True, total=3)
    progress(ActionResult(CREATE, "succeeded"))
    progress(ActionResult(CREATE, "failed", error="boom"))
    progress.close()

    out = capsys.readouterr().out
    assert out.endswith("\r2/3 done: created 1, deleted 0, skipped 0, failed 1\n")


def test_deploy_template_refuses_a_misspelt_region(runner, policy_file):
    result = runner.invoke(cli, ["--region", "us-eest-1", "deploy", "template", policy_file])

    assert result.exit_code == 1
    assert one_error_line(result) == "Error: unknown region `us-eest-1`; did you mean `us-east-1`?"
    assert result.stdout == ""


@pytest.mark.parametrize(
    "command",
    ["", "validate", "schema", "plan", "apply", "audit", "audit init", "audit list", "deploy"],
)
def test_every_help_text_renders(runner, command):
    result = runner.invoke(cli, [*command.split(), "--help"], prog_name="smartvault")

    assert result.exit_code == 0
    assert f"Usage: smartvault {command}".rstrip() in result.output


def test_apply_with_nothing_to_do_still_sends_the_success_notification(runner, ec2, tmp_path):
    """The CLI goes through the same engine as the Lambda, even with an empty plan."""
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="backups")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    path = tmp_path / "p.yaml"
    path.write_text(POLICY + f"    notify:\n      sns_topic_arn: {topic}\n      on: [success]\n")
    run(runner, "audit", "init")

    result = run(runner, "apply", "--yes", str(path))  # no instance: nothing to do

    assert result.exit_code == 0, result.output
    assert "Nothing to do." in result.output
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1


# --- files that are not what they seem ---------------------------------------------


def test_a_policy_path_that_is_a_symlink_loop_is_called_a_loop_not_missing(runner, ec2, tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)

    result = run(runner, "plan", str(loop))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{loop}: a symbolic link loop (the link leads back to itself); "
        "point the link at a real file, or remove it",
        "1 problem in the policies: fix it (see `smartvault validate`); nothing was done",
    ]


def test_apply_refuses_a_plan_that_is_a_fifo_without_blocking(runner, ec2, policy_file, tmp_path):
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)

    result = bounded(
        lambda: run(runner, "apply", "--plan", str(fifo), "--yes", policy_file), fifos=[fifo]
    )

    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"Error: {fifo}: a FIFO (named pipe), not a regular file; SmartVault reads only "
        "regular files: replace it with the file itself, or move it away"
    )


def test_apply_refuses_dev_zero_as_a_plan_without_reading_it_whole(runner, ec2, policy_file):
    result = bounded(lambda: run(runner, "apply", "--plan", "/dev/zero", "--yes", policy_file))

    assert result.exit_code == 1
    assert "/dev/zero: a character device, not a regular file" in one_error_line(result)


def test_apply_refuses_a_plan_larger_than_1_mib_in_one_line(runner, ec2, policy_file, tmp_path):
    saved = tmp_path / "plan.json"
    saved.write_text("[" + " " * (1024 * 1024) + "]")

    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"Error: {saved}: the file is larger than 1 MiB (1,048,578 bytes), the most "
        "SmartVault reads from one file; apply without --plan, or save plans of fewer "
        "policies (`smartvault plan --out FILE PATH...`)"
    )


def test_apply_refuses_a_plan_that_is_not_utf8_in_one_line(runner, ec2, policy_file, tmp_path):
    saved = tmp_path / "plan.json"
    saved.write_bytes(b'{"format_version": 1,\n "at": "\xff"}\n')

    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"Error: {saved}:2:9: the file is not UTF-8 text (byte 0xff); save it as UTF-8"
    )


def test_apply_refuses_a_deeply_nested_plan_in_one_line(runner, ec2, policy_file, tmp_path):
    saved = tmp_path / "plan.json"
    saved.write_text("[" * 100_000 + "]" * 100_000)

    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"Error: {saved} nests values too deeply to be a plan; "
        "make it again with `smartvault plan --out FILE`"
    )


def test_apply_says_what_became_of_a_delete_record_an_earlier_run_left_pending(
    runner, ec2, policy_file
):
    from smartvault.aws.audit import AuditLog
    from smartvault.core.model import AuditRecord

    launch(ec2, 1)
    run(runner, "audit", "init")
    then = datetime.now(UTC) - timedelta(hours=2)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    AuditLog(dynamodb, "smartvault-audit", clock=lambda: then).records.write(
        AuditRecord(
            run_id="run-killed",
            timestamp=then,
            action="delete",
            outcome="pending",
            policy="nightly",
            region="us-east-1",
            resource_id="i-0gone",
            recovery_point="nightly/i-0gone/20261101T0300Z",
            snapshot_ids=("snap-0123456789abcdef0",),
        )
    )

    result = run(runner, "apply", "--yes", policy_file)

    assert result.exit_code == 0, result.output
    assert "note: pending delete record" in result.output
    assert "of run run-killed closed: succeeded" in result.output
