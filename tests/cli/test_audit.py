"""`smartvault audit`: the audit table's commands."""

from __future__ import annotations

from tests.cli import one_error_line
from tests.cli import run


def test_audit_list_without_the_table_says_how_to_find_or_create_it(runner, ec2):
    result = run(runner, "audit", "list")

    assert result.exit_code == 1
    line = one_error_line(result)
    assert "audit table smartvault-audit not found in us-east-1" in line
    assert "--audit-table" in line
    assert "smartvault audit init" in line
    assert "next run" not in line
