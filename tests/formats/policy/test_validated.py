"""The manifest of policy files validated when packaged: the same result, without the schema.

A file whose bytes the manifest lists, under this code's schema and version, is loaded
without running the schema again; anything else (an edited file, a manifest of another
schema or version, a missing or malformed manifest) is validated in full, and either
way the policies and every problem are exactly those of loading without a manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault import __version__
from smartvault.core.model import PolicySet
from smartvault.errors import PolicyError
from smartvault.formats.policy import load_policies
from smartvault.formats.policy.schema import schema_sha256
from smartvault.formats.policy.schema import validator
from smartvault.formats.policy.validated import MANIFEST_NAME
from smartvault.formats.policy.validated import Manifest
from smartvault.formats.policy.validated import manifest_bytes
from smartvault.formats.policy.validated import read_manifest
from smartvault.formats.policy.yaml12 import compose
from tests.cli import POLICY as CLI_POLICY
from tests.factories import MINIMAL_POLICY
from tests.formats.policy.test_build import DESIGN_EXAMPLE

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "policies").glob("*.yaml"))
CORPUS = ROOT / "tests" / "bad_policies"
BAD_CASES = sorted(p for p in CORPUS.glob("*.yaml"))
VALID_FIXTURES = {
    "minimal": MINIMAL_POLICY,
    "design-example": DESIGN_EXAMPLE,
    "cli": CLI_POLICY,
}
#: A policy the schema refuses (an unknown key) but that the records could be built from.
UNKNOWN_KEY = MINIMAL_POLICY.replace("  - name: nightly\n", "  - name: nightly\n    xyzzy: 1\n")


def with_manifest(folder: Path) -> Manifest:
    """Write the manifest packaging would write for ``folder``'s policy files; read it back."""
    found = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".yaml", ".yml")
    }
    (folder / MANIFEST_NAME).write_bytes(manifest_bytes(found))
    manifest = read_manifest(folder)
    assert manifest is not None
    return manifest


def vouching_for(folder: Path, *, schema: str | None = None, version: str | None = None) -> Path:
    """A manifest listing every policy file in ``folder`` as it is, valid or not: what a
    manifest forged or left over would say (``schema``/``version``: other than this code's)."""
    listed = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.yaml"))
    }
    document = {
        "schema_sha256": schema or schema_sha256(),
        "smartvault_version": version or __version__,
        "files": listed,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(document))
    return folder


def outcome(folder: Path, manifest: Manifest | None) -> PolicySet | list[str]:
    """The policies, or every problem as printed."""
    try:
        return load_policies([folder], validated=manifest)
    except PolicyError as exc:
        return [str(p) for p in exc.problems]


def passes_schema(path: Path) -> bool:
    """Whether the data of the file at ``path`` pass the schema (whatever else is wrong)."""
    try:
        document = compose(path.read_bytes().decode("utf-8-sig"), path.name)
    except UnicodeDecodeError:
        return False
    return isinstance(document.data, dict) and validator().is_valid(document.data)


def copy_into(folder: Path, *sources: Path) -> Path:
    folder.mkdir()
    for source in sources:
        shutil.copy(source, folder / source.name)
    return folder


