"""The policy files as they are at a git revision: what ``plan --compare REF`` plans with.

Each path given (a file or a folder, as for ``plan``) is looked up in the git work tree
that holds it: REF is resolved there once (``git rev-parse --verify REF^{commit}``), the
files under the path at that commit are listed (``git ls-tree``), and each ``*.yaml`` and
``*.yml`` is read from git (``git cat-file``) and parsed as a policy file would be, named
``REF:path`` in every message. Nothing in the work tree is read or changed, so a file
deleted since REF is still part of REF's policies (a removed policy is a change to show),
and a path that is not there at REF (a new policy) simply adds none.

Only ``git`` itself is run, without a shell, with a time limit, never asking for a
password; each file is bounded like any policy file (:data:`smartvault.files.MAX_FILE_BYTES`).
Every failure is a :class:`~smartvault.errors.ConfigError` that says where and what to do.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from smartvault import files
from smartvault.core.model import PolicySet
from smartvault.errors import ConfigError
from smartvault.formats.policy.load import POLICY_SUFFIXES
from smartvault.formats.policy.load import parse_files

#: seconds one git command may take: a local repository answers in milliseconds
GIT_TIMEOUT = 30.0

#: git's modes for what is not a file's content: a symbolic link, a submodule
_NOT_CONTENT = frozenset({"120000", "160000"})


@dataclass(frozen=True)
class PoliciesAtRevision:
    """The policies of the given paths at one git revision."""

    #: as the person wrote it (``origin/main``)
    ref: str
    #: the commit it resolved to (full id)
    commit: str
    policies: PolicySet
    #: the paths given that are not there at the revision (new files or folders)
    missing: tuple[str, ...] = ()


def _git(args: Sequence[str], cwd: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``git args`` in ``cwd``; a missing git or one that hangs is a ConfigError."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ConfigError(
            "--compare reads the policies from git, but git is not installed (or not on "
            "PATH): install git, or plan without --compare"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(
            f"git {args[0]} did not answer within {GIT_TIMEOUT:.0f} seconds in {cwd}: "
            "check the repository (a lock, a network file system), or plan without --compare"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot run git in {cwd}: {exc.strerror or exc}") from exc


def _said(result: subprocess.CompletedProcess[bytes]) -> str:
    """git's own first line of complaint, for a message."""
    lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[0].removeprefix("fatal: ") if lines else f"exit status {result.returncode}"


def _where(path: str) -> tuple[str, str]:
    """The folder to run git in for ``path``, and ``path`` made absolute (links resolved in
    its folders, not in its last part: git tracks a link as a link)."""
    absolute = os.path.abspath(path)
    if os.path.isdir(absolute):
        real = os.path.realpath(absolute)
        return real, real
    folder = os.path.realpath(os.path.dirname(absolute))
    return folder, os.path.join(folder, os.path.basename(absolute))


def _top_level(path: str, folder: str) -> str:
    if not os.path.isdir(folder):
        raise ConfigError(f"{path}: no such file or directory; name the policy paths to compare")
    result = _git(["rev-parse", "--show-toplevel"], folder)
    if result.returncode != 0:
        raise ConfigError(
            f"{path} is not in a git work tree ({_said(result)}): --compare reads the "
            "policies as they are at a git revision; run it in a clone of the repository "
            "that holds the policies, or plan without --compare"
        )
    return os.path.realpath(result.stdout.decode("utf-8", "surrogateescape").strip())


def _commit(ref: str, top: str) -> str:
    if not ref or ref.startswith("-"):
        raise ConfigError(f"--compare {ref!r} is not a git revision: name a branch, tag or commit")
    result = _git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], top
    )
    if result.returncode != 0:
        hint = "check the name (`git branch -a`, `git tag`)"
        remote, _, branch = ref.partition("/")
        if branch and remote == "origin":
            hint = (
                f"fetch it first (`git fetch origin {branch}`); in CI, check out with the "
                "whole history (actions/checkout with `fetch-depth: 0`)"
            )
        raise ConfigError(f"unknown git revision {ref!r} in {top}: {hint}")
    return result.stdout.decode("ascii").strip()


