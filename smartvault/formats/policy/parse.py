"""One policy document, already read, in; its policy records or its located problems out.

Pure: no file is read. :func:`parse_policy` takes a document composed by
:func:`~smartvault.formats.policy.yaml12.compose` (the text may come from a file, a git
revision or a test) and runs everything but the file access: the version, the schema
(:mod:`.messages`), the checks beyond it (:mod:`.checks`) and the records (:mod:`.build`).
A document is valid or invalid as a whole: when it has any problem, it has no policies.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from smartvault.core.model import Policy
from smartvault.errors import Problem
from smartvault.formats.policy.build import build_policy
from smartvault.formats.policy.checks import NameUse
from smartvault.formats.policy.checks import check_policies
from smartvault.formats.policy.checks import duplicate_names
from smartvault.formats.policy.messages import describe
from smartvault.formats.policy.messages import explain_all
from smartvault.formats.policy.schema import validator
from smartvault.formats.policy.yaml12 import Document
from smartvault.formats.policy.yaml12 import compose

SUPPORTED_VERSION = 1


@dataclass(frozen=True)
class Parsed:
    """A document's policies (none when it has a problem), its problems, and its names.

    The names are kept so that a loader can find a name used in two files; a name used
    twice within the document is not yet among the problems.
    """

    policies: list[Policy]
    problems: list[Problem]
    names: list[NameUse]


def parse_document(document: Document) -> Parsed:
    """Validate ``document`` and build its records; ``document`` itself is not changed."""
    doc = dataclasses.replace(document, problems=list(document.problems))
    if doc.unreadable:
        # The text is no YAML, or its data is cut short: anything more would be noise.
        return Parsed([], doc.problems, [])
    if doc.empty:
        doc.add(0, 0, "file is empty; expected `version: 1` and `policies:`")
        return Parsed([], doc.problems, [])
    data = doc.data
    if not isinstance(data, dict):
        if not doc.problems:
            doc.add_at(
                (),
                f"expected a mapping with `version: 1` and `policies:`, found {describe(data)}",
            )
        return Parsed([], doc.problems, [])
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version != SUPPORTED_VERSION:
        # A newer file would drown in errors against this version's schema; say just this.
        doc.add_at(
            ("version",),
            f"version {version} is not supported by this SmartVault; "
            f"this version reads version {SUPPORTED_VERSION}",
        )
        return Parsed([], doc.problems, [])

    errors = list(validator().iter_errors(data))
    explain_all(errors, doc)
    raw_policies = data.get("policies")
    entries = raw_policies if isinstance(raw_policies, list) else []
    names = check_policies(entries, doc, {tuple(e.absolute_path) for e in errors})
    if doc.problems:
        return Parsed([], doc.problems, names)
    policies = [
        build_policy(raw, doc.filename, doc.at(("policies", index, "name"))[0])
        for index, raw in enumerate(entries)
    ]
    return Parsed(policies, [], names)


def parse_policy(document: Document) -> tuple[list[Policy], list[Problem]]:
    """The policies of one composed document, or every problem found in it.

    ``document`` comes from ``compose(text, filename)``; its ``filename`` is only used in
    messages. Returns the policies and the problems sorted by position, each located
    ``file:line:column``; when there is any problem the policy list is empty. A policy
    name used twice within the document is a problem; names across files are the
    loader's to compare.
    """
    parsed = parse_document(document)
    problems = sorted([*parsed.problems, *duplicate_names(parsed.names)])
    return ([] if problems else parsed.policies), problems


def parse_policies(text: str, filename: str) -> tuple[list[Policy], list[Problem]]:
    """Parse one policy document held in ``text``; ``filename`` is only used in messages.

    Pure: reads no files. Returns the policies and every problem found, sorted by
    position; when there is any problem the policy list is empty, because a file
    is valid or invalid as a whole.
    """
    return parse_policy(compose(text, filename))