class TestSameResult:
    @pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
    def test_a_shipped_policy_loads_the_same_with_its_manifest(
        self, path: Path, tmp_path: Path
    ) -> None:
        folder = copy_into(tmp_path / "policies", path)
        manifest = with_manifest(folder)
        assert dict(manifest.files) == {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
        assert load_policies([folder], validated=manifest) == load_policies([folder])

    def test_the_shipped_folder_loads_the_same_with_its_manifest(self, tmp_path: Path) -> None:
        folder = copy_into(tmp_path / "policies", *SHIPPED)
        without = load_policies([folder])
        assert load_policies([folder], validated=with_manifest(folder)) == without
        assert without.policies

    @pytest.mark.parametrize("text", VALID_FIXTURES.values(), ids=VALID_FIXTURES.keys())
    def test_a_valid_fixture_loads_the_same_with_its_manifest(
        self, text: str, tmp_path: Path
    ) -> None:
        folder = tmp_path / "policies"
        (folder / "team").mkdir(parents=True)
        (folder / "team" / "p.yml").write_text(text, encoding="utf-8")
        manifest = with_manifest(folder)
        assert list(manifest.files) == ["team/p.yml"]
        assert load_policies([folder], validated=manifest) == load_policies([folder])

    @pytest.mark.parametrize(
        "path", [p for p in BAD_CASES if passes_schema(p)], ids=lambda p: p.stem
    )
    def test_a_file_the_schema_passes_but_a_check_refuses_is_refused_the_same_unvalidated(
        self, path: Path, tmp_path: Path
    ) -> None:
        """Only the schema is skipped: every check beyond it still runs, and says the same."""
        folder = vouching_for(copy_into(tmp_path / "p", path))
        manifest = read_manifest(folder)
        assert manifest is not None
        assert manifest.passed(folder / path.name, path.read_bytes())
        problems = outcome(folder, manifest)
        assert problems == outcome(folder, None)
        assert isinstance(problems, list)
        assert problems


class TestManifest:
    def test_it_lists_only_the_files_the_schema_passes_sorted_and_deterministic(self) -> None:
        files = {
            "b.yaml": MINIMAL_POLICY.encode(),
            "a/c.yml": DESIGN_EXAMPLE.encode(),
            "bad.yaml": UNKNOWN_KEY.encode(),
            "not-yaml.yaml": b"version: [1",
            "not-utf8.yaml": b"\xff\xfe",
        }
        written = manifest_bytes(files)
        assert written == manifest_bytes(dict(reversed(files.items())))
        document = json.loads(written)
        assert document == {
            "schema_sha256": schema_sha256(),
            "smartvault_version": __version__,
            "files": {
                "a/c.yml": hashlib.sha256(DESIGN_EXAMPLE.encode()).hexdigest(),
                "b.yaml": hashlib.sha256(MINIMAL_POLICY.encode()).hexdigest(),
            },
        }
        assert written == (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()

    def test_the_schema_digest_is_of_the_shipped_schema_file(self) -> None:
        shipped = (ROOT / "smartvault" / "schemas" / "policy.schema.json").read_bytes()
        assert schema_sha256() == hashlib.sha256(shipped).hexdigest()

    @pytest.mark.parametrize(
        "text",
        [
            None,
            "",
            "not json",
            "[]",
            '{"schema_sha256": "x", "smartvault_version": "0", "files": {}}',
            json.dumps({"schema_sha256": "0" * 64, "smartvault_version": 1, "files": {}}),
            json.dumps({"schema_sha256": "0" * 64, "smartvault_version": "0", "files": []}),
            json.dumps({"schema_sha256": "0" * 64, "smartvault_version": "0", "files": {"a": "b"}}),
        ],
        ids=[
            "missing",
            "empty",
            "not-json",
            "a-list",
            "short-digest",
            "version-number",
            "files-list",
            "bad-file-digest",
        ],
    )
    def test_a_missing_or_malformed_manifest_is_none_and_the_files_are_validated(
        self, text: str | None, tmp_path: Path
    ) -> None:
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "p.yaml").write_text(MINIMAL_POLICY)
        if text is not None:
            (folder / MANIFEST_NAME).write_text(text)
        assert read_manifest(folder) is None

    def test_a_folder_as_the_manifest_is_none(self, tmp_path: Path) -> None:
        (tmp_path / MANIFEST_NAME).mkdir()
        assert read_manifest(tmp_path) is None

    def test_the_loader_never_reads_the_manifest_as_a_policy(self, tmp_path: Path) -> None:
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "p.yaml").write_text(MINIMAL_POLICY)
        with_manifest(folder)
        assert load_policies([folder]).files == (str(folder / "p.yaml"),)