@dataclass(frozen=True)
class _Entry:
    mode: str
    kind: str
    object_id: str
    size: int
    path: str


def _listing(commit: str, relative: str, top: str) -> list[_Entry]:
    """Every file at or under ``relative`` (relative to ``top``) at ``commit``."""
    args = ["ls-tree", "-r", "-l", "-z", "--full-tree", commit]
    if relative:
        args += ["--", relative]
    result = _git(args, top)
    if result.returncode != 0:
        raise ConfigError(
            f"cannot list {relative or '.'} at {commit[:12]} in {top}: {_said(result)}"
        )
    entries = []
    for raw in result.stdout.split(b"\0"):
        if not raw:
            continue
        meta, _, name = raw.partition(b"\t")
        mode, kind, object_id, size = meta.decode("ascii").split()
        entries.append(
            _Entry(
                mode,
                kind,
                object_id,
                int(size) if size.isdigit() else 0,
                name.decode("utf-8", "surrogateescape"),
            )
        )
    return entries


def _is_policy_file(path: str, relative: str) -> bool:
    """A ``*.yaml``/``*.yml`` below the folder given, not hidden (as the loader walks)."""
    if path == relative:
        return True  # a file named itself: read whatever its name, as the loader does
    below = PurePosixPath(path).relative_to(relative) if relative else PurePosixPath(path)
    return path.endswith(POLICY_SUFFIXES) and not any(p.startswith(".") for p in below.parts)


def _read(entry: _Entry, shown: str, top: str) -> str:
    if entry.size > files.MAX_FILE_BYTES:
        raise files.FileRefused(
            shown,
            f"the file is larger than 1 MiB ({entry.size:,} bytes), the most SmartVault "
            "reads from one file; split its policies into several files",
        )
    result = _git(["cat-file", "blob", entry.object_id], top)
    if result.returncode != 0:
        raise files.FileRefused(shown, f"git cannot read it: {_said(result)}")
    return files.decode_text(result.stdout[: files.MAX_FILE_BYTES + 1], shown)


def load_policies_at(ref: str, paths: Sequence[str]) -> PoliciesAtRevision:
    """The policies of ``paths`` as they are at git revision ``ref``.

    Raises ConfigError when git is missing, a path is in no git work tree, ``ref`` is
    unknown there, or the policies at ``ref`` are invalid (with every problem, located
    ``REF:path:line:column``). The paths may lie in several work trees; ``ref`` is
    resolved in each. Files are read in the order the loader reads them.
    """
    commits: dict[str, str] = {}
    missing: list[str] = []
    seen: set[tuple[str, str]] = set()
    readers: list[tuple[str, Callable[[], str]]] = []
    for path in paths:
        folder, absolute = _where(path)
        top = _top_level(path, folder)
        relative = os.path.relpath(absolute, top)
        if relative == os.curdir:
            relative = ""
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            raise ConfigError(
                f"{path} is outside the git work tree {top}: name policy paths inside it"
            )
        relative = relative.replace(os.sep, "/")
        if top not in commits:
            commits[top] = _commit(ref, top)
        commit = commits[top]
        entries = [
            e
            for e in _listing(commit, relative, top)
            if e.mode not in _NOT_CONTENT and e.kind == "blob" and _is_policy_file(e.path, relative)
        ]
        if not entries:
            missing.append(path)
            continue
        for entry in sorted(entries, key=lambda e: PurePosixPath(e.path).parts):
            if (top, entry.path) in seen:
                continue
            seen.add((top, entry.path))
            shown = f"{ref}:{entry.path}"
            readers.append((shown, functools.partial(_read, entry, shown, top)))
    loaded, problems = parse_files(readers)
    if problems:
        listed = "\n".join(str(p) for p in sorted(problems))
        raise ConfigError(
            f"the policies at {ref} are not valid, so there is nothing to compare with:\n"
            f"{listed}\ncompare with a revision whose policies are valid (--compare REF)"
        )
    return PoliciesAtRevision(
        ref=ref,
        # the first work tree's: the policies are almost always in one
        commit=next(iter(commits.values()), ""),
        policies=loaded,
        missing=tuple(missing),
    )
