"""JSON Schema errors in words an operator can act on, each located where it was written.

jsonschema says ``'vm' is not one of ['instance', 'volume']`` at a JSON path; this module
says ``p.yaml:9:15: resource `vm` is not one of instance, volume``, names a tag by its
key, suggests the key or value that was probably meant ("did you mean"), and reports
each mistake once: a value of the wrong type is not also called a bad pattern.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

import jsonschema

from smartvault.formats.policy.paths import JsonPath
from smartvault.formats.policy.paths import holds_tag_text
from smartvault.formats.policy.paths import is_tag_map
from smartvault.formats.policy.schema import first_repeat
from smartvault.formats.policy.yaml12 import Document
from smartvault.formats.policy.yaml12 import show

_SINGULAR = {
    "policies": "policy",
    "regions": "region",
    "copies": "copy",
    "retention_by_tag": "retention rule",
    "instance_states": "instance state",
    "copy_tags": "tag key",
    "on": "notify event",
}
_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}
_EXPECTED_BY_TITLE = {
    "Duration": "a duration such as 7d",
    "Timeout": "a time limit such as 30m",
    "Name": "a name such as prod-nightly",
    "Region": "a region name such as us-east-1",
    "Tag key": "a tag key",
    "Tag value": "a tag value",
    "Tag condition": "a tag value, or a list of tag values",
    "Tag filter": "a mapping of tag keys to values",
    "SNS topic ARN": "an SNS topic ARN",
}
_EXPECTED_BY_KEY = {"copy_tags": "true (copy all tags) or a list of tag keys"}
_PATTERN_PHRASES = {
    "Name": (
        "must be lowercase letters, digits and dashes, starting with a letter or digit, "
        "at most 63 characters"
    ),
    "Region": "is not an AWS region name such as us-east-1 or eu-central-1",
    "Duration": (
        "is not a duration; write a positive whole number followed by h (hours), "
        "d (days) or w (weeks), for example 7d"
    ),
    "Timeout": (
        "is not a time limit; write a positive whole number followed by m (minutes) "
        "or h (hours), from 1m to 12h, for example 30m"
    ),
    "SNS topic ARN": (
        "is not an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:backup-alerts"
    ),
}
_INSTANCE_ONLY = {
    "instance_states": "volumes have no instance state",
    "exclude_boot_volume": "a volume policy snapshots exactly the volumes it selects",
}


def _label(path: JsonPath) -> str:
    if not path:
        return "the file"
    last = path[-1]
    if is_tag_map(path[:-1]):
        return f"tag `{last}`"
    if isinstance(last, int):
        if is_tag_map(path[:-2]):
            return f"tag `{path[-2]}`"
        parent = path[-2] if len(path) > 1 else ""
        return _SINGULAR.get(str(parent), f"{parent} entry")
    return last


def _container(path: JsonPath) -> str:
    if not path:
        return "the file"
    if isinstance(path[-1], int):
        return _SINGULAR.get(str(path[-2]), "this entry") if len(path) > 1 else "this entry"
    return f"`{path[-1]}`"


def describe(value: object) -> str:
    """A value as a message names it: ``a mapping``, ``the number 3``, ```maybe```."""
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"`{show(value)}`"
    if isinstance(value, int | float):
        return f"the number {show(value)}"
    return f"`{show(value)}`"


def _expected(error: jsonschema.ValidationError, path: JsonPath) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if path and path[-1] in _EXPECTED_BY_KEY:
        return _EXPECTED_BY_KEY[str(path[-1])]
    title = schema.get("title")
    if title in _EXPECTED_BY_TITLE:
        return _EXPECTED_BY_TITLE[title]
    types: Any = error.validator_value
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_WORDS.get(t, t) for t in names)


def meant(word: str, choices: Sequence[str]) -> str | None:
    """The choice ``word`` was probably meant to be (``retension``: ``retention``), or None."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return close[0] if close else None


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = meant(word, choices)
    return f"; did you mean `{close}`?" if close else ""


def misspelt_keys(errors: Iterable[jsonschema.ValidationError]) -> list[tuple[JsonPath, str, str]]:
    """``(mapping path, key as written, key meant)`` for each unknown key with one likely
    meaning that is not also written: what lies under it can be checked as if spelt right."""
    found = []
    for error in errors:
        instance = error.instance
        schema = error.schema if isinstance(error.schema, dict) else {}
        if error.validator != "additionalProperties" or not isinstance(instance, dict):
            continue
        known = sorted(schema.get("properties", {}))
        for key in instance:
            if key not in known:
                close = meant(key, known)
                if close is not None and close not in instance:
                    found.append((tuple(error.absolute_path), key, close))
    return found


