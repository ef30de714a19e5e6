"""The deployment zip: what it holds, byte-for-byte reproducible, and what it refuses."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

import smartvault
from smartvault.deploy import build_package
from smartvault.deploy import package as package_module
from smartvault.errors import ConfigError
from smartvault.formats.policy import load_policies
from smartvault.formats.policy.validated import read_manifest
from tests.factories import MINIMAL_POLICY

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_runtime_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether this machine has a Python 3.12 must not change what the tests see: no
    bytecode, unless a test gives an interpreter itself."""
    monkeypatch.setattr(package_module, "runtime_python", lambda: None)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root: the real smartvault package (plus a stray cache), a handler, policies."""
    root = tmp_path / "project"
    shutil.copytree(
        PROJECT_ROOT / "smartvault",
        root / "smartvault",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    cache = root / "smartvault" / "__pycache__"
    cache.mkdir()
    (cache / "model.cpython-311.pyc").write_bytes(b"stale")
    (root / "lambda_entry.py").write_text("def handler(event, context):\n    return {}\n")
    policies = root / "policies"
    (policies / "team").mkdir(parents=True)
    (policies / "prod.yaml").write_text("version: 1\npolicies: []\n")
    (policies / "team" / "db.yml").write_text("version: 1\npolicies: []\n")
    (policies / "README.md").write_text("not a policy\n")
    return root


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_package_holds_the_code_the_handler_and_the_policies_without_caches(project, tmp_path):
    info = build_package(
        tmp_path / "out" / "smartvault.zip",
        project_root=project,
        policy_paths=[project / "policies"],
        vendor=False,
    )
    names = _names(info.path)
    assert names == sorted(names)
    assert "lambda_entry.py" in names
    assert "smartvault/__init__.py" in names
    assert "smartvault/deploy/__init__.py" in names
    assert "smartvault/py.typed" in names
    assert "policies/prod.yaml" in names
    assert "policies/team/db.yml" in names
    assert "policies/README.md" not in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert info.entries == len(names)
    assert info.vendored == ()
    assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
    with zipfile.ZipFile(info.path) as archive:
        assert archive.read("lambda_entry.py").startswith(b"def handler")
        assert archive.testzip() is None


def test_same_inputs_give_the_same_zip_bytes(project, tmp_path):
    first = build_package(
        tmp_path / "a.zip", project_root=project, policy_paths=[project / "policies"], vendor=False
    )
    (project / "policies" / "prod.yaml").touch()  # a newer mtime must not matter
    second = build_package(
        tmp_path / "b.zip", project_root=project, policy_paths=[project / "policies"], vendor=False
    )
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()


def test_a_single_policy_file_is_packaged_under_its_name(project, tmp_path):
    info = build_package(
        tmp_path / "one.zip",
        project_root=project,
        policy_paths=[project / "policies" / "team" / "db.yml"],
        vendor=False,
    )
    assert [n for n in _names(info.path) if n.startswith("policies/")] == [
        "policies/.smartvault-validated.json",
        "policies/db.yml",
    ]


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda root: (root / "lambda_entry.py").unlink(), "lambda_entry.py is missing"),
        (lambda root: shutil.rmtree(root / "policies"), "does not exist"),
        (
            lambda root: [p.unlink() for p in (root / "policies").rglob("*.y*ml")],
            "no policy files",
        ),
    ],
    ids=["no-handler", "no-policy-dir", "no-policy-files"],
)
def test_package_refuses_an_incomplete_project(project, tmp_path, break_it, message):
    break_it(project)
    with pytest.raises(ConfigError, match=message):
        build_package(
            tmp_path / "x.zip",
            project_root=project,
            policy_paths=[project / "policies"],
            vendor=False,
        )


def test_two_policy_files_with_one_name_are_refused(project, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "prod.yaml").write_text("version: 1\npolicies: []\n")
    with pytest.raises(ConfigError, match=r"both be packaged as policies/prod\.yaml"):
        build_package(
            tmp_path / "x.zip",
            project_root=project,
            policy_paths=[project / "policies", other / "prod.yaml"],
            vendor=False,
        )


def test_package_vendors_lambda_wheels_of_the_runtime_libraries_only(project, tmp_path):
    """Really runs pip against the package index (python3.12, x86_64 manylinux wheels)."""
    try:
        info = build_package(
            tmp_path / "full.zip", project_root=project, policy_paths=[project / "policies"]
        )
    except ConfigError as exc:
        if "could not download" in str(exc):
            pytest.skip(f"package index unreachable, nothing vendored: {exc}")
        raise
    names = _names(info.path)
    tops = {n.split("/")[0] for n in names}
    assert {"yaml", "jsonschema", "referencing", "rpds", "tzdata", "attrs"} <= tops
    assert "jsonschema_specifications" in tops
    assert not tops & {"boto3", "botocore", "click", "bin"}
    compiled = [n for n in names if n.startswith("rpds/") and n.endswith(".so")]
    assert compiled
    assert all("cpython-312-x86_64-linux-gnu" in n for n in compiled)
    vendored = {v.split("==")[0].lower() for v in info.vendored}
    assert {"pyyaml", "jsonschema", "tzdata", "rpds-py"} <= vendored
    assert "smartvault/deploy/__init__.py" in names
    assert not [n for n in names if n.endswith(".pyc")]


def test_a_failed_pip_install_is_a_config_error_that_says_what_to_check(project, tmp_path):
    # An invalid requirement makes pip fail before it contacts any index.
    with pytest.raises(ConfigError, match="could not download the runtime libraries"):
        build_package(
            tmp_path / "x.zip",
            project_root=project,
            policy_paths=[project / "policies"],
            requirements=["not a valid requirement!!"],
        )
    assert not (tmp_path / "x.zip").exists()


def test_the_runtimes_bytecode_is_packaged_hash_based_and_reproducibly(
    project, tmp_path, monkeypatch
):
    # This interpreter stands in for the runtime's: the zip then holds its cache tag.
    monkeypatch.setattr(package_module, "runtime_python", lambda: sys.executable)
    tag = sys.implementation.cache_tag

    first = build_package(
        tmp_path / "a.zip", project_root=project, policy_paths=[project / "policies"], vendor=False
    )
    (project / "smartvault" / "engine.py").touch()  # mtimes never reach the bytecode
    second = build_package(
        tmp_path / "b.zip", project_root=project, policy_paths=[project / "policies"], vendor=False
    )

    assert first.bytecode
    assert first.path.read_bytes() == second.path.read_bytes()
    names = _names(first.path)
    assert f"smartvault/__pycache__/engine.{tag}.pyc" in names
    assert f"__pycache__/lambda_entry.{tag}.pyc" in names
    with zipfile.ZipFile(first.path) as archive:
        pyc = archive.read(f"smartvault/__pycache__/engine.{tag}.pyc")
        # the stray cache of the project is never packaged, only what was compiled
        assert b"stale" not in [archive.read(n) for n in names if n.endswith(".pyc")]
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source never checked
    code = marshal.loads(pyc[16:])
    assert code.co_filename == "/var/task/smartvault/engine.py"


def test_without_the_runtimes_python_the_zip_has_sources_only(project, tmp_path):
    info = build_package(
        tmp_path / "a.zip", project_root=project, policy_paths=[project / "policies"], vendor=False
    )

    assert not info.bytecode
    assert not [n for n in _names(info.path) if n.endswith(".pyc")]


def test_the_zip_holds_the_manifest_of_the_policies_the_schema_passed(project, tmp_path):
    """Beside the policies: the schema's digest, the version, and each file's digest, as
    the zip holds it; a file the schema refuses is packaged but not listed."""
    policies = project / "policies"
    (policies / "prod.yaml").write_text(MINIMAL_POLICY)
    (policies / "team" / "db.yml").write_text(MINIMAL_POLICY.replace("nightly", "db"))
    (policies / "broken.yaml").write_text(MINIMAL_POLICY.replace("cron(", "cron ("))
    first = build_package(
        tmp_path / "a.zip", project_root=project, policy_paths=[policies], vendor=False
    )
    second = build_package(
        tmp_path / "b.zip", project_root=project, policy_paths=[policies], vendor=False
    )

    with zipfile.ZipFile(first.path) as archive:
        written = archive.read("policies/.smartvault-validated.json")
        digests = {
            name: hashlib.sha256(archive.read(f"policies/{name}")).hexdigest()
            for name in ("prod.yaml", "team/db.yml", "broken.yaml")
        }
    with zipfile.ZipFile(second.path) as archive:
        assert archive.read("policies/.smartvault-validated.json") == written
    schema = project / "smartvault" / "schemas" / "policy.schema.json"
    assert json.loads(written) == {
        "schema_sha256": hashlib.sha256(schema.read_bytes()).hexdigest(),
        "smartvault_version": smartvault.__version__,
        "files": {"prod.yaml": digests["prod.yaml"], "team/db.yml": digests["team/db.yml"]},
    }
    assert written == (json.dumps(json.loads(written), indent=2, sort_keys=True) + "\n").encode()
    assert first.path.read_bytes() == second.path.read_bytes()


def test_the_packaged_policies_load_with_their_manifest_as_without(project, tmp_path):
    policies = project / "policies"
    (policies / "prod.yaml").write_text(MINIMAL_POLICY)
    (policies / "team" / "db.yml").write_text(MINIMAL_POLICY.replace("nightly", "db"))
    info = build_package(
        tmp_path / "a.zip", project_root=project, policy_paths=[policies], vendor=False
    )
    with zipfile.ZipFile(info.path) as archive:
        archive.extractall(tmp_path / "task")
    packaged = tmp_path / "task" / "policies"
    manifest = read_manifest(packaged)
    assert manifest is not None
    assert sorted(manifest.files) == ["prod.yaml", "team/db.yml"]
    assert all(manifest.passed(packaged / n, (packaged / n).read_bytes()) for n in manifest.files)
    assert load_policies([packaged], validated=manifest) == load_policies([packaged])
