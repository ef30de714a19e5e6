"""Read policy files: YAML in, validated :class:`~smartvault.core.model.Policy` records out.

The YAML is composed into a node tree (never constructed into objects), and the
plain data is built from the nodes by hand so that:

- scalars follow the YAML 1.2 core schema, the one editors and check-jsonschema
  use: ``on``, ``yes`` and ``no`` are text, only ``true``/``false`` are booleans;
- tag keys and values keep their text exactly as written (``backup: yes`` is
  ``"yes"``, ``010`` stays ``"010"``), so matching is literal;
- duplicate keys and object-building tags (``!!python/object``) are errors;
- every value remembers where it was written, so each JSON Schema error is
  reported as ``file:line:column: message`` in words an operator can act on.

All problems of all files are collected and raised together as one
:class:`~smartvault.errors.PolicyError`.
"""

from __future__ import annotations

import difflib
import errno
import functools
import importlib.resources
import json
import os
import re
import stat
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import cast

import jsonschema
import jsonschema.validators
import yaml

from smartvault import files
from smartvault.core import schedules
from smartvault.core.model import DEFAULT_RETENTION
from smartvault.core.model import CopyRule
from smartvault.core.model import Duration
from smartvault.core.model import Notify
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import RetentionRule
from smartvault.core.model import Schedule
from smartvault.core.model import Selector
from smartvault.core.model import SnapshotSettings
from smartvault.core.model import TagCondition
from smartvault.core.model import TagFilter
from smartvault.errors import PolicyError
from smartvault.errors import Problem

__all__ = ["load_policies", "parse_policies", "policy_schema"]

SUPPORTED_VERSION = 1
POLICY_SUFFIXES = (".yaml", ".yml")
SNAPSHOT_TAG_PLACEHOLDERS = ("policy", "resource_id", "slot")

#: An alias bomb ("billion laughs") composes into a few nodes and expands into
#: billions of values. Only values reached through an alias count: the others are
#: bounded by the size of the file (smartvault.files.MAX_FILE_BYTES).
_MAX_ALIASED_VALUES = 100_000
_MAX_DEPTH = 64

#: Where a value sits in the document: keys and list indexes from the root.
JsonPath = tuple[str | int, ...]

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _YAML + "map", _YAML + "seq"
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL})

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_LINE_BREAK_RE = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


class _CoreSchemaLoader(yaml.SafeLoader):
    """SafeLoader that resolves plain scalars by the YAML 1.2 core schema.

    PyYAML follows YAML 1.1, where ``on``/``yes``/``no`` are booleans, ``010`` is
    octal and ``12:30`` is a base-60 number; editors (yaml-language-server) and
    the published schema see YAML 1.2. We only ever compose with it.
    """


_CoreSchemaLoader.yaml_implicit_resolvers = {}
for _tag, _regexp in ((_BOOL, _BOOL_RE), (_INT, _INT_RE), (_FLOAT, _FLOAT_RE), (_NULL, _NULL_RE)):
    _CoreSchemaLoader.add_implicit_resolver(_tag, _regexp, None)


# --- the schema -----------------------------------------------------------------


@functools.cache
def _schema() -> dict[str, Any]:
    resource = importlib.resources.files("smartvault").joinpath("schemas/policy.schema.json")
    return cast(dict[str, Any], json.loads(resource.read_text(encoding="utf-8")))


def policy_schema() -> dict[str, Any]:
    """The policy JSON Schema (draft-07), as shipped in ``smartvault/schemas``."""
    return cast(dict[str, Any], json.loads(json.dumps(_schema())))


def _is_whole_number(_checker: object, instance: object) -> bool:
    # jsonschema counts 3.0 as an integer; `keep_last: 3.0` is a typo we reject.
    return isinstance(instance, int) and not isinstance(instance, bool)


#: ``validators.extend`` is untyped in types-jsonschema; this names what it returns.
_extend: Callable[..., type[jsonschema.protocols.Validator]] = jsonschema.validators.extend


