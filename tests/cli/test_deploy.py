"""`smartvault deploy`: the template and the package commands."""

from __future__ import annotations

import yaml

from smartvault.cli import cli
from tests.cli import one_error_line
from tests.cli import run


def test_deploy_template_refuses_a_misspelt_region(runner, policy_file):
    result = runner.invoke(cli, ["--region", "us-eest-1", "deploy", "template", policy_file])

    assert result.exit_code == 1
    assert one_error_line(result) == "Error: unknown region `us-eest-1`; did you mean `us-east-1`?"
    assert result.stdout == ""


def template_resources(result) -> dict:
    return yaml.safe_load(result.stdout)["Resources"]


def test_deploy_template_has_an_hourly_catch_up_schedule_by_default(runner, policy_file):
    result = run(runner, "deploy", "template", policy_file)

    assert result.exit_code == 0, result.output
    schedule = template_resources(result)["CatchUpSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 hour)"


def test_deploy_template_takes_another_catch_up_schedule(runner, policy_file):
    result = run(runner, "deploy", "template", "--catch-up", "rate(30 minutes)", policy_file)

    assert result.exit_code == 0, result.output
    schedule = template_resources(result)["CatchUpSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(30 minutes)"


def test_deploy_template_without_catch_up_has_no_catch_up_schedule(runner, policy_file):
    result = run(runner, "deploy", "template", "--no-catch-up", policy_file)

    assert result.exit_code == 0, result.output
    assert "CatchUpSchedule" not in template_resources(result)


def test_an_invalid_catch_up_schedule_is_a_usage_error_that_names_the_option(runner, policy_file):
    result = run(runner, "deploy", "template", "--catch-up", "rate(1 hours", policy_file)

    assert result.exit_code == 2
    assert (
        "Error: Invalid value for '--catch-up': catch-up schedule 'rate(1 hours': "
        "rate(...) must end with a closing parenthesis"
    ) in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_catch_up_and_no_catch_up_together_are_a_usage_error(runner, policy_file):
    result = run(
        runner, "deploy", "template", "--catch-up", "rate(2 hours)", "--no-catch-up", policy_file
    )

    assert result.exit_code == 2
    assert "give --catch-up EXPRESSION or --no-catch-up, not both" in result.stderr


def test_deploy_template_watches_the_policy_in_each_region_given(runner, policy_file):
    result = runner.invoke(
        cli, ["--region", "us-east-1", "--region", "eu-west-1", "deploy", "template", policy_file]
    )

    assert result.exit_code == 0, result.output
    rpo = {
        rid: r["Properties"]["Dimensions"]
        for rid, r in template_resources(result).items()
        if rid.startswith("RpoAlarm")
    }
    assert rpo == {
        "RpoAlarmNightlyUsEast1": [
            {"Name": "Policy", "Value": "nightly"},
            {"Name": "Region", "Value": "us-east-1"},
        ],
        "RpoAlarmNightlyEuWest1": [
            {"Name": "Policy", "Value": "nightly"},
            {"Name": "Region", "Value": "eu-west-1"},
        ],
    }
