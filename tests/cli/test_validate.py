"""`smartvault validate`, run through click's CliRunner.

Every case in ``tests/bad_policies`` is a file (or a folder of files) with one
mistake, and a sidecar ``<case>.expected`` holding the exact problems
`validate` must report, one ``file:line:column: message`` per line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartvault.cli import cli
from smartvault.errors import Problem
from tests.bounded import bounded

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "bad_policies"
CASES = sorted(p.name.removesuffix(".expected") for p in CORPUS.glob("*.expected"))


def _case_path(case: str) -> str:
    return case if (CORPUS / case).is_dir() else f"{case}.yaml"


def _expected(case: str) -> list[str]:
    return (CORPUS / f"{case}.expected").read_text(encoding="utf-8").splitlines()


def test_the_corpus_has_at_least_45_cases_each_with_its_expectation() -> None:
    cases = {p.name.removesuffix(".yaml") for p in CORPUS.iterdir() if p.suffix != ".expected"}
    assert len(cases) >= 45
    assert cases == set(CASES)
    assert all(_expected(case) for case in CASES), "every expectation names a problem"


@pytest.mark.parametrize("case", CASES)
def test_validate_reports_each_bad_policy_exactly_where_it_is(
    case: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS)
    result = runner.invoke(cli, ["validate", _case_path(case)])
    expected = _expected(case)
    n = len(expected)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [*expected, f"{n} problem{'s' if n != 1 else ''} found"]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", CASES)
def test_validate_as_json_lists_the_same_problems_as_objects(
    case: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS)
    result = runner.invoke(cli, ["validate", "--format", "json", _case_path(case)])
    assert result.exit_code == 1
    items = json.loads(result.stdout)
    assert all(set(item) == {"file", "line", "column", "message"} for item in items)
    assert [str(Problem(**item)) for item in items] == _expected(case)


def test_validate_says_ok_with_counts_for_the_example_policies(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(cli, ["validate"])  # default: ./policies
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok: 2 policies in 2 files\n"


def test_validate_counts_one_policy_in_one_file_in_the_singular(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(cli, ["validate", "policies/nightly.yaml"])
    assert result.exit_code == 0
    assert result.stdout == "ok: 1 policy in 1 file\n"


def test_validate_as_json_prints_an_empty_list_for_valid_policies(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(cli, ["validate", "--format", "json", "policies"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_validate_reports_a_missing_path_without_a_traceback(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["validate", "nowhere.yaml"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "nowhere.yaml: no such file or directory",
        "1 problem found",
    ]
    assert "Traceback" not in result.output


def test_validate_reports_problems_of_every_file_in_one_run(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CORPUS)
    result = runner.invoke(cli, ["validate", "name-uppercase.yaml", "keep-last-zero.yaml"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        *_expected("keep-last-zero"),  # sorted by file name, not by the order given
        *_expected("name-uppercase"),
        "2 problems found",
    ]


def test_validate_reports_files_it_will_not_read_as_json_without_blocking(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p").mkdir()
    os.mkfifo(tmp_path / "p" / "pipe.yaml")
    os.symlink("/dev/zero", tmp_path / "p" / "zero.yml")
    os.symlink("loop.yaml", tmp_path / "p" / "loop.yaml")
    (tmp_path / "p" / "big.yaml").write_text("#" * (1024 * 1024 + 1))

    result = bounded(
        lambda: runner.invoke(cli, ["validate", "--format", "json", "p"]),
        fifos=[tmp_path / "p" / "pipe.yaml"],
    )

    assert result.exit_code == 1
    items = json.loads(result.stdout)
    assert [(item["file"], item["line"], item["column"]) for item in items] == [
        ("p/big.yaml", 0, 0),
        ("p/loop.yaml", 0, 0),
        ("p/pipe.yaml", 0, 0),
        ("p/zero.yml", 0, 0),
    ]
    starts = ["the file is larger than 1 MiB", "a symbolic link loop", "a FIFO", "a link to a"]
    assert all(item["message"].startswith(start) for item, start in zip(items, starts, strict=True))