def _same_key(value: object) -> object:
    """A hashable stand-in for ``value``, equal for values JSON Schema calls equal.

    As in jsonschema: ``true`` is not ``1``, ``1`` is ``1.0``, and lists and mappings
    are equal when their items are.
    """
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, list):
        return ("list", tuple(_same_key(item) for item in value))
    if isinstance(value, dict):
        return ("map", frozenset((key, _same_key(item)) for key, item in value.items()))
    return ("text", value)


def _first_repeat(items: list[Any]) -> int | None:
    """The index of the first item equal to an earlier one, or None: one pass, hashed."""
    seen: set[object] = set()
    for index, item in enumerate(items):
        key = _same_key(item)
        if key in seen:
            return index
        seen.add(key)
    return None


def _unique_items(
    validator: jsonschema.protocols.Validator, unique: bool, instance: object, schema: object
) -> Iterator[jsonschema.ValidationError]:
    # jsonschema's own check compares every pair when the items do not sort (mixed types).
    if unique and isinstance(instance, list) and _first_repeat(instance) is not None:
        yield jsonschema.ValidationError("has non-unique elements")


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    draft7 = jsonschema.Draft7Validator
    cls = _extend(
        draft7,
        validators={"uniqueItems": _unique_items},
        type_checker=draft7.TYPE_CHECKER.redefine("integer", _is_whole_number),
    )
    return cls(_schema())


# --- where things are ---------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """1-based positions of a value and of the key that holds it (same as the value in lists)."""

    line: int
    column: int
    key_line: int
    key_column: int


def _is_tag_map(path: JsonPath) -> bool:
    match path:
        case ("policies", int(), "selector", "tags" | "exclude_tags"):
            return True
        case ("policies", int(), "snapshot", "tags"):
            return True
        case ("policies", int(), "retention_by_tag", int(), "match"):
            return True
    return False


def _holds_tag_text(path: JsonPath) -> bool:
    """True where a scalar is a tag key or value and must keep its text as written."""
    if path and _is_tag_map(path[:-1]):
        return True
    if len(path) > 1 and isinstance(path[-1], int) and _is_tag_map(path[:-2]):
        return True
    match path:
        case ("policies", int(), "snapshot", "copy_tags", int()):
            return True
        case ("policies", int(), "retention_tag"):
            return True
    return False


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


