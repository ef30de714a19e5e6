"""The pre-commit hook other repositories use: what it runs, and on which files.

``pre-commit try-repo`` itself needs a fresh virtualenv and the network for the hook's
dependencies, so it is run by hand (docs in the README); this checks the manifest it reads
and that its entry, run as pre-commit runs it, validates the policy folder.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from smartvault.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def hook() -> dict[str, object]:
    (only,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return dict(only)


def test_the_hook_validates_the_policy_folder_whole_when_a_policy_file_changes() -> None:
    manifest = hook()

    assert manifest["id"] == "smartvault-validate"
    assert manifest["language"] == "python"  # installs this package, whose script it runs
    assert shlex.split(str(manifest["entry"])) == ["smartvault", "validate"]
    # Names are unique across files: one changed file is checked with all the others.
    assert manifest["pass_filenames"] is False
    files = re.compile(str(manifest["files"]))
    assert files.search("policies/prod.yaml")
    assert files.search("policies/team/a.yml")
    assert not files.search("README.md")
    assert not files.search("other/x.yaml")


def test_its_entry_passes_good_policies_and_fails_bad_ones_with_their_place(
    runner, tmp_path, monkeypatch
) -> None:
    (tmp_path / "policies").mkdir()
    for example in (ROOT / "policies").glob("*.yaml"):
        (tmp_path / "policies" / example.name).write_text(example.read_text())
    monkeypatch.chdir(tmp_path)
    args = shlex.split(str(hook()["entry"]))[1:]

    good = runner.invoke(cli, args)
    (tmp_path / "policies" / "bad.yaml").write_text("version: 1\npolicies:\n  - name: Bad\n")
    bad = runner.invoke(cli, args)

    assert good.exit_code == 0, good.output
    assert bad.exit_code == 1
    assert "policies/bad.yaml:3:" in bad.output
