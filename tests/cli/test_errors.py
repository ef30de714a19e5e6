"""What an operator gets wrong, and the one readable message (and exit code) each gets."""

from __future__ import annotations

import pytest

from tests.cli import POLICY
from tests.cli import one_error_line
from tests.cli import run


def test_invalid_policies_fail_plan_with_located_errors_and_no_traceback(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("keep_last: 2", "keep_last: 0"))

    result = run(runner, "plan", str(bad))

    assert result.exit_code == 1
    assert f"{bad}:9:18: keep_last: 0 is less than the minimum of 1" in result.output
    assert "Traceback" not in result.output


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


def test_detailed_exitcode_turns_a_usage_error_into_1_not_2(runner, ec2, policy_file):
    detailed = run(runner, "plan", "--detailed-exitcode", "--at", "yesterday", policy_file)
    plain = run(runner, "plan", "--at", "yesterday", policy_file)

    assert detailed.exit_code == 1
    assert plain.exit_code == 2
    assert "not an ISO 8601 time" in detailed.output
