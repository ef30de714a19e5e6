"""The zip the Lambda function runs, built byte-for-byte reproducibly.

``build_package`` writes the ``smartvault`` package, ``lambda_entry.py``, the policies
under ``policies/`` and the few third-party libraries the Lambda Python runtime lacks,
installed by pip as wheels for the runtime the template asks for
(:data:`~smartvault.deploy.template.LAMBDA_RUNTIME`), and beside the policies the
manifest of those that passed the schema (:mod:`smartvault.formats.policy.validated`), so
that the function need not validate them again. The same inputs give the same
bytes. Every failure is a :class:`~smartvault.errors.ConfigError` saying what to do.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from smartvault.deploy.template import LAMBDA_PIP_PLATFORM
from smartvault.deploy.template import LAMBDA_PYTHON_VERSION
from smartvault.errors import ConfigError
from smartvault.formats.policy.validated import MANIFEST_NAME
from smartvault.formats.policy.validated import manifest_bytes

#: What the handler imports that the Lambda runtime does not ship. boto3 and botocore
#: are in the runtime; click is only for the CLI and the handler never imports it.
#: Their dependencies (attrs, referencing, rpds-py, jsonschema-specifications,
#: typing-extensions) come along through pip's resolver.
RUNTIME_DISTRIBUTIONS = ("PyYAML", "jsonschema", "tzdata")
#: Floors from pyproject.toml, used only when a distribution is not installed here.
_RUNTIME_FLOORS = {"PyYAML": ">=6.0", "jsonschema": ">=4.18", "tzdata": ">=2024.1"}
#: jsonschema's dependencies: constrained to the versions installed here, when they are,
#: so the package holds what the tests ran against rather than whatever is newest.
_RUNTIME_DEPENDENCIES = (
    "attrs",
    "jsonschema-specifications",
    "referencing",
    "rpds-py",
    "typing_extensions",
)


#: 1980-01-01, the earliest time a zip can hold: fixed, so the bytes depend on content only.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIPPED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
#: The packaged policies' folder in the zip, where the handler reads them.
_POLICIES = "policies/"
#: Where Lambda unpacks the zip: the file names tracebacks show.
LAMBDA_TASK_ROOT = "/var/task"


@dataclass(frozen=True)
class PackageInfo:
    """What ``build_package`` wrote."""

    path: Path
    #: hex digest of the zip, handy in the S3 key so each build gets its own
    sha256: str
    size: int
    #: number of files in the zip
    entries: int
    #: ``name==version`` of each vendored distribution; empty when not vendored
    vendored: tuple[str, ...]
    #: whether it holds bytecode for the runtime's Python (:func:`runtime_python`)
    bytecode: bool = False


def runtime_requirements() -> tuple[str, ...]:
    """Pip requirements for the vendored libraries: pinned to the versions installed here
    (the ones the tests ran against), or the pyproject floor when one is not installed."""
    pins = dict(_installed_pins(RUNTIME_DISTRIBUTIONS))
    return tuple(pins.get(name, f"{name}{_RUNTIME_FLOORS[name]}") for name in RUNTIME_DISTRIBUTIONS)


def _installed_pins(names: Iterable[str]) -> Iterator[tuple[str, str]]:
    for name in names:
        try:
            yield name, f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue


def build_package(
    out: Path,
    *,
    project_root: Path,
    policy_paths: Sequence[Path],
    vendor: bool = True,
    requirements: Sequence[str] | None = None,
    bytecode: bool = True,
) -> PackageInfo:
    """Write the Lambda deployment zip to ``out`` and describe it.

    The zip holds ``smartvault/`` (sources and package data, no caches),
    ``lambda_entry.py``, each policy file under ``policies/``, the manifest of those the
    schema passes (``policies/.smartvault-validated.json``) and, when ``vendor``, the
    runtime libraries the Lambda runtime lacks (``runtime_requirements()`` unless
    ``requirements`` is given), installed by pip as python3.12 x86_64 manylinux
    wheels. boto3 and botocore are left out: the runtime has them. With ``bytecode`` and
    an interpreter of the runtime's Python version here, every module's bytecode too
    (:func:`_bytecode`), so a cold start compiles nothing. Entries are sorted
    and timestamped 1980-01-01, so the same inputs give the same bytes. Raises
    ``ConfigError`` for a missing file, no policy files, or a failed pip install.
    """
    project_root = project_root.resolve()
    files: dict[str, Path] = {}
    package_dir = project_root / "smartvault"
    entry = project_root / "lambda_entry.py"
    if not (package_dir / "__init__.py").is_file():
        raise ConfigError(f"{package_dir} is not the smartvault package: pass the project root")
    if not entry.is_file():
        raise ConfigError(
            f"{entry} is missing: the Lambda handler lives there. Build the package from a "
            "clone of the SmartVault repository (pip install -e . in it), not from an "
            "installed wheel"
        )
    for path in _walk(package_dir):
        files[path.relative_to(project_root).as_posix()] = path
    files["lambda_entry.py"] = entry
    for arcname, path in _policy_files(policy_paths):
        if arcname in files:
            raise ConfigError(
                f"two policy files would both be packaged as {arcname} ({files[arcname]} and "
                f"{path}): rename one"
            )
        files[arcname] = path

    vendored: tuple[str, ...] = ()
    with tempfile.TemporaryDirectory(prefix="smartvault-vendor-") as tmp:
        manifest = Path(tmp) / MANIFEST_NAME
        manifest.write_bytes(
            manifest_bytes(
                {
                    arcname.removeprefix(_POLICIES): path.read_bytes()
                    for arcname, path in files.items()
                    if arcname.startswith(_POLICIES)
                }
            )
        )
        files[_POLICIES + MANIFEST_NAME] = manifest
        if vendor:
            target = Path(tmp) / "vendor"
            if requirements is None:
                wanted = list(runtime_requirements())
                constraints = [pin for _, pin in _installed_pins(_RUNTIME_DEPENDENCIES)]
            else:
                wanted, constraints = list(requirements), []
            vendored = _pip_install(wanted, constraints, target)
            for path in _walk(target):
                arcname = path.relative_to(target).as_posix()
                # Console scripts are useless in Lambda; our own modules win over anything.
                if arcname.startswith("bin/") or arcname in files:
                    continue
                files[arcname] = path
        python = runtime_python() if bytecode else None
        if python is not None:
            files.update(_bytecode(python, files, Path(tmp) / "compiled"))
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_zip(out, files)

    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return PackageInfo(
        path=out,
        sha256=digest,
        size=out.stat().st_size,
        entries=len(files),
        vendored=vendored,
        bytecode=python is not None,
    )


def runtime_python() -> str | None:
    """An interpreter of the Lambda runtime's Python version (this one, else
    ``python3.12`` on the PATH), or None when there is none that runs."""
    candidates = [sys.executable, shutil.which(f"python{LAMBDA_PYTHON_VERSION}")]
    for candidate in dict.fromkeys(c for c in candidates if c):
        try:
            version = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
        except OSError:
            continue
        if version == LAMBDA_PYTHON_VERSION:
            return candidate
    return None


def _bytecode(python: str, files: dict[str, Path], stage: Path) -> dict[str, Path]:
    """The ``__pycache__`` bytecode of every module in ``files``, compiled by ``python``.

    Lambda's ``/var/task`` is read-only, so without it every cold start compiles each
    module it imports from source (about 0.1 s for the handler's). Hash-based and never
    checked against the source (``unchecked-hash``): no timestamps, so the same sources
    give the same bytes; the zip never changes under the function. Tracebacks name the
    files as Lambda holds them, under ``/var/task``.
    """
    sources = [arcname for arcname in files if arcname.endswith(".py")]
    for arcname in sources:
        target = stage / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[arcname].read_bytes())
    command = [
        python, "-m", "compileall", "-q",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(stage), "-p", LAMBDA_TASK_ROOT,
        *(str(stage / arcname) for arcname in sources),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stdout or result.stderr).strip().splitlines()
        raise ConfigError(
            "could not compile the package's modules "
            f"({detail[-1] if detail else f'compileall exited {result.returncode}'}): "
            "fix the file it names, or build with --no-bytecode"
        )
    return {
        path.relative_to(stage).as_posix(): path
        for path in sorted(stage.rglob("__pycache__/*.pyc"))
    }


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_PARTS)
        for filename in sorted(filenames):
            if not filename.endswith(_SKIPPED_SUFFIXES):
                yield Path(dirpath) / filename


def _policy_files(policy_paths: Sequence[Path]) -> Iterator[tuple[str, Path]]:
    """``(policies/<name>, path)``: a directory's *.yaml/*.yml below it, keeping their
    relative paths (as the loader reads them); a file under its own name."""
    found = False
    for given in policy_paths:
        if given.is_dir():
            below = sorted(
                p for p in given.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
            )
            for path in below:
                found = True
                yield f"policies/{path.relative_to(given).as_posix()}", path
        elif given.is_file():
            found = True
            yield f"policies/{given.name}", given
        else:
            raise ConfigError(f"policy path {given} does not exist")
    if not found:
        raise ConfigError(
            "no policy files to package (*.yaml or *.yml): the function would have nothing to do"
        )


def _pip_install(requirements: list[str], constraints: list[str], target: Path) -> tuple[str, ...]:
    # The constraints file sits beside the target, not in it, so it never reaches the zip.
    constraints_file = target.parent / "constraints.txt"
    constraints_file.write_text("".join(f"{c}\n" for c in constraints))
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(target),
        # Wheels for the Lambda runtime, not this machine: rpds-py is compiled.
        "--platform", LAMBDA_PIP_PLATFORM,
        "--implementation", "cp",
        "--python-version", LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
        "--constraint", str(constraints_file),
        *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ConfigError(
            "could not download the runtime libraries for the Lambda package "
            f"(pip exited {result.returncode}: {detail[-1] if detail else 'no output'}); "
            "check the network or pip's index settings"
        )
    return tuple(
        sorted(
            f"{dist.metadata['Name']}=={dist.version}"
            for dist in metadata.distributions(path=[str(target)])
        )
    )


def _write_zip(out: Path, files: dict[str, Path]) -> None:
    with zipfile.ZipFile(out, "w") as archive:
        for arcname in sorted(files):
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the permission bits below are honoured
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(info, files[arcname].read_bytes(), compresslevel=9)
