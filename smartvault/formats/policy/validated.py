"""The manifest of policy files a deployment package validated when it was built.

``smartvault deploy package`` validates the policy files it packages and writes, beside
them, ``policies/.smartvault-validated.json``: the SHA-256 of the policy JSON Schema it
validated them against, the SmartVault version, and the SHA-256 of each policy file
that passed the schema, by its path in that folder. The loader reads a file whose bytes
have that digest, under the same schema and version, without running the schema again
(the checks beyond the schema still run); any other file (edited, added, or a manifest
from another schema or version) is validated in full, so a manifest never changes what
is reported, only how long it takes. The name starts with a dot and is no ``*.yaml``:
the loader never reads it as a policy.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from smartvault import __version__
from smartvault import files
from smartvault.formats.policy.parse import parse_document
from smartvault.formats.policy.schema import schema_sha256
from smartvault.formats.policy.schema import validator
from smartvault.formats.policy.yaml12 import compose

#: The manifest's file name, in the packaged policies' folder.
MANIFEST_NAME = ".smartvault-validated.json"
#: Larger than any manifest of files the loader would read; a bigger one is not read.
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Manifest:
    """Which policy files (by path relative to ``folder``) passed which schema."""

    #: the folder the manifest describes: the one it was read from
    folder: Path
    schema_sha256: str
    smartvault_version: str
    #: ``path/under/folder.yaml`` (``/``-separated) → hex SHA-256 of the bytes that passed
    files: Mapping[str, str]

    def current(self) -> bool:
        """Whether it speaks for this code: the same schema and the same SmartVault."""
        return self.schema_sha256 == schema_sha256() and self.smartvault_version == __version__

    def passed(self, path: str | os.PathLike[str], data: bytes) -> bool:
        """Whether ``data``, read from ``path``, are the bytes that passed this code's
        schema when packaged: False for a file it does not list, or lists with other bytes."""
        try:
            relative = Path(path).relative_to(self.folder).as_posix()
        except ValueError:
            return False
        digest = self.files.get(relative)
        return digest is not None and self.current() and hashlib.sha256(data).hexdigest() == digest


def manifest_bytes(policy_files: Mapping[str, bytes]) -> bytes:
    """The manifest for ``policy_files`` (path under the policies folder → its bytes).

    Only a file this code's schema passes is listed, whatever the caller checked before:
    the manifest vouches for nothing it did not see pass. Keys sorted, so the same files
    give the same bytes.
    """
    listed = {
        name: hashlib.sha256(data).hexdigest()
        for name, data in sorted(policy_files.items())
        if _passes_schema(data, name)
    }
    document = {
        "schema_sha256": schema_sha256(),
        "smartvault_version": __version__,
        "files": listed,
    }
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def _passes_schema(data: bytes, shown: str) -> bool:
    """Whether the policy file ``data`` is valid, and its data pass the schema itself."""
    try:
        document = compose(files.decode_text(data, shown), shown)
    except files.FileRefused:
        return False
    if parse_document(document).problems or not isinstance(document.data, dict):
        return False
    return not any(True for _ in validator().iter_errors(document.data))


def read_manifest(folder: str | os.PathLike[str]) -> Manifest | None:
    """The manifest in ``folder``, or None when there is none or it is not one this code
    reads (unreadable, malformed): its files are then simply validated in full."""
    path = Path(folder, MANIFEST_NAME)
    try:
        with path.open("rb") as stream:
            raw = stream.read(_MAX_MANIFEST_BYTES + 1)
        document = json.loads(raw) if len(raw) <= _MAX_MANIFEST_BYTES else None
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    schema = document.get("schema_sha256")
    version = document.get("smartvault_version")
    listed = document.get("files")
    if not (
        _is_digest(schema)
        and isinstance(version, str)
        and isinstance(listed, dict)
        and all(isinstance(k, str) and _is_digest(v) for k, v in listed.items())
    ):
        return None
    return Manifest(
        folder=Path(folder),
        schema_sha256=schema,
        smartvault_version=version,
        files=dict(listed),
    )


def _is_digest(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX_DIGITS
