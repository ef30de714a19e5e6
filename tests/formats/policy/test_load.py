"""Policy files and folders: what is read, in what order, and every way a path can be wrong."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.errors import PolicyError
from smartvault.errors import Problem
from smartvault.formats.policy import load_policies
from tests.bounded import bounded
from tests.factories import MINIMAL_POLICY

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "policies").glob("*.yaml"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def named(name: str) -> str:
    return MINIMAL_POLICY.replace("nightly", name)


class TestLoadPolicies:
    @pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
    def test_every_example_policy_file_loads(self, path: Path) -> None:
        policies = load_policies([path])
        assert policies.policies
        assert policies.files == (str(path),)

    def test_the_examples_start_with_the_editor_schema_modeline(self) -> None:
        assert {p.name for p in EXAMPLES} >= {"nightly.yaml", "tiered.yaml"}
        for path in EXAMPLES:
            first = path.read_text(encoding="utf-8").splitlines()[0]
            assert first == "# yaml-language-server: $schema=../schemas/policy.schema.json"

    def test_a_directory_loads_yaml_and_yml_below_it_sorted_with_relative_names(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "policies" / "b.yml", named("b"))
        write(tmp_path / "policies" / "a.yaml", named("a"))
        write(tmp_path / "policies" / "team" / "c.yaml", named("c"))
        write(tmp_path / "policies" / "README.md", "not a policy")
        write(tmp_path / "policies" / ".hidden.yaml", "not: [valid")
        write(tmp_path / "policies" / ".git" / "x.yaml", "not: [valid")
        result = load_policies(["./policies"])
        assert result.files == ("policies/a.yaml", "policies/b.yml", "policies/team/c.yaml")
        assert [(p.name, p.file) for p in result.policies] == [
            ("a", "policies/a.yaml"),
            ("b", "policies/b.yml"),
            ("c", "policies/team/c.yaml"),
        ]

    def test_a_file_named_twice_is_read_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "policies" / "a.yaml", named("a"))
        result = load_policies(["policies", "policies/a.yaml"])
        assert [p.name for p in result.policies] == ["a"]

    def test_missing_paths_and_empty_directories_are_problems(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "empty").mkdir()
        with pytest.raises(PolicyError) as caught:
            load_policies(["missing.yaml", "empty"])
        assert [str(p) for p in caught.value.problems] == [
            "empty: no policy files (*.yaml, *.yml) in this directory",
            "missing.yaml: no such file or directory",
        ]

    def test_an_unreadable_file_is_a_problem(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "policies").mkdir()
        (tmp_path / "policies" / "gone.yaml").symlink_to(tmp_path / "nowhere")
        with pytest.raises(PolicyError) as caught:
            load_policies(["policies"])
        assert [str(p) for p in caught.value.problems] == [
            "policies/gone.yaml: cannot read the file: No such file or directory"
        ]

    def test_all_problems_of_all_files_are_raised_together_sorted(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "b.yaml", named("shared") + "    enabled: maybe\n")
        write(tmp_path / "p" / "a.yaml", named("shared") + "    retention: {keep_last: 0}\n")
        with pytest.raises(PolicyError) as caught:
            load_policies(["p"])
        assert [str(p) for p in caught.value.problems] == [
            "p/a.yaml:9:28: keep_last: 0 is less than the minimum of 1",
            "p/b.yaml:3:11: policy name `shared` is already used at p/a.yaml:3:11; "
            "names must be unique across every loaded file",
            "p/b.yaml:9:14: enabled: expected true or false, got `maybe`",
        ]

    def test_a_utf8_byte_order_mark_is_accepted(self, tmp_path: Path) -> None:
        path = tmp_path / "bom.yaml"
        path.write_bytes(b"\xef\xbb\xbf" + MINIMAL_POLICY.encode())
        assert load_policies([path]).policies[0].name == "nightly"

    def test_the_policy_set_keeps_file_then_document_order(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        second = MINIMAL_POLICY.split("policies:\n", 1)[1].replace("nightly", "alpha")
        write(tmp_path / "p" / "z.yaml", named("zulu") + second)
        write(tmp_path / "p" / "m.yaml", named("mike"))
        result = load_policies(["p"])
        assert [p.name for p in result.policies] == ["mike", "zulu", "alpha"]
        assert result.get("alpha") is not None
        assert result.get("alpha").line == 9  # type: ignore[union-attr]

    @given(st.binary(max_size=300))
    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    def test_any_bytes_on_disk_load_or_raise_policy_error_only(self, data: bytes) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder, "fuzz.yaml")
            path.write_bytes(data)
            problems: tuple[Problem, ...] = ()
            try:
                load_policies([path])
            except PolicyError as exc:
                problems = exc.problems
                assert problems, "a PolicyError always says what is wrong"
            assert all(p.file == str(path) for p in problems)


def load_problems(*paths: str | Path, fifos: tuple[Path, ...] = ()) -> list[str]:
    """The problems of loading ``paths``; fails the test instead of hanging or blowing up."""

    def load() -> list[str]:
        with pytest.raises(PolicyError) as caught:
            load_policies(list(paths))
        return [str(p) for p in caught.value.problems]

    return bounded(load, fifos=fifos)


class TestFilesThatAreNotPolicies:
    """Only regular files of at most 1 MiB are read; anything else is a located problem."""

    def test_a_link_to_dev_zero_in_a_policy_folder_is_a_problem_not_a_memory_blow_up(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.symlink("/dev/zero", tmp_path / "p" / "zero.yaml")
        assert load_problems("p") == [
            "p/zero.yaml: a link to a character device (/dev/zero), not a regular file; "
            "SmartVault reads only regular files: replace it with the file itself, "
            "or move it away"
        ]

    def test_the_loader_refuses_a_fifo_in_a_policy_folder_without_blocking(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.mkfifo(tmp_path / "p" / "pipe.yaml")
        assert load_problems("p", fifos=(tmp_path / "p" / "pipe.yaml",)) == [
            "p/pipe.yaml: a FIFO (named pipe), not a regular file; SmartVault reads only "
            "regular files: replace it with the file itself, or move it away"
        ]

    def test_the_loader_refuses_a_fifo_named_explicitly_without_blocking(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        os.mkfifo("pipe.yaml")
        assert load_problems("pipe.yaml", fifos=(tmp_path / "pipe.yaml",)) == [
            "pipe.yaml: a FIFO (named pipe), not a regular file; SmartVault reads only "
            "regular files: replace it with the file itself, or move it away"
        ]

    def test_a_file_larger_than_1_mib_is_a_problem_and_is_not_parsed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "big.yaml", MINIMAL_POLICY + "# padding\n" * 200_000)
        assert load_problems("big.yaml") == [
            "big.yaml: the file is larger than 1 MiB (2,000,138 bytes), the most SmartVault "
            "reads from one file; split its policies into several files"
        ]

    def test_a_file_of_exactly_1_mib_is_read(self, tmp_path: Path) -> None:
        padding = 1024 * 1024 - len(MINIMAL_POLICY) - 1
        path = write(tmp_path / "full.yaml", MINIMAL_POLICY + "#" * padding + "\n")
        assert path.stat().st_size == 1024 * 1024
        assert [p.name for p in load_policies([path]).policies] == ["nightly"]

    def test_a_symlink_loop_in_a_policy_folder_is_a_problem_not_a_traceback(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.symlink("loop.yaml", tmp_path / "p" / "loop.yaml")
        assert load_problems("p") == [
            "p/loop.yaml: a symbolic link loop (the link leads back to itself); "
            "point the link at a real file, or remove it"
        ]

    def test_a_symlink_loop_named_explicitly_is_called_a_loop_not_missing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        os.symlink("b.yaml", "a.yaml")
        os.symlink("a.yaml", "b.yaml")
        assert load_problems("a.yaml") == [
            "a.yaml: a symbolic link loop (the link leads back to itself); "
            "point the link at a real file, or remove it"
        ]

    def test_a_linked_folder_inside_a_policy_folder_is_followed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "shared" / "team.yaml", named("team"))
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.symlink("../shared", tmp_path / "p" / "shared")
        result = load_policies(["p"])
        assert result.files == ("p/a.yaml", "p/shared/team.yaml")

    def test_a_folder_reached_twice_through_links_is_read_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "shared" / "team.yaml", named("team"))
        (tmp_path / "p").mkdir()
        os.symlink("../shared", tmp_path / "p" / "one")
        os.symlink("../shared", tmp_path / "p" / "two")
        assert load_policies(["p"]).files == ("p/one/team.yaml",)

    def test_a_link_back_to_an_enclosing_folder_is_a_problem_not_a_walk_without_end(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "team" / "a.yaml", named("a"))
        os.symlink("..", tmp_path / "p" / "team" / "up")
        assert load_problems("p") == [
            "p/team/up: a link back to an enclosing folder (p), which would be read without "
            "end; remove the link"
        ]

    def test_a_link_loop_among_folders_is_a_problem_not_a_traceback(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.symlink("team", tmp_path / "p" / "team")
        assert load_problems("p") == [
            "p/team: a symbolic link loop (the link leads back to itself); "
            "point the link at a real file, or remove it"
        ]