def _show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, bool) or value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class _Document:
    """One file's plain data, where each value was written, and what went wrong so far."""

    filename: str
    problems: list[Problem] = field(default_factory=list)
    where: dict[JsonPath, _Where] = field(default_factory=dict)
    #: values already reported as unreadable: the schema need not complain about them too
    broken: set[JsonPath] = field(default_factory=set)
    #: how many more values may be built through aliases
    _aliased_budget: int = field(default_factory=lambda: _MAX_ALIASED_VALUES)
    #: set once building stopped early: aliases expand too far, or nested too deeply
    exhausted: bool = False
    #: ids of the nodes built so far: meeting one again means it is reached by an alias
    _built: set[int] = field(default_factory=set)
    #: how many aliased nodes enclose the one being built (0: it is written out)
    _aliased_depth: int = 0
    #: ids of the collections being built: meeting one again means a recursive alias
    _open: set[int] = field(default_factory=set)

    def add(self, line: int, column: int, message: str) -> None:
        self.problems.append(Problem(self.filename, line, column, message))

    def add_at_mark(self, mark: yaml.Mark | None, message: str) -> None:
        if mark is None:  # pragma: no cover - PyYAML marks every error it raises
            self.add(0, 0, message)
        else:
            self.add(mark.line + 1, mark.column + 1, message)

    def at(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """The position of ``path`` (or of its key), or of the nearest enclosing value."""
        found = self.where.get(path)
        if found is not None:
            return (found.key_line, found.key_column) if key else (found.line, found.column)
        # Defensive: every built value is recorded, but a message beats a KeyError.
        return self.at(path[:-1]) if path else (0, 0)  # pragma: no cover

    def add_at(self, path: JsonPath, message: str, *, key: bool = False) -> None:
        line, column = self.at(path, key=key)
        self.add(line, column, message)

    # -- building plain data from nodes --

    def build(self, node: yaml.Node, path: JsonPath, key_mark: yaml.Mark, depth: int = 0) -> Any:
        if self.exhausted:
            return None
        mark = node.start_mark
        self.where[path] = _Where(
            mark.line + 1, mark.column + 1, key_mark.line + 1, key_mark.column + 1
        )
        # A node built before is met again through an alias: it and all it holds count.
        aliased = id(node) in self._built
        self._built.add(id(node))
        if aliased or self._aliased_depth:
            self._aliased_budget -= 1
            if self._aliased_budget < 0:
                self.add_at_mark(
                    mark,
                    f"the aliases in this file expand to more than {_MAX_ALIASED_VALUES:,} "
                    "values; write the values out instead of aliasing aliases",
                )
                self.exhausted = True
                return None
        if depth > _MAX_DEPTH:
            self.add_at_mark(mark, f"values are nested more than {_MAX_DEPTH} levels deep")
            self.exhausted = True
            return None
        self._aliased_depth += aliased
        try:
            return self._build(node, path, key_mark, depth)
        finally:
            self._aliased_depth -= aliased

    def _build(self, node: yaml.Node, path: JsonPath, key_mark: yaml.Mark, depth: int) -> Any:
        allowed = (
            (_MAP,)
            if isinstance(node, yaml.MappingNode)
            else (_SEQ,)
            if isinstance(node, yaml.SequenceNode)
            else tuple(_SCALAR_TAGS)
        )
        if not self._tag_ok(node, *allowed):
            self.broken.add(path)
            return None
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in self._open:
                self.add_at_mark(key_mark, "an alias refers to a value that contains it")
                self.broken.add(path)
                return None
            self._open.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path, depth)
                return [
                    self.build(item, (*path, index), item.start_mark, depth + 1)
                    for index, item in enumerate(node.value)
                ]
            finally:
                self._open.discard(id(node))
        value, ok = self._scalar(cast(yaml.ScalarNode, node), as_text=_holds_tag_text(path))
        if not ok:
            self.broken.add(path)
        return value

    def _tag_ok(self, node: yaml.Node, *allowed: str) -> bool:
        if node.tag in allowed:
            return True
        self.add_at_mark(
            node.start_mark,
            f"YAML tag `{_show_tag(node.tag)}` is not allowed; policy files hold only text, "
            "numbers, true/false, lists and mappings",
        )
        return False

    def _mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.add_at_mark(
                    key_node.start_mark, "a key must be plain text, not a list or mapping"
                )
                continue
            if not self._tag_ok(key_node, *_SCALAR_TAGS):
                continue
            # Keys are always text as written: `on:` is the key "on", `1:` the key "1".
            key, readable = self._text(key_node)
            if not readable:
                continue
            line = key_node.start_mark.line + 1
            if key == "<<" and key_node.style is None:
                self.add_at_mark(
                    key_node.start_mark,
                    "merge keys (`<<`) are not supported; repeat the keys, or use an alias "
                    "for a whole value (`retention: *keep-a-week`)",
                )
            elif key in first_line:
                self.add_at_mark(
                    key_node.start_mark,
                    f"duplicate key `{key}`: already defined at line {first_line[key]}; "
                    "a key may appear only once in a mapping",
                )
            else:
                first_line[key] = line
                result[key] = self.build(value_node, (*path, key), key_node.start_mark, depth + 1)
        return result

    def _text(self, node: yaml.ScalarNode) -> tuple[str, bool]:
        """A scalar's text, and False if it holds half a surrogate pair (reported)."""
        text: str = node.value
        if not _SURROGATE_RE.search(text):
            return text, True
        # PyYAML decodes "\ud83d\ude00" (JSON's escape for one emoji) as two halves: join them.
        joined = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        if "\ufffd" in joined and "\ufffd" not in text:
            self.add_at_mark(
                node.start_mark,
                "a \\u escape holds half of a UTF-16 surrogate pair; write the character "
                "itself, or escape it as \\UXXXXXXXX",
            )
            return text, False
        return joined, True

    def _scalar(self, node: yaml.ScalarNode, *, as_text: bool) -> tuple[Any, bool]:
        """The value of a scalar, and False if it could not be read (already reported)."""
        text, readable = self._text(node)
        if not readable:
            return None, False
        if node.tag == _NULL:
            return None, True
        if as_text or node.tag == _STR:
            return text, True
        try:
            if node.tag == _BOOL and _BOOL_RE.match(text):
                return text.lower() == "true", True
            if node.tag == _INT and _INT_RE.match(text):
                return _int(text), True
            if node.tag == _FLOAT and _FLOAT_RE.match(text):
                return _float(text), True
        except ValueError:
            self.add_at_mark(node.start_mark, f"`{_show(text)}` is too long to be a number")
            return None, False
        # Only an explicit tag gets here, such as `!!int ten`.
        self.add_at_mark(node.start_mark, f"`{_show(text)}` is not a valid {_show_tag(node.tag)}")
        return None, False


