"""`smartvault schema`: the policy JSON Schema, as published."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from smartvault.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def test_schema_prints_json_equal_to_the_published_schema_file(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema"])
    assert result.exit_code == 0
    published = json.loads((ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8"))
    assert json.loads(result.stdout) == published
