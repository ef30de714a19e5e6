"""Checks beyond the schema: what JSON Schema cannot say about a policy document.

A schedule must be a valid expression in a real time zone, a snapshot tag may not be
one SmartVault or AWS writes and may use only the known placeholders, a copy region is
listed once, a restore test's time limit lies between 1m and 12h, and a policy name is
unique across every loaded file. A part of the
document the schema already found wrong is not looked at again.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from smartvault.core import schedules
from smartvault.core.model import TIMEOUT_MAX
from smartvault.core.model import TIMEOUT_MIN
from smartvault.core.model import format_timeout
from smartvault.core.model import parse_timeout
from smartvault.core.tags import aws_reserved
from smartvault.core.tags import smartvault_reserved
from smartvault.errors import Problem
from smartvault.formats.policy.paths import JsonPath
from smartvault.formats.policy.yaml12 import Document

SNAPSHOT_TAG_PLACEHOLDERS = ("policy", "resource_id", "slot")

_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class NameUse:
    """Where a policy name is written: names must be unique across every loaded file."""

    name: str
    file: str
    line: int
    column: int


def check_policies(entries: Sequence[object], doc: Document, bad: set[JsonPath]) -> list[NameUse]:
    """Check each policy of ``entries``, into ``doc``; return where each one's name is written.

    ``bad`` holds the paths the schema found wrong: what lies at or above one of them
    (what holds a wrong value) is not checked again; every other part of every policy is.
    """
    bad_within = {path[:n] for path in bad for n in range(len(path))}
    names = []
    for index, raw in enumerate(entries):
        if not isinstance(raw, dict):
            continue
        if ("policies", index, "name") not in bad and isinstance(raw.get("name"), str):
            line, column = doc.at(("policies", index, "name"))
            names.append(NameUse(raw["name"], doc.filename, line, column))
        _check_policy(index, raw, doc, bad, bad_within)
    return names


def _check_policy(
    index: int,
    raw: dict[str, Any],
    doc: Document,
    bad: set[JsonPath],
    bad_within: set[JsonPath],
) -> None:
    """Checks beyond the schema; ``bad_within`` holds every path that encloses one in ``bad``."""
    base: JsonPath = ("policies", index)

    def clean(*keys: str | int) -> bool:
        """No schema error at or inside this path: safe to look closer.

        An error above it (a missing `name`, an unknown key beside it) leaves it as good
        as it is; a value of the wrong type above it is no mapping, which callers test.
        """
        path = (*base, *keys)
        return path not in bad and path not in bad_within

    schedule = raw.get("schedule")
    if isinstance(schedule, dict) and clean("schedule"):
        expression, timezone = schedule["expression"], schedule.get("timezone", "UTC")
        try:
            schedules.parse(expression, timezone)
        except schedules.ScheduleError as exc:
            doc.add_at((*base, "schedule", exc.field), f"{exc.field}: {exc.message}")

    snapshot = raw.get("snapshot")
    if isinstance(snapshot, dict) and clean("snapshot"):
        for key, value in (snapshot.get("tags") or {}).items():
            _check_written_tag_key(key, doc, (*base, "snapshot", "tags", key))
            _check_placeholders(key, str(value), doc, (*base, "snapshot", "tags", key))
        if isinstance(snapshot.get("copy_tags"), list):
            for position, key in enumerate(snapshot["copy_tags"]):
                _check_written_tag_key(str(key), doc, (*base, "snapshot", "copy_tags", position))

    verify = raw.get("verify")
    if isinstance(verify, dict) and clean("verify"):
        _check_verify(verify, doc, base)

    copies = raw.get("copies")
    if isinstance(copies, list) and clean("copies"):
        first: dict[str, int] = {}
        for position, copy in enumerate(copies):
            line, _ = doc.at((*base, "copies", position, "region"))
            region = copy["region"]
            if region in first:
                doc.add_at(
                    (*base, "copies", position, "region"),
                    f"a copy to `{region}` is already defined at line {first[region]}",
                )
            first.setdefault(region, line)


def _check_verify(verify: dict[str, Any], doc: Document, base: JsonPath) -> None:
    """A ``verify.timeout`` the schema let through (``Nm``/``Nh``) must lie within the bounds."""
    text = verify.get("timeout")
    if not isinstance(text, str):
        return
    try:
        parse_timeout(text)
    except ValueError:
        longest, shortest = format_timeout(TIMEOUT_MAX), format_timeout(TIMEOUT_MIN)
        doc.add_at(
            (*base, "verify", "timeout"),
            f"timeout `{text}` is longer than {longest}: new volumes become available "
            "within minutes, so a restore test still waiting after that has found a problem, "
            f"and its test volumes are billed while it waits; use {shortest} to {longest}",
        )


def _check_written_tag_key(key: str, doc: Document, path: JsonPath) -> None:
    if aws_reserved(key):
        doc.add_at(path, f"tag `{key}`: keys starting with `aws:` are reserved by AWS", key=True)
    elif smartvault_reserved(key):
        doc.add_at(
            path,
            f"tag `{key}` is written by SmartVault itself to recognise its snapshots; "
            "choose another key",
            key=True,
        )


def _check_placeholders(key: str, value: str, doc: Document, path: JsonPath) -> None:
    # Placeholders are replaced as plain text (smartvault.core.tagging), so other braces are
    # literal; only a `{word}` that is not a placeholder is flagged, as a likely typo.
    known = ", ".join(f"{{{p}}}" for p in SNAPSHOT_TAG_PLACEHOLDERS)
    for name in _PLACEHOLDER_RE.findall(value):
        if name in SNAPSHOT_TAG_PLACEHOLDERS:
            continue
        close = difflib.get_close_matches(name, SNAPSHOT_TAG_PLACEHOLDERS, n=1, cutoff=0.6)
        hint = f"; did you mean `{{{close[0]}}}`?" if close else ""
        doc.add_at(
            path, f"tag `{key}` uses the unknown placeholder `{{{name}}}`{hint} (known: {known})"
        )


def duplicate_names(names: Sequence[NameUse]) -> list[Problem]:
    """A problem at each use of a name after its first, saying where the first one is."""
    first: dict[str, NameUse] = {}
    problems = []
    for use in names:
        earlier = first.setdefault(use.name, use)
        if earlier is not use:
            problems.append(
                Problem(
                    use.file,
                    use.line,
                    use.column,
                    f"policy name `{use.name}` is already used at "
                    f"{earlier.file}:{earlier.line}:{earlier.column}; "
                    "names must be unique across every loaded file",
                )
            )
    return problems