def _int(text: str) -> int:
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


# --- YAML syntax -------------------------------------------------------------------


def _compose(text: str, doc: _Document) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_CoreSchemaLoader)  # composes nodes, builds no objects
    except yaml.MarkedYAMLError as exc:
        doc.add_at_mark(exc.problem_mark or exc.context_mark, _syntax_message(exc))
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        lines = _LINE_BREAK_RE.split(before)
        doc.add(
            len(lines),
            len(lines[-1]) + 1,
            f"character U+{exc.character:04X} is not allowed in YAML; remove it, or write it "
            "as an escape inside double quotes",
        )
    except RecursionError:
        doc.add(0, 0, "values are nested too deeply to read")
    return None


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem:
        return "a tab character cannot indent YAML; indent with spaces"
    if problem.startswith("but found another document"):
        return (
            "a policy file holds one YAML document; move what follows this `---` "
            "into a file of its own"
        )
    message = f"invalid YAML: {problem}"
    if problem == "mapping values are not allowed here":
        message += "; put a value that contains `: ` in quotes, or check the indentation"
    context, mark = exc.context, exc.context_mark
    problem_at = exc.problem_mark
    if (
        context
        and mark
        and problem_at
        and (mark.line, mark.column) != (problem_at.line, problem_at.column)
    ):
        message += f" ({context} that starts at line {mark.line + 1}, column {mark.column + 1})"
    return message


# --- schema errors in operator English -------------------------------------------

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
    if _is_tag_map(path[:-1]):
        return f"tag `{last}`"
    if isinstance(last, int):
        if _is_tag_map(path[:-2]):
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


def _describe(value: object) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"`{_show(value)}`"
    if isinstance(value, int | float):
        return f"the number {_show(value)}"
    return f"`{_show(value)}`"


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


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean `{close[0]}`?" if close else ""


def _explain(error: jsonschema.ValidationError, doc: _Document, seen: set[JsonPath]) -> None:
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
    elif kind == "type" and instance is None and _holds_tag_text(path):
        hint = (
            '"" for an empty one'
            if "snapshot" in path
            else '"*" for any value, or "" for an empty one'
        )
        doc.add_at(path, f"{label} has no value; write {hint}")
    elif kind == "type":
        doc.add_at(path, f"{label}: expected {_expected(error, path)}, got {_describe(instance)}")
    elif kind == "enum":
        choices = [str(c) for c in value]
        hint = _did_you_mean(str(instance), choices) if isinstance(instance, str) else ""
        doc.add_at(path, f"{label} {_describe(instance)} is not one of {', '.join(choices)}{hint}")
    elif kind == "pattern" and title in _PATTERN_PHRASES:
        doc.add_at(path, f"{label} `{_show(instance)}` {_PATTERN_PHRASES[title]}")
    elif kind == "minimum":
        doc.add_at(path, f"{label}: {instance} is less than the minimum of {value}")
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
        index = _first_repeat(instance)
        assert index is not None  # the validator found it the same way
        doc.add_at((*path, index), f"{label}: {_describe(instance[index])} is listed twice")
    elif kind == "not" and path and path[-1] in _INSTANCE_ONLY:
        doc.add_at(
            path,
            f"`{path[-1]}` only applies to `resource: instance`: {_INSTANCE_ONLY[str(path[-1])]}",
            key=True,
        )
    else:  # pragma: no cover - every keyword the schema uses is translated above
        doc.add_at(path, f"{label}: {error.message}")


