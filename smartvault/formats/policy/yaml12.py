"""YAML 1.2 composition of a policy file: plain data that remembers where it was written.

The YAML is composed into a node tree (never constructed into objects), and the
plain data is built from the nodes by hand so that:

- scalars follow the YAML 1.2 core schema, the one editors and check-jsonschema
  use: ``on``, ``yes`` and ``no`` are text, only ``true``/``false`` are booleans;
- tag keys and values keep their text exactly as written (``backup: yes`` is
  ``"yes"``, ``010`` stays ``"010"``; where they sit is :mod:`.paths`);
- duplicate keys, merge keys and object-building tags (``!!python/object``) are
  problems, and so are alias bombs, recursive aliases and absurd nesting;
- every value remembers where it was written (:meth:`Document.at`), so later
  checks report ``file:line:column: message``.

Pure: text in, a :class:`Document` out; no file is read and nothing is raised.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import cast

import yaml

from smartvault.errors import Problem
from smartvault.formats.policy.paths import JsonPath
from smartvault.formats.policy.paths import holds_tag_text

#: An alias bomb ("billion laughs") composes into a few nodes and expands into
#: billions of values. Only values reached through an alias count: the others are
#: bounded by the size of the file (smartvault.files.MAX_FILE_BYTES).
_MAX_ALIASED_VALUES = 100_000
_MAX_DEPTH = 64

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


@dataclass(frozen=True)
class Where:
    """1-based positions of a value and of the key that holds it (same as the value in lists)."""

    line: int
    column: int
    key_line: int
    key_column: int


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


def show(value: object) -> str:
    """A value as a message quotes it: JSON for true/false/null, at most 60 characters."""
    text = json.dumps(value) if isinstance(value, bool) or value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Document:
    """One file's plain data, where each value was written, and what went wrong so far.

    ``data`` holds mappings (text keys), lists, text, numbers, true/false and None.
    """

    filename: str
    data: Any = None
    problems: list[Problem] = field(default_factory=list)
    where: dict[JsonPath, Where] = field(default_factory=dict)
    #: values already reported as unreadable: the schema need not complain about them too
    broken: set[JsonPath] = field(default_factory=set)
    #: the file holds nothing but comments (or one empty value)
    empty: bool = False
    #: the text is no YAML, or its data was cut short (aliases expand too far, values
    #: nest too deeply): ``problems`` say why, and anything said about ``data`` is noise
    unreadable: bool = False

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


@dataclass
class _Builder:
    """Builds plain data from composed nodes into ``doc``, counting what aliases expand to."""

    doc: Document
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

    def build(self, node: yaml.Node, path: JsonPath, key_mark: yaml.Mark, depth: int = 0) -> Any:
        if self.exhausted:
            return None
        mark = node.start_mark
        self.doc.where[path] = Where(
            mark.line + 1, mark.column + 1, key_mark.line + 1, key_mark.column + 1
        )
        # A node built before is met again through an alias: it and all it holds count.
        aliased = id(node) in self._built
        self._built.add(id(node))
        if aliased or self._aliased_depth:
            self._aliased_budget -= 1
            if self._aliased_budget < 0:
                self.doc.add_at_mark(
                    mark,
                    f"the aliases in this file expand to more than {_MAX_ALIASED_VALUES:,} "
                    "values; write the values out instead of aliasing aliases",
                )
                self.exhausted = True
                return None
        if depth > _MAX_DEPTH:
            self.doc.add_at_mark(mark, f"values are nested more than {_MAX_DEPTH} levels deep")
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
            self.doc.broken.add(path)
            return None
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in self._open:
                self.doc.add_at_mark(key_mark, "an alias refers to a value that contains it")
                self.doc.broken.add(path)
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
        value, ok = self._scalar(cast(yaml.ScalarNode, node), as_text=holds_tag_text(path))
        if not ok:
            self.doc.broken.add(path)
        return value

    def _tag_ok(self, node: yaml.Node, *allowed: str) -> bool:
        if node.tag in allowed:
            return True
        self.doc.add_at_mark(
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
                self.doc.add_at_mark(
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
                self.doc.add_at_mark(
                    key_node.start_mark,
                    "merge keys (`<<`) are not supported; repeat the keys, or use an alias "
                    "for a whole value (`retention: *keep-a-week`)",
                )
            elif key in first_line:
                self.doc.add_at_mark(
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
            self.doc.add_at_mark(
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
            self.doc.add_at_mark(node.start_mark, f"`{show(text)}` is too long to be a number")
            return None, False
        # Only an explicit tag gets here, such as `!!int ten`.
        self.doc.add_at_mark(
            node.start_mark, f"`{show(text)}` is not a valid {_show_tag(node.tag)}"
        )
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


_ONE_DOCUMENT = (
    "a policy file holds one YAML document; move what follows this `---` into a file of its own"
)


def _is_empty(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL and not node.value


def _compose_nodes(text: str, doc: Document) -> tuple[yaml.Node | None, bool]:
    """The first document's nodes, and whether it was read to its end.

    Every document is read, so that a problem in the first one is not hidden by a second
    one (a second document is a problem of its own) and the reverse; an empty document
    after the first (a trailing ``---``) holds nothing to lose and is no problem.
    """
    first: yaml.Node | None = None
    read_first = False
    try:
        loader = _CoreSchemaLoader(text)  # composes nodes, builds no objects
        try:
            if loader.check_node():
                first = loader.get_node()
            read_first = True
            while not loader.check_event(yaml.StreamEndEvent):
                start = loader.peek_event().start_mark  # type: ignore[no-untyped-call]
                try:
                    extra = loader.get_node()
                except yaml.MarkedYAMLError:  # not empty, then: it holds the error below
                    doc.add_at_mark(start, _ONE_DOCUMENT)
                    raise
                if not _is_empty(extra):
                    doc.add_at_mark(start, _ONE_DOCUMENT)
                    break
        finally:
            loader.dispose()
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
    return first, read_first


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem:
        return "a tab character cannot indent YAML; indent with spaces"
    message = f"invalid YAML: {problem}"
    if (exc.context or "").startswith("while parsing a flow") and "but got '?'" in problem:
        # `{expression: cron(0 3 * * ? *)}`: inside braces, `?` starts a key, `,` ends a value.
        message += (
            "; inside `{...}` or `[...]` quote a value that holds `?` or `,`, "
            'such as expression: "cron(0 3 * * ? *)"'
        )
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


def compose(text: str, filename: str) -> Document:
    """The plain data of the YAML document in ``text``; ``filename`` is only used in messages.

    Never raises for any text: what is wrong is in the returned document's ``problems``.
    """
    doc = Document(filename)
    root, read = _compose_nodes(text, doc)
    if not read:
        doc.unreadable = True
    elif root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL):
        doc.empty = True
    else:
        builder = _Builder(doc)
        doc.data = builder.build(root, (), root.start_mark)
        doc.unreadable = builder.exhausted
    return doc
