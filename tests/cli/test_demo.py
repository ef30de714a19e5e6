"""``smartvault demo``: the whole cycle on the embedded simulated account, run as a person
runs it, twice in a row, with nothing written outside its temporary folder."""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from pathlib import Path

import pytest

from smartvault.cli import cli
from smartvault.demo.script import _shorten_retention

#: a step's heading: ``━━ smartvault plan ━━━...``, and the closing ``━━ what happened ━━━``
HEADING = r"^━━ (?:smartvault )?(.+?) ━"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def walled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A HOME, a working directory and a temporary directory of the test's own, with a
    file in each that must still be there, unchanged, afterwards."""
    places = {name: tmp_path / name for name in ("home", "cwd", "tmp")}
    for path in places.values():
        path.mkdir()
    (places["home"] / ".aws").mkdir()
    (places["home"] / ".aws" / "config").write_text("[default]\nregion = ap-south-1\n")
    (places["cwd"] / "notes.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(places["home"]))
    monkeypatch.setenv("AWS_PROFILE", "production")  # must not be used
    monkeypatch.chdir(places["cwd"])
    monkeypatch.setattr(tempfile, "tempdir", str(places["tmp"]))
    return places


def counted(output: str) -> dict[str, int]:
    (line,) = [x for x in output.splitlines() if "recovery points created" in x]
    return {
        word: int(number)
        for number, word in re.findall(
            r"(\d+) (?:recovery points )?(created|deleted|skipped|orphaned)", line
        )
    }


def test_the_demo_runs_the_whole_cycle_twice_and_leaves_nothing_behind(runner, walled):
    before = {name: tree(path) for name, path in walled.items()}
    environ = dict(os.environ)

    first = runner.invoke(cli, ["demo"])
    second = runner.invoke(cli, ["demo", "--report", str(walled["cwd"] / "report.html")])

    for result in (first, second):
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert counted(result.output) == {"created": 8, "deleted": 12, "skipped": 1, "orphaned": 3}
        assert "Restore tests: 5 passed, 0 failed." in result.output
        assert "The shortened retention: safety held 19 deletions" in result.output
    out = first.output
    headings = re.findall(HEADING, out, re.MULTILINE)
    assert headings == [
        "validate",
        "audit init",
        "coverage",
        "plan",
        "apply",
        "plan again",
        "verify",
        "plan --compare",
        "audit list",
        "audit report",
        "what happened",
    ]
    steps = dict(zip(headings, re.split(r"^━━ .+$", out, flags=re.MULTILINE)[1:], strict=True))
    assert "ok: 2 policies in 2 files" in steps["validate"]
    assert "excluded from nightly by exclude_tags backup-skip" in steps["coverage"]
    assert "(build-runner)" in steps["coverage"]
    assert "in use by AMI" in steps["plan"]
    assert "Orphans (their policy is in no loaded file; never deleted)" in steps["plan"]
    assert "Plan: 8 to create, 12 to delete" in steps["plan"]
    assert "20 succeeded, 0 failed" in steps["apply"]
    assert "No changes." in steps["plan again"]
    assert "5 succeeded, 0 failed" in steps["verify"]
    assert "Compared with HEAD" in steps["plan --compare"]
    assert "all 19 held by safety" in steps["plan --compare"]
    assert "smartvault apply --allow-deletes nightly" in steps["plan --compare"]
    assert "succeeded verify" in steps["audit list"]
    assert "succeeded create" in steps["audit list"]
    assert re.search(r"wrote \S+report\.html: \d+ records of the last 30d", steps["audit report"])
    # The second run kept its page where --report said, and wrote nothing else outside
    # the demo's own folder, which is gone; the environment is as it was.
    page = walled["cwd"] / "report.html"
    assert f"The report page: {page}" in second.output
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert 'data-count="' in page.read_text()
    page.unlink()
    assert {name: tree(path) for name, path in walled.items()} == before
    assert list(walled["tmp"].iterdir()) == []
    assert dict(os.environ) == environ


def test_without_moto_it_says_how_to_install_it(runner, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "moto" else real(name, *a)
    )

    result = runner.invoke(cli, ["demo"])

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "pip install -e '.[demo]'" in result.stderr


def test_invalid_policies_of_ones_own_stop_the_demo_after_validate(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\npolicies:\n  - name: bad\n    selector: 3\n")

    result = runner.invoke(cli, ["demo", str(bad)])

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert re.findall(HEADING, result.output, re.MULTILINE) == [
        "validate",
        "what happened",
    ]
    assert "bad.yaml:4:" in result.output
    assert "The demo stops here: fix the policies above" in result.output
    assert "these steps did not succeed: validate" in result.stderr
    assert bad.read_text().endswith("selector: 3\n")


def test_the_edit_under_review_shortens_the_first_retention_it_finds(tmp_path):
    (tmp_path / "b.yaml").write_text("policies:\n  - retention:\n      keep_last: 9\n")
    (tmp_path / "a.yaml").write_text(
        "policies:\n  - retention:\n      max_age: 30d\n      keep_last: 4\n"
    )

    assert _shorten_retention(tmp_path) == "a.yaml: max_age 30d → 1d, keep_last 4 → 1"
    assert (tmp_path / "a.yaml").read_text().endswith("max_age: 1d\n      keep_last: 1\n")
    assert (tmp_path / "b.yaml").read_text().endswith("keep_last: 9\n")
    assert _shorten_retention(tmp_path / "empty") is None
