"""Tests of smartvault.cli, and what they share: a policy, and ways to run the command."""

from __future__ import annotations

from smartvault.cli import cli

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


def run(runner, *args: str):
    """Invoke the CLI in us-east-1; fail loudly on an unexpected traceback."""
    result = runner.invoke(cli, ["--region", "us-east-1", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_error_line(result) -> str:
    """The single line a failed command printed on stderr (and no traceback)."""
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
