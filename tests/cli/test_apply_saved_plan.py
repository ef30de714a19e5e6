"""`smartvault apply --plan FILE`: a saved plan is applied only while it is still true, and
only from a file that is what it seems."""

from __future__ import annotations

import json
import os
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from tests.bounded import bounded
from tests.cli import POLICY
from tests.cli import one_error_line
from tests.cli import run
from tests.moto_helpers import age_recovery_point
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots


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


def test_max_plan_age_is_shown_as_it_was_given(runner, ec2, policy_file, tmp_path):
    """Before, `--max-plan-age 30m` was shown as 0.5h, and an age of minutes as 0.0h."""
    launch(ec2, 1)
    run(runner, "audit", "init")
    saved = tmp_path / "plan.json"
    run(runner, "plan", "--at", _iso_in(-timedelta(minutes=45)), "--out", str(saved), policy_file)

    result = run(
        runner, "apply", "--plan", str(saved), "--max-plan-age", "30m", "--yes", policy_file
    )

    assert result.exit_code == 1
    assert "45m ago, more than --max-plan-age 30m; nothing was done" in one_error_line(result)


def test_a_saved_plan_already_applied_names_the_run_that_applied_it(
    runner, ec2, policy_file, tmp_path
):
    """Before, it said the plan "no longer matches the account"."""
    launch(ec2, 2)
    run(runner, "audit", "init")
    saved = tmp_path / "plan.json"
    run(runner, "plan", "--out", str(saved), policy_file)
    assert run(runner, "apply", "--plan", str(saved), "--yes", policy_file).exit_code == 0
    [run_id] = {
        r["run_id"] for r in json.loads(run(runner, "audit", "list", "--format", "json").output)
    }

    result = run(runner, "apply", "--plan", str(saved), "--yes", policy_file)

    assert result.exit_code == 1
    assert f"the saved plan was already applied by run {run_id}; nothing was done" in (
        result.stderr
    )
    assert "no longer matches the account" not in result.stderr
    assert len(managed_snapshots(ec2)) == 2


def test_a_saved_plan_given_other_policy_files_lists_both(runner, ec2, policy_file, tmp_path):
    """Before, it said the plan "no longer matches the account"."""
    launch(ec2, 1)
    run(runner, "audit", "init")
    saved = tmp_path / "plan.json"
    run(runner, "plan", "--out", str(saved), policy_file)
    other = tmp_path / "weekly.yaml"
    other.write_text(POLICY.replace("name: nightly", "name: weekly"))

    result = run(runner, "apply", "--plan", str(saved), "--yes", str(other))

    assert result.exit_code == 1
    assert (
        "the saved plan was made from other policy files than these: "
        f"the plan's: {policy_file}; given now: {other}; nothing was done"
    ) in result.stderr
    assert managed_snapshots(ec2) == []
