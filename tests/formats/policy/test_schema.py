"""The published policy JSON Schema, and the validator's exact rules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from smartvault.formats.policy import policy_schema
from smartvault.formats.policy.schema import first_repeat
from tests.factories import with_policy_lines
from tests.factories import with_tags

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "policies").glob("*.yaml"))


def _walk(schema: Any, path: str = "#") -> Any:
    if isinstance(schema, dict):
        yield path, schema
        for key, value in schema.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _walk(value, f"{path}/{index}")


class TestSchema:
    def test_the_schema_is_a_valid_draft_07_schema_with_an_id(self) -> None:
        schema = policy_schema()
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["$id"] == "https://smartvault.dev/schemas/policy.schema.json"

    def test_every_property_has_a_description_for_editor_hover_help(self) -> None:
        undocumented = [
            f"{path}/properties/{name}"
            for path, node in _walk(policy_schema())
            for name, prop in node.get("properties", {}).items()
            if isinstance(node.get("properties"), dict)
            and path.rsplit("/", 1)[-1] != "properties"
            and "description" not in prop
        ]
        assert undocumented == []

    def test_every_object_with_known_keys_rejects_unknown_keys(self) -> None:
        open_objects = [
            path
            for path, node in _walk(policy_schema())
            if node.get("type") == "object" and "additionalProperties" not in node
        ]
        assert open_objects == []

    def test_the_top_level_schema_file_is_a_relative_symlink_to_the_packaged_one(self) -> None:
        link = ROOT / "schemas" / "policy.schema.json"
        assert link.is_symlink()
        assert os.readlink(link) == "../smartvault/schemas/policy.schema.json"
        assert json.loads(link.read_text(encoding="utf-8")) == policy_schema()

    def test_policy_schema_returns_a_copy_callers_cannot_corrupt(self) -> None:
        policy_schema()["properties"].clear()
        assert "policies" in policy_schema()["properties"]

    @pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
    def test_example_policies_pass_the_published_schema_as_other_tools_read_them(
        self, path: Path
    ) -> None:
        # check-jsonschema and editors read YAML themselves; booleans stay booleans there.
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = list(jsonschema.Draft7Validator(policy_schema()).iter_errors(data))
        assert errors == []

    def test_the_published_schema_accepts_yaml_booleans_and_numbers_as_tag_values(self) -> None:
        data = yaml.safe_load(with_tags("        backup: true\n        generation: 42\n"))
        assert jsonschema.Draft7Validator(policy_schema()).is_valid(data)

    def test_the_published_schema_rejects_what_smartvault_rejects(self) -> None:
        data = yaml.safe_load(with_policy_lines("retention: {keep_last: 0}"))
        assert not jsonschema.Draft7Validator(policy_schema()).is_valid(data)


class TestRepeatedItems:
    """uniqueItems, in one hashed pass: equal as JSON Schema counts equal."""

    def test_the_repeat_check_reads_the_list_once_and_never_slices_it(self) -> None:
        class OnePass(list[Any]):
            passes = 0

            def __iter__(self) -> Any:
                OnePass.passes += 1
                return super().__iter__()

            def __getitem__(self, index: Any) -> Any:
                raise AssertionError(f"looked up {index!r}: only one pass is linear")

        items = OnePass([f"tag-{n}" for n in range(100_000)] + ["tag-99999"])
        assert first_repeat(items) == 100_000
        assert OnePass.passes == 1

    @pytest.mark.parametrize(
        ("items", "repeat"),
        [
            ([1, True, 1.0], 2),
            ([True, 1, False, 0], None),
            ([{"a": [1, 2]}, {"a": [1, 2.0]}], 1),
            ([[1, {"b": None}], [1, {"b": None}]], 1),
            (["a", "b", "c"], None),
        ],
    )
    def test_the_repeat_check_counts_as_equal_what_json_schema_does(
        self, items: list[Any], repeat: int | None
    ) -> None:
        assert first_repeat(items) == repeat
        unique = jsonschema.Draft7Validator({"uniqueItems": True}).is_valid(items)
        assert unique == (repeat is None)
