"""Reading the policies as they are at a git revision, on a repository made in the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartvault import files
from smartvault.errors import ConfigError
from smartvault.formats.policy.revision import load_policies_at
from tests.cli import POLICY
from tests.git_helpers import commit
from tests.git_helpers import git
from tests.git_helpers import make_repo
from tests.git_helpers import write

WEEKLY = POLICY.replace("name: nightly", "name: weekly")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # never find a repository above the test's own folder
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return make_repo(tmp_path / "repo", {"policies/nightly.yaml": POLICY})


def test_a_folder_is_read_as_it_is_at_the_revision_not_as_it_is_now(repo):
    write(repo, {"policies/nightly.yaml": POLICY.replace("keep_last: 2", "keep_last: 9")})
    write(repo, {"policies/weekly.yaml": WEEKLY})

    at = load_policies_at("main", [str(repo / "policies")])

    assert [p.name for p in at.policies.policies] == ["nightly"]
    (nightly,) = at.policies.policies
    assert nightly.retention.keep_last == 2
    assert nightly.file == "main:policies/nightly.yaml"
    assert at.commit == git(repo, "rev-parse", "main").strip()
    assert at.missing == ()


def test_a_file_deleted_since_the_revision_is_among_its_policies(repo):
    (repo / "policies" / "nightly.yaml").unlink()
    write(repo, {"policies/weekly.yaml": WEEKLY})

    at = load_policies_at("main", [str(repo / "policies")])

    assert [p.name for p in at.policies.policies] == ["nightly"]


def test_a_file_missing_at_the_revision_is_new_and_adds_no_policy(repo):
    write(repo, {"policies/weekly.yaml": WEEKLY})
    path = str(repo / "policies" / "weekly.yaml")

    at = load_policies_at("main", [path])

    assert at.policies.policies == ()
    assert at.missing == (path,)


def test_hidden_files_and_other_suffixes_are_skipped_as_the_loader_skips_them(repo):
    commit(
        repo,
        {
            "policies/.draft.yaml": "not: valid",
            "policies/README.md": "# notes",
            "policies/w.yml": WEEKLY,
        },
        "more",
    )

    at = load_policies_at("HEAD", [str(repo / "policies")])

    assert [p.name for p in at.policies.policies] == ["nightly", "weekly"]


def test_an_unknown_revision_says_so_and_what_to_check(repo):
    with pytest.raises(ConfigError) as refused:
        load_policies_at("no-such-branch", [str(repo / "policies")])

    message = str(refused.value)
    assert "unknown git revision 'no-such-branch'" in message
    assert "git branch -a" in message


def test_an_unknown_origin_branch_suggests_fetching_it(repo):
    with pytest.raises(ConfigError) as refused:
        load_policies_at("origin/main", [str(repo / "policies")])

    assert "`git fetch origin main`" in str(refused.value)
    assert "fetch-depth: 0" in str(refused.value)


def test_a_revision_that_looks_like_an_option_is_refused(repo):
    with pytest.raises(ConfigError, match="is not a git revision"):
        load_policies_at("--output=/tmp/x", [str(repo / "policies")])


def test_a_path_outside_any_git_work_tree_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "p.yaml").write_text(POLICY)

    with pytest.raises(ConfigError) as refused:
        load_policies_at("main", [str(outside / "p.yaml")])

    message = str(refused.value)
    assert message.startswith(f"{outside / 'p.yaml'} is not in a git work tree")
    assert "plan without --compare" in message


def test_invalid_policies_at_the_revision_are_an_error_located_at_the_revision(repo):
    commit(repo, {"policies/nightly.yaml": POLICY.replace("keep_last: 2", "keep_last: -1")}, "x")
    commit(repo, {"policies/nightly.yaml": POLICY}, "fixed")

    with pytest.raises(ConfigError) as refused:
        load_policies_at("HEAD~1", [str(repo / "policies")])

    message = str(refused.value)
    assert message.startswith("the policies at HEAD~1 are not valid")
    assert "HEAD~1:policies/nightly.yaml:9:18: keep_last: -1" in message
    assert "compare with a revision whose policies are valid" in message


def test_a_file_over_the_size_limit_at_the_revision_is_refused_unread(repo):
    commit(repo, {"policies/big.yaml": "#" * (files.MAX_FILE_BYTES + 1)}, "big")

    with pytest.raises(ConfigError) as refused:
        load_policies_at("HEAD", [str(repo / "policies")])

    assert "HEAD:policies/big.yaml: the file is larger than 1 MiB" in str(refused.value)


def test_without_git_on_the_path_the_answer_says_to_install_it(repo, monkeypatch):
    monkeypatch.setenv("PATH", str(repo))  # a folder with no git in it

    with pytest.raises(ConfigError, match="git is not installed"):
        load_policies_at("main", [str(repo / "policies")])


def test_a_file_that_is_not_utf8_at_the_revision_is_located(repo):
    (repo / "policies" / "latin1.yaml").write_bytes(b"version: 1\n# caf\xe9\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "latin-1")

    with pytest.raises(ConfigError) as refused:
        load_policies_at("HEAD", [str(repo / "policies")])

    assert "HEAD:policies/latin1.yaml:2:6: the file is not UTF-8 text (byte 0xe9)" in str(
        refused.value
    )


def test_a_file_named_twice_is_read_once(repo):
    folder = repo / "policies"

    at = load_policies_at("main", [str(folder), str(folder / "nightly.yaml")])

    assert [p.name for p in at.policies.policies] == ["nightly"]