# --- checks beyond the schema ------------------------------------------------------


def _check_policy(
    index: int,
    raw: dict[str, Any],
    doc: _Document,
    bad: set[JsonPath],
    bad_within: set[JsonPath],
) -> None:
    """Checks beyond the schema; ``bad_within`` holds every path that encloses one in ``bad``."""
    base: JsonPath = ("policies", index)

    def clean(*keys: str | int) -> bool:
        """No schema error at, inside or above this path: safe to look closer."""
        path = (*base, *keys)
        return not any(path[:n] in bad for n in range(len(path) + 1)) and path not in bad_within

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


def _check_written_tag_key(key: str, doc: _Document, path: JsonPath) -> None:
    if key.lower().startswith("aws:"):
        doc.add_at(path, f"tag `{key}`: keys starting with `aws:` are reserved by AWS", key=True)
    elif key in ("CreatedBy", "InstanceId") or key.startswith("smartvault:"):
        doc.add_at(
            path,
            f"tag `{key}` is written by SmartVault itself to recognise its snapshots; "
            "choose another key",
            key=True,
        )


def _check_placeholders(key: str, value: str, doc: _Document, path: JsonPath) -> None:
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


# --- building the records -------------------------------------------------------


def _tag_filter(raw: dict[str, Any] | None) -> TagFilter:
    conditions = []
    for key, value in (raw or {}).items():
        values = value if isinstance(value, list) else [value]
        # "*" anywhere means "present, with any value".
        conditions.append(TagCondition(key, () if "*" in values else tuple(values)))
    return TagFilter(tuple(conditions))


def _retention(raw: dict[str, Any] | None) -> Retention:
    if raw is None:
        return DEFAULT_RETENTION
    # A retention block means exactly what it says: nothing is inherited from the default.
    max_age = raw.get("max_age")
    return Retention(
        keep_last=raw.get("keep_last", 1),
        max_age=Duration.parse(max_age) if max_age is not None else None,
        hourly=raw.get("hourly", 0),
        daily=raw.get("daily", 0),
        weekly=raw.get("weekly", 0),
        monthly=raw.get("monthly", 0),
        yearly=raw.get("yearly", 0),
    )


def _policy(raw: dict[str, Any], filename: str, line: int) -> Policy:
    selector = raw["selector"]
    schedule = raw["schedule"]
    snapshot = raw.get("snapshot", {})
    copy_tags = snapshot.get("copy_tags", ())
    archive = raw.get("archive")
    notify = raw.get("notify")
    return Policy(
        name=raw["name"],
        file=filename,
        line=line,
        description=raw.get("description", ""),
        enabled=raw.get("enabled", True),
        resource=raw.get("resource", "instance"),
        regions=tuple(raw.get("regions", ())),
        selector=Selector(
            tags=_tag_filter(selector["tags"]),
            exclude_tags=_tag_filter(selector.get("exclude_tags")),
            instance_states=tuple(selector.get("instance_states", ("running", "stopped"))),
        ),
        schedule=Schedule(schedule["expression"], schedule.get("timezone", "UTC")),
        snapshot=SnapshotSettings(
            copy_tags=True if copy_tags is True else tuple(copy_tags or ()),
            tags=dict(snapshot.get("tags", {})),
            exclude_boot_volume=snapshot.get("exclude_boot_volume", False),
        ),
        retention=_retention(raw.get("retention")),
        retention_by_tag=tuple(
            RetentionRule(_tag_filter(rule["match"]), _retention(rule["retention"]))
            for rule in raw.get("retention_by_tag", ())
        ),
        retention_tag=raw.get("retention_tag"),
        archive_after=Duration.parse(archive["after"]) if archive else None,
        copies=tuple(
            CopyRule(c["region"], _retention(c.get("retention")), c.get("kms_key_id"))
            for c in raw.get("copies", ())
        ),
        notify=Notify(notify["sns_topic_arn"], tuple(notify.get("on", ("failure",))))
        if notify
        else None,
    )


# --- one document ------------------------------------------------------------------


@dataclass(frozen=True)
class _NameUse:
    name: str
    file: str
    line: int
    column: int


