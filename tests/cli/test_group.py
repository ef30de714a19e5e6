"""The root `smartvault` group: its flags, shared by every command, and every help text."""

from __future__ import annotations

import pytest

from smartvault.cli import cli
from tests.cli import run


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


def test_regions_may_be_comma_separated_with_spaces(runner, ec2, policy_file):
    result = runner.invoke(cli, ["--region", "us-east-1, us-west-2", "plan", policy_file])

    assert result.exit_code == 0, result.output
    assert "Regions: us-east-1, us-west-2;" in result.output


def test_a_malformed_audit_table_name_is_a_usage_error(runner, ec2):
    result = run(runner, "--audit-table", "my table", "audit", "init")

    assert result.exit_code == 2
    assert "is not a DynamoDB table name" in result.output


@pytest.mark.parametrize(
    "command",
    ["", "validate", "schema", "plan", "apply", "audit", "audit init", "audit list", "deploy"],
)
def test_every_help_text_renders(runner, command):
    result = runner.invoke(cli, [*command.split(), "--help"], prog_name="smartvault")

    assert result.exit_code == 0
    assert f"Usage: smartvault {command}".rstrip() in result.output
