"""One policy document, already read, in; its policy records or its located problems out.

Pure: no file is read. :func:`parse_policy` takes a document composed by
:func:`~smartvault.formats.policy.yaml12.compose` (the text may come from a file, a git
revision or a test) and runs everything but the file access: the version, the schema
(:mod:`.messages`), the checks beyond it (:mod:`.checks`) and the records (:mod:`.build`).
A document is valid or invalid as a whole: when it has any problem, it has no policies.
jsonschema is imported only when a document is validated against the schema.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from smartvault.core.model import Policy
from smartvault.errors import Problem
from smartvault.formats.policy.build import build_policy
from smartvault.formats.policy.checks import NameUse
from smartvault.formats.policy.checks import check_policies
from smartvault.formats.policy.checks import duplicate_names
from smartvault.formats.policy.paths import JsonPath
from smartvault.formats.policy.schema import validator
from smartvault.formats.policy.yaml12 import Document
from smartvault.formats.policy.yaml12 import compose

if TYPE_CHECKING:  # the validation imports jsonschema itself, when it runs
    import jsonschema

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


def parse_document(document: Document, *, schema_passed: bool = False) -> Parsed:
    """Validate ``document`` and build its records; ``document`` itself is not changed.

    ``schema_passed``: these very bytes passed this very schema before (the package's
    manifest, :mod:`.validated`, says so), so the schema step is skipped; a document
    the schema passes is built from its data as it is, so the result is the same.
    Every other step, and every check beyond the schema, still runs.
    """
    doc = dataclasses.replace(
        document,
        problems=list(document.problems),
        where=dict(document.where),
        broken=set(document.broken),
    )
    if doc.unreadable:
        # The text is no YAML, or its data is cut short: anything more would be noise.
        return Parsed([], doc.problems, [])
    if doc.empty:
        doc.add(0, 0, "file is empty; expected `version: 1` and `policies:`")
        return Parsed([], doc.problems, [])
    data = doc.data
    if not isinstance(data, dict):
        if not doc.problems:
            from smartvault.formats.policy.messages import describe  # an invalid document only

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

    errors = [] if schema_passed else list(validator().iter_errors(data))
    if errors:
        # Only an invalid document needs the messages (a scheduled run's are valid).
        from smartvault.formats.policy.messages import explain_all

        explain_all(errors, doc)
        data, hidden = _as_meant(data, errors, doc)
        errors += hidden
    raw_policies = data.get("policies")
    entries = raw_policies if isinstance(raw_policies, list) else []
    names = check_policies(entries, doc, _bad_paths(errors))
    if doc.problems:
        return Parsed([], doc.problems, names)
    policies = [
        build_policy(raw, doc.filename, doc.at(("policies", index, "name"))[0])
        for index, raw in enumerate(entries)
    ]
    return Parsed(policies, [], names)


#: Misspelt keys inside the value of a misspelt key inside ...: deep enough for the schema.
_MAX_RESPELLINGS = 6


def _bad_paths(errors: list[jsonschema.ValidationError]) -> set[JsonPath]:
    """Where the data is unsafe to look at closer. An unknown key is not: the checks read
    only known keys, and the mapping that holds it is as good as its other keys."""
    return {tuple(e.absolute_path) for e in errors if e.validator != "additionalProperties"}


def _as_meant(
    data: dict[str, Any], errors: list[jsonschema.ValidationError], doc: Document
) -> tuple[dict[str, Any], list[jsonschema.ValidationError]]:
    """The data with each misspelt key spelt as meant, and the errors that hid under it.

    ``retension:`` is reported as "did you mean `retention`?"; without this, a mistake
    inside its value (``keep_last: 0``) would surface only once the key is fixed. Problems
    are located where they are written: the respelt paths point at the same places.
    """
    from smartvault.formats.policy.messages import explain_all  # errors only: see parse_document
    from smartvault.formats.policy.messages import misspelt_keys

    hidden: list[jsonschema.ValidationError] = []
    found = misspelt_keys(errors)
    for _ in range(_MAX_RESPELLINGS):
        if not found:
            break
        data = copy.deepcopy(data)
        respelt: dict[JsonPath, JsonPath] = {}  # as written -> as meant
        for parent, written, meant in found:
            mapping: Any = data
            for step in parent:
                mapping = mapping[step]
            mapping[meant] = mapping.pop(written)
            respelt[(*parent, written)] = (*parent, meant)
        # One pass over each table, a prefix lookup per path: linear in the document.
        for path, where in list(doc.where.items()):
            moved = _respelt(path, respelt)
            if moved is not None:
                doc.where[moved] = where
        doc.broken |= {m for m in (_respelt(p, respelt) for p in doc.broken) if m is not None}
        # Only what lies under a respelt key is new: the rest was said already.
        meant_paths = set(respelt.values())
        again = [
            e
            for e in validator().iter_errors(data)
            if any(
                tuple(e.absolute_path)[:n] in meant_paths for n in range(len(e.absolute_path) + 1)
            )
        ]
        explain_all(again, doc)
        hidden += again
        found = misspelt_keys(again)
    return data, hidden


def _respelt(path: JsonPath, respelt: dict[JsonPath, JsonPath]) -> JsonPath | None:
    """``path`` with its respelt prefix as meant, or None when it has none."""
    for n in range(1, len(path) + 1):
        meant = respelt.get(path[:n])
        if meant is not None:
            return (*meant, *path[n:])
    return None


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
