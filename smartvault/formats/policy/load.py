"""Policy files and folders in, one :class:`~smartvault.core.model.PolicySet` out.

Files are read through :mod:`smartvault.files` (regular files of at most 1 MiB, never
a FIFO or a device); folders are walked for ``*.yaml`` and ``*.yml``, links followed
without ever walking in a circle. Every problem of every file, and a policy name used
in two places, is collected and raised together as one
:class:`~smartvault.errors.PolicyError`, each located ``file:line:column``. Given the
manifest of a deployment package (:mod:`.validated`), a file whose bytes it lists skips
the schema step, with the same result.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from smartvault import files
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.errors import PolicyError
from smartvault.errors import Problem
from smartvault.formats.policy.checks import NameUse
from smartvault.formats.policy.checks import duplicate_names
from smartvault.formats.policy.parse import parse_document
from smartvault.formats.policy.validated import Manifest
from smartvault.formats.policy.yaml12 import compose

POLICY_SUFFIXES = (".yaml", ".yml")


class Read(NamedTuple):
    """A policy file's text, and whether these bytes passed the schema when packaged."""

    text: str
    schema_passed: bool = False


def _policy_files(directory: Path, problems: list[Problem]) -> list[Path]:
    """``*.yaml`` and ``*.yml`` below ``directory``, sorted; hidden files and folders skipped.

    Links to folders are followed. Each folder is read once however many links lead to
    it, and a link back to an enclosing folder, or a link loop, is a problem in
    ``problems`` instead of a walk without end.
    """
    found: list[Path] = []
    top = os.stat(directory)
    visited = {(top.st_dev, top.st_ino)}
    # (folder, the folders enclosing it by identity): a stack, so depth never recurses.
    stack: list[tuple[Path, dict[tuple[int, int], Path]]] = [
        (directory, {(top.st_dev, top.st_ino): directory})
    ]
    while stack:
        folder, enclosing = stack.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(str(folder), 0, 0, files.os_error_message(exc)))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(folder, entry.name)
            try:
                target = entry.stat()  # follows links
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    problems.append(Problem(str(path), 0, 0, files.os_error_message(exc)))
                elif entry.name.endswith(POLICY_SUFFIXES):
                    found.append(path)  # reading it says what is wrong
                continue
            if not stat.S_ISDIR(target.st_mode):
                if entry.name.endswith(POLICY_SUFFIXES):
                    found.append(path)  # reading it refuses what is not a regular file
                continue
            identity = (target.st_dev, target.st_ino)
            if identity in enclosing:
                problems.append(
                    Problem(
                        str(path),
                        0,
                        0,
                        f"a link back to an enclosing folder ({enclosing[identity]}), "
                        "which would be read without end; remove the link",
                    )
                )
            elif identity not in visited:  # else its files are already found
                visited.add(identity)
                stack.append((path, {**enclosing, identity: path}))
    return sorted(found, key=lambda p: p.relative_to(directory).parts)


def load_policies(
    paths: Sequence[str | os.PathLike[str]], *, validated: Manifest | None = None
) -> PolicySet:
    """Load and validate the policy files at ``paths`` (files or directories).

    A directory loads every ``*.yaml`` and ``*.yml`` file below it, sorted. Every
    problem of every file is collected; if there is any, :class:`PolicyError` is
    raised with all of them, sorted by file, line and column. File names are shown
    as given (``policies/prod.yaml``), never made absolute. With ``validated``, a file
    whose bytes it lists under this code's schema and version is not run through the
    schema again; every other file is validated in full, and the result is the same.
    """
    problems: list[Problem] = []
    to_read: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for given in paths:
        path = Path(given)
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            problems.append(Problem(str(path), 0, 0, "no such file or directory"))
            continue
        except OSError as exc:
            problems.append(Problem(str(path), 0, 0, files.os_error_message(exc)))
            continue
        if is_dir:
            before = len(problems)
            found = _policy_files(path, problems)
            if not found and len(problems) == before:
                problems.append(
                    Problem(str(path), 0, 0, "no policy files (*.yaml, *.yml) in this directory")
                )
        else:
            found = [path]  # reading it refuses what is not a regular file
        for file in found:
            # The same file named twice (`policies policies/a.yaml`) is read once.
            real = os.path.realpath(file)
            if real not in seen:
                seen.add(real)
                to_read.append((str(file), file))

    loaded, more = parse_files(
        (shown, functools.partial(_read, file, shown, validated)) for shown, file in to_read
    )
    problems.extend(more)
    if problems:
        raise PolicyError(sorted(problems))
    return loaded


_TOO_LARGE = "split its policies into several files"


def _read(file: Path, shown: str, validated: Manifest | None) -> Read:
    # One read: the bytes hashed are the bytes parsed.
    data = files.read_bytes(file, shown, too_large=_TOO_LARGE)
    return Read(
        files.decode_text(data, shown), validated is not None and validated.passed(file, data)
    )


def parse_files(
    readers: Iterable[tuple[str, Callable[[], str | Read]]],
) -> tuple[PolicySet, list[Problem]]:
    """Parse each file (named as shown, its text from its reader: a
    :class:`~smartvault.files.FileRefused` is that file's problem), then check that policy
    names are unique across all of them: the policies, and every problem found. A
    reader's :class:`Read` may say the schema passed these bytes already.

    One reading for files on disk (:func:`load_policies`) and files at a git revision
    (:mod:`.revision`): both mean the same policies by the same text.
    """
    problems: list[Problem] = []
    policies: list[Policy] = []
    names: list[NameUse] = []
    shown_files: list[str] = []
    for shown, read in readers:
        try:
            got = read()
        except files.FileRefused as exc:
            problems.append(exc.problem)
            continue
        text, schema_passed = (got, False) if isinstance(got, str) else got
        parsed = parse_document(compose(text, shown), schema_passed=schema_passed)
        problems.extend(parsed.problems)
        policies.extend(parsed.policies)
        names.extend(parsed.names)
        shown_files.append(shown)
    problems.extend(duplicate_names(names))
    return PolicySet(policies=tuple(policies), files=tuple(shown_files)), problems
