"""The policy JSON Schema as shipped, and the validator that checks a document against it.

``smartvault/schemas/policy.schema.json`` (package data) is the one definition of the
policy language; editors and check-jsonschema read the same file. The validator is
draft-07 with two rules made exact: ``3.0`` is not a whole number, and repeated list
items are found in one hashed pass however long and mixed the list is. jsonschema is
imported only by :func:`validator`: a run whose policy files were all validated when
they were packaged (:mod:`.validated`) never loads it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
from collections.abc import Callable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

if TYPE_CHECKING:  # imported by validator() alone, when a document is validated
    import jsonschema


@functools.cache
def _schema_bytes() -> bytes:
    resource = importlib.resources.files("smartvault").joinpath("schemas/policy.schema.json")
    return resource.read_bytes()


@functools.cache
def _schema() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(_schema_bytes().decode("utf-8")))


def schema_sha256() -> str:
    """The hex SHA-256 of the policy JSON Schema file as shipped: which schema validated."""
    return hashlib.sha256(_schema_bytes()).hexdigest()


def policy_schema() -> dict[str, Any]:
    """The policy JSON Schema (draft-07), as shipped in ``smartvault/schemas``."""
    return cast(dict[str, Any], json.loads(json.dumps(_schema())))


def _is_whole_number(_checker: object, instance: object) -> bool:
    # jsonschema counts 3.0 as an integer; `keep_last: 3.0` is a typo we reject.
    return isinstance(instance, int) and not isinstance(instance, bool)


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


def first_repeat(items: list[Any]) -> int | None:
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
    import jsonschema  # loaded already: this runs inside validator()'s validation

    if unique and isinstance(instance, list) and first_repeat(instance) is not None:
        yield jsonschema.ValidationError("has non-unique elements")


@functools.cache
def validator() -> jsonschema.protocols.Validator:
    """The schema's validator, with two rules made exact (whole numbers, repeats in one pass)."""
    import jsonschema
    import jsonschema.validators

    # ``validators.extend`` is untyped in types-jsonschema; this names what it returns.
    _extend: Callable[..., type[jsonschema.protocols.Validator]] = jsonschema.validators.extend
    draft7 = jsonschema.Draft7Validator
    cls = _extend(
        draft7,
        validators={"uniqueItems": _unique_items},
        type_checker=draft7.TYPE_CHECKER.redefine("integer", _is_whole_number),
    )
    return cls(_schema())