@dataclass(frozen=True)
class _Parsed:
    policies: list[Policy]
    problems: list[Problem]
    names: list[_NameUse]


def _parse(text: str, filename: str) -> _Parsed:
    doc = _Document(filename)
    root = _compose(text, doc)
    if doc.problems:
        return _Parsed([], doc.problems, [])
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL):
        doc.add(0, 0, "file is empty; expected `version: 1` and `policies:`")
        return _Parsed([], doc.problems, [])
    data = doc.build(root, (), root.start_mark)
    if doc.exhausted:
        # The data is cut short; anything the schema said about it would be noise.
        return _Parsed([], doc.problems, [])
    if not isinstance(data, dict):
        if not doc.problems:
            doc.add_at(
                (),
                f"expected a mapping with `version: 1` and `policies:`, found {_describe(data)}",
            )
        return _Parsed([], doc.problems, [])
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version != SUPPORTED_VERSION:
        # A newer file would drown in errors against this version's schema; say just this.
        doc.add_at(
            ("version",),
            f"version {version} is not supported by this SmartVault; "
            f"this version reads version {SUPPORTED_VERSION}",
        )
        return _Parsed([], doc.problems, [])

    errors = list(_validator().iter_errors(data))
    bad = {tuple(e.absolute_path) for e in errors}
    bad_within = {path[:n] for path in bad for n in range(len(path))}
    # A value of the wrong type fails its other rules too (enum, pattern): say it once.
    wrong_type = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    seen: set[JsonPath] = set()
    for error in errors:
        path = tuple(error.absolute_path)
        if path in doc.broken or (path in wrong_type and error.validator != "type"):
            continue
        _explain(error, doc, seen)

    raw_policies = data.get("policies")
    entries = raw_policies if isinstance(raw_policies, list) else []
    names = []
    for index, raw in enumerate(entries):
        if not isinstance(raw, dict):
            continue
        if ("policies", index, "name") not in bad and isinstance(raw.get("name"), str):
            line, column = doc.at(("policies", index, "name"))
            names.append(_NameUse(raw["name"], filename, line, column))
        if ("policies", index) not in bad:
            _check_policy(index, raw, doc, bad, bad_within)

    if doc.problems:
        return _Parsed([], doc.problems, names)
    policies = [
        _policy(raw, filename, doc.at(("policies", index, "name"))[0])
        for index, raw in enumerate(entries)
    ]
    return _Parsed(policies, [], names)


def _duplicate_names(names: Sequence[_NameUse]) -> list[Problem]:
    first: dict[str, _NameUse] = {}
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


def parse_policies(text: str, filename: str) -> tuple[list[Policy], list[Problem]]:
    """Parse one policy document held in ``text``; ``filename`` is only used in messages.

    Pure: reads no files. Returns the policies and every problem found, sorted by
    position; when there is any problem the policy list is empty, because a file
    is valid or invalid as a whole.
    """
    parsed = _parse(text, filename)
    problems = sorted([*parsed.problems, *_duplicate_names(parsed.names)])
    return ([] if problems else parsed.policies), problems


# --- files -----------------------------------------------------------------------------


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


def load_policies(paths: Sequence[str | os.PathLike[str]]) -> PolicySet:
    """Load and validate the policy files at ``paths`` (files or directories).

    A directory loads every ``*.yaml`` and ``*.yml`` file below it, sorted. Every
    problem of every file is collected; if there is any, :class:`PolicyError` is
    raised with all of them, sorted by file, line and column. File names are shown
    as given (``policies/prod.yaml``), never made absolute.
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

    policies: list[Policy] = []
    names: list[_NameUse] = []
    for shown, file in to_read:
        try:
            text = files.read_text(file, shown, too_large="split its policies into several files")
        except files.FileRefused as exc:
            problems.append(exc.problem)
            continue
        parsed = _parse(text, shown)
        problems.extend(parsed.problems)
        policies.extend(parsed.policies)
        names.extend(parsed.names)
    problems.extend(_duplicate_names(names))
    if problems:
        raise PolicyError(sorted(problems))
    return PolicySet(policies=tuple(policies), files=tuple(shown for shown, _ in to_read))
