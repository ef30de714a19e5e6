"""`smartvault audit`: the audit table's commands."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from smartvault.core.model import AuditRecord
from smartvault.engine import Engine
from smartvault.formats.report_html import decoded
from smartvault.settings import Settings
from tests.cli import POLICY
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


def _write(**fields) -> None:
    """One audit record in the table `audit init` made, written as a run writes it."""
    log = Engine(Settings(regions=("us-east-1",))).audit_log()
    record = {
        "run_id": "run-1",
        "timestamp": datetime.now(UTC) - timedelta(minutes=5),
        "action": "create",
        "outcome": "succeeded",
        "policy": "nightly",
        "region": "us-east-1",
        "resource_id": "i-0abc",
        "recovery_point": "nightly/i-0abc/20261201T0300Z",
        **fields,
    }
    log.records.write(AuditRecord(**record))


def test_a_copy_row_shows_its_source_and_its_target_region(runner, ec2):
    """Before, it showed only the source region, beside snapshot ids of the target region."""
    run(runner, "audit", "init")
    _write(action="copy", snapshot_ids=("snap-0copy",), details={"target_region": "us-west-2"})

    text = run(runner, "audit", "list").output
    as_json = json.loads(run(runner, "audit", "list", "--format", "json").output)

    assert " us-east-1→us-west-2 nightly/i-0abc/20261201T0300Z snap-0copy" in text
    assert (as_json[0]["region"], as_json[0]["target_region"]) == ("us-east-1", "us-west-2")


def test_audit_list_of_a_policy_without_records_says_so(runner, ec2, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no policies here: none are needed
    run(runner, "audit", "init")
    _write()

    result = run(runner, "audit", "list", "--policy", "weekly", "--since", "30m")

    assert result.exit_code == 0
    assert result.output == "no audit records of policy weekly in the last 30m\n"


def test_audit_list_of_a_policy_no_policy_file_names_says_that_too(
    runner, ec2, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "nightly.yaml").write_text(POLICY)
    run(runner, "audit", "init")

    result = run(runner, "audit", "list", "--policy", "nigthly")

    assert result.output == (
        "no audit records of policy nigthly in the last 7d, and no policy in policies "
        "is named nigthly; did you mean nightly?\n"
    )


def test_audit_list_without_records_names_the_period(runner, ec2):
    run(runner, "audit", "init")

    assert run(runner, "audit", "list", "--since", "2h").output == (
        "no audit records in the last 2h\n"
    )


def _page_data(path) -> list[list[str]]:
    page = path.read_text(encoding="utf-8")
    start = page.index('<script type="application/json" id="data">') + len(
        '<script type="application/json" id="data">'
    )
    return decoded(json.loads(page[start : page.index("</script>", start)]))


def test_audit_report_writes_the_page_of_the_records_of_the_window(
    runner, ec2, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "nightly.yaml").write_text(POLICY)
    run(runner, "audit", "init")
    _write(snapshot_ids=("snap-0new",))
    _write(outcome="failed", error="IncorrectState", recovery_point="nightly/i-0abc/failed")
    _write(timestamp=datetime.now(UTC) - timedelta(days=40), recovery_point="nightly/i-0abc/old")

    result = run(runner, "audit", "report", "--out", "report.html")

    assert result.exit_code == 0, result.output
    assert result.output == "wrote report.html: 2 records of the last 30d, 1 failed\n"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    rows = _page_data(tmp_path / "report.html")
    assert sorted(r[6] for r in rows) == ["nightly/i-0abc/20261201T0300Z", "nightly/i-0abc/failed"]
    assert "snap-0new" in {r[7] for r in rows}
    # ./policies was there: its schedule (daily) gives the RPO, met five minutes after a create
    assert 'data-rpo="met"' in page


def test_audit_report_without_policies_here_says_the_rpo_is_unknown(
    runner, ec2, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    run(runner, "audit", "init")
    _write()

    result = run(runner, "audit", "report", "--since", "1d", "--out", "r.html")

    assert result.exit_code == 0, result.output
    assert 'data-rpo="unknown"' in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_audit_report_without_the_table_says_how_to_create_it(runner, ec2, tmp_path):
    result = run(runner, "audit", "report", "--out", str(tmp_path / "r.html"))

    assert result.exit_code == 1
    assert "smartvault audit init" in one_error_line(result)
    assert not (tmp_path / "r.html").exists()


def test_audit_report_that_cannot_be_written_says_where(runner, ec2, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(runner, "audit", "init")

    result = run(runner, "audit", "report", "--out", str(tmp_path / "no" / "r.html"))

    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"cannot write the report to {tmp_path / 'no' / 'r.html'}" in line


def test_audit_report_with_broken_policies_here_still_writes_the_page_and_warns(
    runner, ec2, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "nightly.yaml").write_text("version: 1\npolicies: [{name: 3}]\n")
    run(runner, "audit", "init")
    _write()

    result = run(runner, "audit", "report", "--out", "r.html")

    assert result.exit_code == 0, result.output
    assert "warning: the policies in policies/ cannot be read" in result.stderr
    assert "smartvault validate" in result.stderr
    assert 'data-rpo="unknown"' in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_audit_report_with_policy_paths_that_are_not_there_refuses(runner, ec2, tmp_path):
    result = run(runner, "audit", "report", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))

    assert result.exit_code == 1
    assert "no such file or directory" in one_error_line(result)
    assert not (tmp_path / "r").exists()