class TestValidatedAgain:
    def test_a_listed_file_is_not_run_through_the_schema(self, tmp_path: Path) -> None:
        """What makes the manifest worth having: a file it lists is trusted as packaged."""
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "p.yaml").write_text(UNKNOWN_KEY)
        refused = outcome(folder, None)
        assert isinstance(refused, list)
        assert len(refused) == 1
        assert "unknown key `xyzzy`" in refused[0]
        loaded = outcome(vouching_for(folder), read_manifest(folder))
        assert isinstance(loaded, PolicySet)
        assert [p.name for p in loaded.policies] == ["nightly"]

    def test_a_file_edited_after_packaging_is_validated_and_reported_as_without(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "a.yaml").write_text(MINIMAL_POLICY)
        (folder / "b.yaml").write_text(MINIMAL_POLICY.replace("nightly", "weekly"))
        manifest = with_manifest(folder)
        edited = (folder / "b.yaml").read_bytes().replace(b"name: weekly", b"name: Weekly")
        (folder / "b.yaml").write_bytes(edited)
        assert not manifest.passed(folder / "b.yaml", edited)
        assert manifest.passed(folder / "a.yaml", (folder / "a.yaml").read_bytes())
        problems = outcome(folder, manifest)
        assert problems == outcome(folder, None)
        assert isinstance(problems, list)
        assert len(problems) == 1
        assert problems[0].startswith(f"{folder}/b.yaml:3:11: ")
        assert "lowercase letters" in problems[0]

    def test_a_valid_edit_loads_as_edited(self, tmp_path: Path) -> None:
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "p.yaml").write_text(MINIMAL_POLICY)
        manifest = with_manifest(folder)
        (folder / "p.yaml").write_text(MINIMAL_POLICY.replace("cron(0 3", "cron(0 4"))
        loaded = load_policies([folder], validated=manifest)
        assert loaded == load_policies([folder])
        assert loaded.policies[0].schedule.expression == "cron(0 4 * * ? *)"

    def test_an_added_file_is_validated(self, tmp_path: Path) -> None:
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "a.yaml").write_text(MINIMAL_POLICY)
        manifest = with_manifest(folder)
        (folder / "new.yaml").write_text(UNKNOWN_KEY.replace("nightly", "other"))
        problems = outcome(folder, manifest)
        assert problems == outcome(folder, None)
        assert isinstance(problems, list)
        assert [p.split(":")[0] for p in problems] == [f"{folder}/new.yaml"]

    @pytest.mark.parametrize(
        ("schema", "version"),
        [("0" * 64, None), (None, f"{__version__}.post1")],
        ids=["another-schema", "another-version"],
    )
    def test_a_manifest_of_another_schema_or_version_is_not_trusted(
        self, schema: str | None, version: str | None, tmp_path: Path
    ) -> None:
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "p.yaml").write_text(UNKNOWN_KEY)
        manifest = read_manifest(vouching_for(folder, schema=schema, version=version))
        assert manifest is not None
        assert not manifest.current()
        assert not manifest.passed(folder / "p.yaml", UNKNOWN_KEY.encode())
        problems = outcome(folder, manifest)
        assert problems == outcome(folder, None)
        assert isinstance(problems, list)
        assert len(problems) == 1
        assert "unknown key `xyzzy`" in problems[0]

    def test_a_file_outside_the_manifests_folder_is_validated(self, tmp_path: Path) -> None:
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "p.yaml").write_text(UNKNOWN_KEY)
        manifest = read_manifest(vouching_for(folder))
        assert manifest is not None
        (tmp_path / "p.yaml").write_text(UNKNOWN_KEY)
        assert not manifest.passed(tmp_path / "p.yaml", UNKNOWN_KEY.encode())
        with pytest.raises(PolicyError, match="unknown key `xyzzy`"):
            load_policies([tmp_path / "p.yaml"], validated=manifest)


def test_loading_listed_files_never_imports_jsonschema(tmp_path: Path) -> None:
    """jsonschema and its dependencies load only when a file needs the schema."""
    folder = copy_into(tmp_path / "policies", *SHIPPED)
    with_manifest(folder)
    code = (
        "import sys\n"
        "from smartvault.formats.policy import load_policies\n"
        "from smartvault.formats.policy.validated import read_manifest\n"
        "folder = sys.argv[1]\n"
        "load_policies([folder], validated=read_manifest(folder))\n"
        "before = 'jsonschema' in sys.modules\n"
        "load_policies([folder])\n"
        "print(before, 'jsonschema' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "True"]


@settings(max_examples=60, deadline=None)
@given(
    text=st.sampled_from([*VALID_FIXTURES.values(), *(p.read_text() for p in SHIPPED)]),
    at=st.floats(min_value=0, max_value=1, exclude_max=True),
    byte=st.sampled_from(list(b" \n:-#[]{}'\"0aZ")),
)
def test_any_edit_after_packaging_loads_or_is_refused_exactly_as_without(
    text: str, at: float, byte: int
) -> None:
    """The manifest of the file as packaged; then one byte of it changed, anywhere."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "p.yaml").write_text(text, encoding="utf-8")
        manifest = with_manifest(folder)
        data = bytearray(text.encode())
        data[int(at * len(data))] = byte
        (folder / "p.yaml").write_bytes(bytes(data))
        assert outcome(folder, manifest) == outcome(folder, None)
