"""`smartvault apply` end to end, against moto's simulated account."""

from __future__ import annotations

import json
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import boto3
import pytest

from smartvault.cli import cli
from tests.cli import POLICY
from tests.cli import one_error_line
from tests.cli import run
from tests.moto_helpers import age_recovery_point
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots
from tests.moto_helpers import tags_of


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


def test_apply_before_audit_init_fails_in_one_line_before_asking(runner, ec2, policy_file):
    launch(ec2, 2)

    result = run(runner, "apply", "--yes", policy_file)

    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("Error: audit table smartvault-audit not found in us-east-1")
    assert "smartvault audit init" in line
    assert "failed:" not in result.output
    assert managed_snapshots(ec2) == []


@pytest.mark.parametrize("answer", ["n\n", ""], ids=["no", "end-of-input"])
def test_declining_at_the_prompt_changes_nothing_and_says_so(
    runner, ec2, policy_file, monkeypatch, answer
):
    monkeypatch.setattr("smartvault.cli.apply._stdin_is_tty", lambda: True)
    launch(ec2, 1)
    run(runner, "audit", "init")

    result = runner.invoke(cli, ["--region", "us-east-1", "apply", policy_file], input=answer)

    assert result.exit_code == 1
    assert "Apply this action? [y/N]" in result.output
    assert result.stderr.strip() == "Not applied: nothing was changed."
    assert "Aborted" not in result.output
    assert managed_snapshots(ec2) == []


def test_confirming_at_the_prompt_applies(runner, ec2, policy_file, monkeypatch):
    monkeypatch.setattr("smartvault.cli.apply._stdin_is_tty", lambda: True)
    launch(ec2, 2)
    run(runner, "audit", "init")

    result = runner.invoke(cli, ["--region", "us-east-1", "apply", policy_file], input="y\n")

    assert result.exit_code == 0, result.output
    assert "Apply these 2 actions? [y/N]" in result.output
    assert len(managed_snapshots(ec2)) == 2


def test_max_duration_stops_and_says_to_run_again_once(runner, ec2, policy_file, monkeypatch):
    # An hour passes once the first recovery point exists.
    monkeypatch.setattr(
        "smartvault.cli.apply._monotonic", lambda: 3600.0 if managed_snapshots(ec2) else 0.0
    )
    launch(ec2, 3)
    run(runner, "audit", "init")

    result = run(runner, "apply", "--yes", "--max-duration", "1m", policy_file)

    assert result.exit_code == 3, result.output  # stopped with work remaining: not 0, not 1
    assert len(managed_snapshots(ec2)) == 1
    assert result.stderr.splitlines() == [
        "Stopped after --max-duration 1m: 2 not started; "
        "run `smartvault apply` again to finish the work."
    ]
    closing = re.search(r"^Run (\S+) \(INCOMPLETE: work remains\): (.*)$", result.stdout, re.M)
    assert closing, result.stdout
    assert closing[2] == "1 succeeded, 0 failed, 0 skipped, 2 not started."
    assert "Nothing to do" not in result.output
    run_id = closing[1]
    assert f"Its audit records: smartvault audit list --run-id {run_id}" in result.stdout

    again = run(runner, "apply", "--yes", policy_file)

    assert again.exit_code == 0, again.output
    assert len(managed_snapshots(ec2)) == 3
    listed = run(runner, "audit", "list", "--run-id", run_id, "--format", "json")
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.stdout)
    assert [(r["run_id"], r["action"], r["outcome"]) for r in records] == [
        (run_id, "create", "succeeded")
    ]


def test_a_failed_action_exits_1_and_names_the_run_id_command(runner, ec2, tmp_path):
    """The volume is deleted between the plan and its create: EC2 refuses, the run fails."""
    volume = ec2.create_volume(
        AvailabilityZone="us-east-1a",
        Size=8,
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": "backup", "Value": "true"}]}
        ],
    )["VolumeId"]
    path = tmp_path / "volumes.yaml"
    path.write_text(
        POLICY.replace("  - name: nightly\n", "  - name: nightly\n    resource: volume\n")
    )
    run(runner, "audit", "init")
    from smartvault.cli import apply as apply_module

    confirm = apply_module._Terminal.confirm

    def confirm_then_delete(self, plan, run_id):
        confirm(self, plan, run_id)
        ec2.delete_volume(VolumeId=volume)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(apply_module._Terminal, "confirm", confirm_then_delete)
        result = run(runner, "apply", "--yes", str(path))

    assert result.exit_code == 1, result.output
    assert "0 succeeded, 1 failed, 0 skipped, 0 not started." in result.stdout
    assert "Its audit records: smartvault audit list --run-id " in result.stdout
    assert f"failed: create nightly/{volume}/" in result.stderr


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