def _explain(error: jsonschema.ValidationError, doc: Document, seen: set[JsonPath]) -> None:
    """Turn one jsonschema error into located problems in ``doc``."""
    path: JsonPath = tuple(error.absolute_path)
    instance = error.instance
    label = _label(path)
    kind = error.validator
    value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    title = schema.get("title", "")

    if kind == "additionalProperties" and isinstance(instance, dict):
        known = sorted(schema.get("properties", {}))
        for key in instance:
            if key not in known:
                hint = _did_you_mean(key, known) or f"; known keys here: {', '.join(known)}"
                doc.add_at((*path, key), f"unknown key `{key}`{hint}", key=True)
    elif kind == "required" and isinstance(instance, dict):
        if path in seen:  # one error per missing key: report them all on the first
            return
        seen.add(path)
        container = _container(path)
        unknown = [k for k in instance if k not in schema.get("properties", {})]
        for key in value:
            # `polices:` is reported as "did you mean `policies`?"; "missing" would be noise.
            if key not in instance and not difflib.get_close_matches(key, unknown, cutoff=0.6):
                doc.add_at(path, f"{container} is missing the required key `{key}`")
    elif kind == "type" and instance is None and holds_tag_text(path):
        hint = (
            '"" for an empty one'
            if "snapshot" in path
            else '"*" for any value, or "" for an empty one'
        )
        doc.add_at(path, f"{label} has no value; write {hint}")
    elif kind == "type":
        doc.add_at(path, f"{label}: expected {_expected(error, path)}, got {describe(instance)}")
    elif kind == "enum":
        choices = [str(c) for c in value]
        hint = _did_you_mean(str(instance), choices) if isinstance(instance, str) else ""
        doc.add_at(path, f"{label} {describe(instance)} is not one of {', '.join(choices)}{hint}")
    elif kind == "pattern" and title in _PATTERN_PHRASES:
        doc.add_at(path, f"{label} `{show(instance)}` {_PATTERN_PHRASES[title]}")
    elif kind == "minimum":
        doc.add_at(path, f"{label}: {instance} is less than the minimum of {value}")
    elif kind == "exclusiveMinimum":
        doc.add_at(path, f"{label}: {instance} must be more than {value}")
    elif kind == "maximum":
        doc.add_at(path, f"{label}: {instance} is more than the maximum of {value}")
    elif kind == "minItems":
        doc.add_at(
            path, f"{label}: the list is empty; list at least one {_SINGULAR.get(label, 'entry')}"
        )
    elif kind == "minProperties":
        why = "; a policy never selects every resource by accident" if label == "tags" else ""
        doc.add_at(path, f"{label}: name at least one tag{why}")
    elif kind == "minLength":
        doc.add_at(path, f"{label}: must not be empty")
    elif kind == "maxLength":
        doc.add_at(path, f"{label}: longer than {value} characters, the most AWS allows")
    elif kind == "uniqueItems" and isinstance(instance, list):
        index = first_repeat(instance)
        assert index is not None  # the validator found it the same way
        doc.add_at((*path, index), f"{label}: {describe(instance[index])} is listed twice")
    elif kind == "not" and path and path[-1] in _INSTANCE_ONLY:
        doc.add_at(
            path,
            f"`{path[-1]}` only applies to `resource: instance`: {_INSTANCE_ONLY[str(path[-1])]}",
            key=True,
        )
    else:  # pragma: no cover - every keyword the schema uses is translated above
        doc.add_at(path, f"{label}: {error.message}")


def explain_all(errors: Iterable[jsonschema.ValidationError], doc: Document) -> None:
    """Every schema error as located problems in ``doc``, each mistake said once.

    Errors about values the YAML reader already reported (``doc.broken``) are left out.
    """
    errors = list(errors)
    # A value of the wrong type fails its other rules too (enum, pattern): say it once.
    wrong_type = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    seen: set[JsonPath] = set()
    for error in errors:
        path = tuple(error.absolute_path)
        if path in doc.broken or (path in wrong_type and error.validator != "type"):
            continue
        _explain(error, doc, seen)
