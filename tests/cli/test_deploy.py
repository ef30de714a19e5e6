"""`smartvault deploy`: the template and the package commands."""

from __future__ import annotations

from smartvault.cli import cli
from tests.cli import one_error_line


def test_deploy_template_refuses_a_misspelt_region(runner, policy_file):
    result = runner.invoke(cli, ["--region", "us-eest-1", "deploy", "template", policy_file])

    assert result.exit_code == 1
    assert one_error_line(result) == "Error: unknown region `us-eest-1`; did you mean `us-east-1`?"
    assert result.stdout == ""
