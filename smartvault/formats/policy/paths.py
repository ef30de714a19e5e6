"""Where a policy document holds tag keys and values: text exactly as it was written.

A :data:`JsonPath` is the keys and list indexes from the document's root to one value.
The schema cannot say which scalars keep their text (``backup: yes`` is ``"yes"``, ``010``
stays ``"010"``), so matching a tag is literal; this module says it, once, for the YAML
reader and for the messages that name a tag.
"""

from __future__ import annotations

#: Where a value sits in the document: keys and list indexes from the root.
JsonPath = tuple[str | int, ...]


def is_tag_map(path: JsonPath) -> bool:
    """True where the value is a mapping of tag keys to tag values (or lists of them)."""
    match path:
        case ("policies", int(), "selector", "tags" | "exclude_tags"):
            return True
        case ("policies", int(), "snapshot", "tags"):
            return True
        case ("policies", int(), "retention_by_tag", int(), "match"):
            return True
    return False


def holds_tag_text(path: JsonPath) -> bool:
    """True where a scalar is a tag key or value and must keep its text as written."""
    if path and is_tag_map(path[:-1]):
        return True
    if len(path) > 1 and isinstance(path[-1], int) and is_tag_map(path[:-2]):
        return True
    match path:
        case ("policies", int(), "snapshot", "copy_tags", int()):
            return True
        case ("policies", int(), "retention_tag"):
            return True
    return False
