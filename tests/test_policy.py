"""The policy language: schema, loader, defaults, located errors, example policies."""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault import policy as loader
from smartvault.core.model import DEFAULT_RETENTION
from smartvault.core.model import CopyRule
from smartvault.core.model import Duration
from smartvault.core.model import Notify
from smartvault.core.model import Retention
from smartvault.core.model import TagCondition
from smartvault.core.model import TagFilter
from smartvault.errors import PolicyError
from smartvault.errors import Problem
from tests.bounded import bounded

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "policies").glob("*.yaml"))

MINIMAL = """\
version: 1
policies:
  - name: nightly
    selector:
      tags:
        backup: "true"
    schedule:
      expression: cron(0 3 * * ? *)
"""


def parse_one(text: str) -> Any:
    """The single policy in ``text``, which must be valid."""
    policies, problems = loader.parse_policies(textwrap.dedent(text), "p.yaml")
    assert problems == []
    assert len(policies) == 1
    return policies[0]


def problems_of(text: str) -> list[str]:
    policies, problems = loader.parse_policies(textwrap.dedent(text), "p.yaml")
    assert policies == []
    return [str(p) for p in problems]


def with_policy_lines(*lines: str) -> str:
    """MINIMAL plus ``lines`` (indented as policy keys, or deeper as written)."""
    return MINIMAL + "".join(f"    {line}\n" for line in lines)


def region_word(n: int) -> str:
    """A different word of letters for each ``n``, so ``us-<word>-1`` is a region name."""
    word = ""
    while True:
        n, letter = divmod(n, 26)
        word += chr(ord("a") + letter)
        if not n:
            return word


def with_tags(tags: str) -> str:
    return MINIMAL.replace('        backup: "true"\n', tags)


# --- the schema -----------------------------------------------------------------------


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
        schema = loader.policy_schema()
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["$id"] == "https://smartvault.dev/schemas/policy.schema.json"

    def test_every_property_has_a_description_for_editor_hover_help(self) -> None:
        undocumented = [
            f"{path}/properties/{name}"
            for path, node in _walk(loader.policy_schema())
            for name, prop in node.get("properties", {}).items()
            if isinstance(node.get("properties"), dict)
            and path.rsplit("/", 1)[-1] != "properties"
            and "description" not in prop
        ]
        assert undocumented == []

    def test_every_object_with_known_keys_rejects_unknown_keys(self) -> None:
        open_objects = [
            path
            for path, node in _walk(loader.policy_schema())
            if node.get("type") == "object" and "additionalProperties" not in node
        ]
        assert open_objects == []

    def test_the_top_level_schema_file_is_a_relative_symlink_to_the_packaged_one(self) -> None:
        link = ROOT / "schemas" / "policy.schema.json"
        assert link.is_symlink()
        assert os.readlink(link) == "../smartvault/schemas/policy.schema.json"
        assert json.loads(link.read_text(encoding="utf-8")) == loader.policy_schema()

    def test_policy_schema_returns_a_copy_callers_cannot_corrupt(self) -> None:
        loader.policy_schema()["properties"].clear()
        assert "policies" in loader.policy_schema()["properties"]

    @pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
    def test_example_policies_pass_the_published_schema_as_other_tools_read_them(
        self, path: Path
    ) -> None:
        # check-jsonschema and editors read YAML themselves; booleans stay booleans there.
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = list(jsonschema.Draft7Validator(loader.policy_schema()).iter_errors(data))
        assert errors == []

    def test_the_published_schema_accepts_yaml_booleans_and_numbers_as_tag_values(self) -> None:
        data = yaml.safe_load(with_tags("        backup: true\n        generation: 42\n"))
        assert jsonschema.Draft7Validator(loader.policy_schema()).is_valid(data)

    def test_the_published_schema_rejects_what_smartvault_rejects(self) -> None:
        data = yaml.safe_load(with_policy_lines("retention: {keep_last: 0}"))
        assert not jsonschema.Draft7Validator(loader.policy_schema()).is_valid(data)


# --- what a policy means: defaults and records -------------------------------------------


class TestDefaults:
    def test_a_minimal_policy_gets_every_documented_default(self) -> None:
        policy = parse_one(MINIMAL)
        assert policy.name == "nightly"
        assert policy.enabled is True
        assert policy.resource == "instance"
        assert policy.regions == ()
        assert policy.selector.instance_states == ("running", "stopped")
        assert policy.selector.exclude_tags == TagFilter()
        assert policy.schedule.timezone == "UTC"
        assert policy.retention == DEFAULT_RETENTION
        assert policy.retention_by_tag == ()
        assert policy.retention_tag is None
        assert policy.archive_after is None
        assert policy.copies == ()
        assert policy.notify is None
        assert policy.snapshot.copy_tags == ()
        assert policy.snapshot.tags == {}
        assert policy.snapshot.exclude_boot_volume is False
        assert policy.description == ""

    def test_a_policy_remembers_its_file_as_given_and_the_line_of_its_name(self) -> None:
        policy = parse_one(MINIMAL)
        assert (policy.file, policy.line) == ("p.yaml", 3)

    def test_a_retention_block_means_exactly_what_it_says(self) -> None:
        policy = parse_one(with_policy_lines("retention: {keep_last: 3}"))
        assert policy.retention == Retention(keep_last=3, max_age=None)

    def test_keep_last_defaults_to_one_inside_a_retention_block(self) -> None:
        policy = parse_one(with_policy_lines("retention: {max_age: 30d, daily: 7}"))
        assert policy.retention == Retention(keep_last=1, max_age=Duration.parse("30d"), daily=7)

    def test_copy_tags_true_copies_all_tags_and_a_list_names_them(self) -> None:
        assert (
            parse_one(with_policy_lines("snapshot: {copy_tags: true}")).snapshot.copy_tags is True
        )
        named = parse_one(with_policy_lines("snapshot: {copy_tags: [Name, Team]}"))
        assert named.snapshot.copy_tags == ("Name", "Team")

    def test_notify_defaults_to_failures_only(self) -> None:
        policy = parse_one(
            with_policy_lines("notify: {sns_topic_arn: 'arn:aws:sns:us-east-1:123456789012:t'}")
        )
        assert policy.notify == Notify("arn:aws:sns:us-east-1:123456789012:t", ("failure",))

    def test_a_copy_without_retention_keeps_the_default_retention(self) -> None:
        policy = parse_one(with_policy_lines("copies: [{region: us-west-2}]"))
        assert policy.copies == (CopyRule("us-west-2", DEFAULT_RETENTION, None),)

    def test_archive_after_becomes_the_policy_archive_after(self) -> None:
        policy = parse_one(with_policy_lines("archive: {after: 90d}"))
        assert policy.archive_after == Duration.parse("90d")

    def test_tag_filters_read_equal_any_of_and_present_with_any_value(self) -> None:
        policy = parse_one(
            with_tags(
                "        backup: 'true'\n"
                "        env: [prod, production]\n"
                "        owner: '*'\n"
                "        team: [storage, '*']\n"
            )
        )
        assert policy.selector.tags == TagFilter(
            (
                TagCondition("backup", ("true",)),
                TagCondition("env", ("prod", "production")),
                TagCondition("owner", ()),
                TagCondition("team", ()),  # a "*" inside a list also means any value
            )
        )

    def test_the_design_example_reads_into_the_records_it_describes(self) -> None:
        policy = parse_one(DESIGN_EXAMPLE)
        assert policy.name == "prod-nightly"
        assert policy.regions == ("us-east-1",)
        assert policy.selector.exclude_tags == TagFilter((TagCondition("backup-skip", ()),))
        assert policy.schedule.timezone == "Europe/Berlin"
        assert policy.snapshot.tags == {"CostCenter": "finance"}
        assert policy.retention == Retention(
            keep_last=3,
            max_age=Duration.parse("7d"),
            hourly=24,
            daily=7,
            weekly=4,
            monthly=12,
            yearly=3,
        )
        gold, bronze = policy.retention_by_tag
        assert gold.match == TagFilter((TagCondition("tier", ("gold",)),))
        assert gold.retention == Retention(max_age=Duration.parse("30d"), monthly=12)
        assert bronze.retention == Retention(max_age=Duration.parse("3d"))
        assert policy.retention_tag == "backup-retention"
        assert policy.archive_after == Duration.parse("90d")
        assert policy.copies == (
            CopyRule("us-west-2", Retention(max_age=Duration.parse("30d")), "alias/backup"),
        )
        assert policy.notify is not None
        assert policy.notify.on == ("failure",)

    def test_an_alias_reuses_a_value_written_once(self) -> None:
        text = MINIMAL.replace(
            "policies:\n", "x-week: &week {max_age: 7d, keep_last: 2}\npolicies:\n"
        )
        problems = problems_of(text)
        # There is no place for shared anchors outside policies (unknown keys are errors)...
        assert problems == ["p.yaml:2:1: unknown key `x-week`; known keys here: policies, version"]
        # ...but inside a policy an alias reuses a value written earlier:
        policy = parse_one(
            with_policy_lines(
                "retention: &week {max_age: 7d, keep_last: 2}",
                "copies: [{region: us-west-2, retention: *week}]",
            )
        )
        assert policy.copies[0].retention == policy.retention


DESIGN_EXAMPLE = """\
# yaml-language-server: $schema=../schemas/policy.schema.json
version: 1
policies:
  - name: prod-nightly
    description: Nightly crash-consistent snapshots of production
    enabled: true
    resource: instance
    regions: [us-east-1]
    selector:
      tags:
        backup: "true"
        env: [prod, production]
        owner: "*"
      exclude_tags:
        backup-skip: "*"
      instance_states: [running, stopped]
    schedule:
      expression: cron(0 3 * * ? *)
      timezone: Europe/Berlin
    snapshot:
      copy_tags: [Name, Team]
      tags: {CostCenter: finance}
      exclude_boot_volume: false
    retention:
      keep_last: 3
      max_age: 7d
      hourly: 24
      daily: 7
      weekly: 4
      monthly: 12
      yearly: 3
    retention_by_tag:
      - match: {tier: gold}
        retention: {max_age: 30d, monthly: 12}
      - match: {tier: bronze}
        retention: {max_age: 3d}
    retention_tag: backup-retention
    archive:
      after: 90d
    copies:
      - region: us-west-2
        retention: {max_age: 30d}
        kms_key_id: alias/backup
    notify:
      sns_topic_arn: arn:aws:sns:us-east-1:123456789012:backup-alerts
      on: [failure]
"""


# --- YAML as written -------------------------------------------------------------------


class TestTagValuesAsWritten:
    @pytest.mark.parametrize(
        "written",
        [
            "yes",
            "no",
            "on",
            "off",
            "true",
            "True",
            "false",
            "010",
            "0x1F",
            "12:30",
            "1e3",
            "1_000",
            ".5",
            "2024-01-01",
            "y",
            "+1",
        ],
    )
    def test_a_plain_tag_value_is_kept_as_the_text_written(self, written: str) -> None:
        policy = parse_one(with_tags(f"        backup: {written}\n"))
        assert policy.selector.tags.conditions == (TagCondition("backup", (written,)),)

    def test_tag_text_is_kept_in_every_place_tags_are_written(self) -> None:
        policy = parse_one(
            MINIMAL.replace('backup: "true"', "backup: yes\n      exclude_tags: {skip: on}")
            + "    snapshot:\n      copy_tags: [2024, true]\n      tags: {generation: 010}\n"
            + "    retention_by_tag:\n      - match: {tier: 1}\n        retention: {max_age: 1d}\n"
            + "    retention_tag: 2024\n"
        )
        assert policy.selector.tags.conditions == (TagCondition("backup", ("yes",)),)
        assert policy.selector.exclude_tags.conditions == (TagCondition("skip", ("on",)),)
        assert policy.snapshot.copy_tags == ("2024", "true")
        assert policy.snapshot.tags == {"generation": "010"}
        assert policy.retention_by_tag[0].match.conditions == (TagCondition("tier", ("1",)),)
        assert policy.retention_tag == "2024"

    def test_tag_keys_are_kept_as_written_too(self) -> None:
        policy = parse_one(with_tags("        true: yes\n        1: one\n"))
        assert policy.selector.tags.keys == ("true", "1")

    def test_other_values_get_their_natural_yaml_1_2_types(self) -> None:
        policy = parse_one(
            with_policy_lines(
                "enabled: false",
                "retention: {keep_last: 3}",
                "notify: {sns_topic_arn: 'arn:aws:sns:us-east-1:123456789012:t', on: [always]}",
            )
        )
        assert policy.enabled is False
        assert policy.retention.keep_last == 3
        # `on:` is a YAML 1.1 boolean key; read as YAML 1.2 it is the key "on".
        assert policy.notify is not None
        assert policy.notify.on == ("always",)

    def test_half_a_surrogate_pair_is_a_problem_not_a_broken_tag(self) -> None:
        assert problems_of(with_tags('        backup: "\\ud83d"\n')) == [
            "p.yaml:6:17: a \\u escape holds half of a UTF-16 surrogate pair; write the "
            "character itself, or escape it as \\UXXXXXXXX"
        ]

    def test_an_explicit_str_tag_makes_text(self) -> None:
        assert parse_one(with_policy_lines("description: !!str 123")).description == "123"

    @given(
        st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
            max_size=40,
        ),
        st.booleans(),
    )
    @settings(max_examples=150, deadline=None)
    def test_a_double_quoted_tag_value_round_trips_exactly(self, value: str, ascii: bool) -> None:
        # JSON-style escapes too: "\ud83d\ude00" is one emoji, not two halves.
        quoted = json.dumps(value, ensure_ascii=ascii)
        policy = parse_one(with_tags(f"        backup: {quoted}\n"))
        expected = () if value == "*" else (value,)
        assert policy.selector.tags.conditions == (TagCondition("backup", expected),)

    @given(
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,20}", fullmatch=True).filter(
            lambda s: not s.endswith(":") and s not in ("null", "Null", "NULL")
        )
    )
    @settings(max_examples=150, deadline=None)
    def test_a_plain_tag_value_round_trips_exactly(self, value: str) -> None:
        policy = parse_one(with_tags(f"        backup: {value}\n"))
        assert policy.selector.tags.conditions == (TagCondition("backup", (value,)),)


# --- located problems ----------------------------------------------------------------


class TestProblems:
    def test_duplicate_keys_name_both_lines(self) -> None:
        assert problems_of(with_policy_lines("enabled: true", "enabled: false")) == [
            "p.yaml:10:5: duplicate key `enabled`: already defined at line 9; "
            "a key may appear only once in a mapping"
        ]

    def test_every_schema_problem_is_reported_sorted_by_position(self) -> None:
        problems = problems_of(
            with_policy_lines("resource: vm", "retention: {keep_last: 0, daily: -1}")
        )
        assert problems == [
            "p.yaml:9:15: resource `vm` is not one of instance, volume",
            "p.yaml:10:28: keep_last: 0 is less than the minimum of 1",
            "p.yaml:10:38: daily: -1 is less than the minimum of 0",
        ]

    def test_problems_of_several_policies_all_point_into_their_own_policy(self) -> None:
        second = MINIMAL.split("policies:\n", 1)[1].replace("nightly", "weekly")
        text = with_policy_lines("retention: {keep_last: 0}") + second + "    colour: blue\n"
        assert problems_of(text) == [
            "p.yaml:9:28: keep_last: 0 is less than the minimum of 1",
            "p.yaml:16:5: unknown key `colour`; known keys here: archive, copies, description, "
            "enabled, name, notify, regions, resource, retention, retention_by_tag, "
            "retention_tag, schedule, selector, snapshot",
        ]

    def test_a_missing_key_points_at_the_mapping_that_lacks_it(self) -> None:
        text = MINIMAL.replace("      expression: cron(0 3 * * ? *)\n", "      timezone: UTC\n")
        assert problems_of(text) == [
            "p.yaml:8:7: `schedule` is missing the required key `expression`"
        ]

    def test_a_misspelled_required_key_is_reported_once_as_a_misspelling(self) -> None:
        assert problems_of(MINIMAL.replace("schedule:", "schedul:")) == [
            "p.yaml:7:5: unknown key `schedul`; did you mean `schedule`?"
        ]

    def test_an_unknown_newer_version_is_the_only_problem_reported(self) -> None:
        text = MINIMAL.replace("version: 1", "version: 2") + "    brand_new_key: 1\n"
        assert problems_of(text) == [
            "p.yaml:1:10: version 2 is not supported by this SmartVault; "
            "this version reads version 1"
        ]

    def test_a_value_of_the_wrong_type_is_reported_once(self) -> None:
        assert problems_of(with_policy_lines("resource: 3")) == [
            "p.yaml:9:15: resource: expected text, got the number 3"
        ]

    def test_an_explicit_tag_that_does_not_fit_its_value_is_a_problem(self) -> None:
        assert problems_of(with_policy_lines("retention: {keep_last: !!int ten}")) == [
            "p.yaml:9:28: `ten` is not a valid !!int"
        ]

    def test_a_python_object_tag_is_a_located_problem_and_never_runs(self) -> None:
        problems = problems_of(with_policy_lines("description: !!python/object/apply:os.getpid []"))
        assert problems == [
            "p.yaml:9:18: YAML tag `!!python/object/apply:os.getpid` is not allowed; "
            "policy files hold only text, numbers, true/false, lists and mappings"
        ]

    def test_a_tag_without_a_value_says_how_to_write_one(self) -> None:
        assert problems_of(with_policy_lines("snapshot: {tags: {Team: }}")) == [
            'p.yaml:9:28: tag `Team` has no value; write "" for an empty one'
        ]

    def test_a_non_text_key_is_a_problem(self) -> None:
        assert problems_of(with_policy_lines("[a, b]: 1")) == [
            "p.yaml:9:5: a key must be plain text, not a list or mapping"
        ]

    def test_a_recursive_alias_is_a_problem_not_a_hang(self) -> None:
        assert problems_of(with_policy_lines("regions: &loop [*loop]")) == [
            "p.yaml:9:14: an alias refers to a value that contains it"
        ]

    def test_many_values_written_out_are_not_mistaken_for_an_alias_bomb(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(loader, "_MAX_ALIASED_VALUES", 100)
        keys = [f"k{n}" for n in range(300)]
        policy = parse_one(with_policy_lines(f"snapshot: {{copy_tags: [{', '.join(keys)}]}}"))
        assert policy.snapshot.copy_tags == tuple(keys)

    def test_a_late_repeated_item_is_reported_at_the_repeat(self) -> None:
        regions = [f"us-{region_word(n)}-1" for n in range(2_000)]
        text = with_policy_lines(f"regions: [{', '.join([*regions, regions[7]])}]")
        column = len("    regions: [") + len(", ".join(regions)) + len(", ") + 1
        assert problems_of(text) == [f"p.yaml:9:{column}: regions: `{regions[7]}` is listed twice"]

    def test_the_repeat_check_reads_the_list_once_and_never_slices_it(self) -> None:
        class OnePass(list[Any]):
            passes = 0

            def __iter__(self) -> Any:
                OnePass.passes += 1
                return super().__iter__()

            def __getitem__(self, index: Any) -> Any:
                raise AssertionError(f"looked up {index!r}: only one pass is linear")

        items = OnePass([f"tag-{n}" for n in range(100_000)] + ["tag-99999"])
        assert loader._first_repeat(items) == 100_000
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
        assert loader._first_repeat(items) == repeat
        unique = jsonschema.Draft7Validator({"uniqueItems": True}).is_valid(items)
        assert unique == (repeat is None)

    def test_values_nested_absurdly_deep_are_a_problem(self) -> None:
        problems = problems_of(with_policy_lines("description: " + "[" * 80 + "]" * 80))
        assert problems == ["p.yaml:9:80: values are nested more than 64 levels deep"]

    def test_an_alias_bomb_is_refused_before_it_expands(self) -> None:
        """10^9 values if expanded: the count stops at 100,000 (no timing asserted here;
        an expansion that did not stop would never return)."""
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
            f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)
        ]
        problems = problems_of("\n".join(lines) + "\n")
        assert problems == [
            "p.yaml:1:16: the aliases in this file expand to more than 100,000 values; "
            "write the values out instead of aliasing aliases"
        ]

    def test_a_snapshot_tag_may_use_the_known_placeholders_and_literal_braces(self) -> None:
        ok = parse_one(
            with_policy_lines(
                "snapshot: {tags: {Name: '{policy}/{resource_id}@{slot}', J: '{\"a\": 1}'}}"
            )
        )
        assert ok.snapshot.tags == {"Name": "{policy}/{resource_id}@{slot}", "J": '{"a": 1}'}

    def test_an_unknown_placeholder_in_a_snapshot_tag_is_a_likely_typo(self) -> None:
        assert problems_of(with_policy_lines("snapshot: {tags: {Name: '{slot}-{owner}'}}")) == [
            "p.yaml:9:29: tag `Name` uses the unknown placeholder `{owner}` "
            "(known: {policy}, {resource_id}, {slot})"
        ]

    def test_parse_policies_finds_duplicate_names_within_one_document(self) -> None:
        second = MINIMAL.split("policies:\n", 1)[1]
        assert problems_of(MINIMAL + second) == [
            "p.yaml:9:11: policy name `nightly` is already used at p.yaml:3:11; "
            "names must be unique across every loaded file"
        ]

    @given(st.text(max_size=300))
    @settings(max_examples=300, deadline=None)
    def test_any_text_gives_policies_or_problems_never_an_exception(self, text: str) -> None:
        policies, problems = loader.parse_policies(text, "fuzz.yaml")
        assert bool(policies) != bool(problems)
        assert all(isinstance(p, Problem) and p.file == "fuzz.yaml" for p in problems)

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        ["name", "selector", "tags", "retention", "keep_last", "x", "on"]
                    ),
                    inner,
                    max_size=3,
                )
            ),
            max_leaves=12,
        ),
        st.sampled_from(["selector", "schedule", "retention", "snapshot", "copies", "notify"]),
    )
    @settings(max_examples=100, deadline=None)
    def test_any_value_in_any_policy_key_gives_problems_never_an_exception(
        self, value: Any, key: str
    ) -> None:
        document = yaml.safe_load(MINIMAL)
        document["policies"][0][key] = value
        policies, problems = loader.parse_policies(yaml.safe_dump(document), "fuzz.yaml")
        assert policies or problems

    @given(st.binary(max_size=300))
    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    def test_any_bytes_on_disk_load_or_raise_policy_error_only(self, data: bytes) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder, "fuzz.yaml")
            path.write_bytes(data)
            problems: tuple[Problem, ...] = ()
            try:
                loader.load_policies([path])
            except PolicyError as exc:
                problems = exc.problems
                assert problems, "a PolicyError always says what is wrong"
            assert all(p.file == str(path) for p in problems)


# --- files and folders -----------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def named(name: str) -> str:
    return MINIMAL.replace("nightly", name)


class TestLoadPolicies:
    @pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
    def test_every_example_policy_file_loads(self, path: Path) -> None:
        policies = loader.load_policies([path])
        assert policies.policies
        assert policies.files == (str(path),)

    def test_the_examples_start_with_the_editor_schema_modeline(self) -> None:
        assert {p.name for p in EXAMPLES} >= {"nightly.yaml", "tiered.yaml"}
        for path in EXAMPLES:
            first = path.read_text(encoding="utf-8").splitlines()[0]
            assert first == "# yaml-language-server: $schema=../schemas/policy.schema.json"

    def test_a_directory_loads_yaml_and_yml_below_it_sorted_with_relative_names(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "policies" / "b.yml", named("b"))
        write(tmp_path / "policies" / "a.yaml", named("a"))
        write(tmp_path / "policies" / "team" / "c.yaml", named("c"))
        write(tmp_path / "policies" / "README.md", "not a policy")
        write(tmp_path / "policies" / ".hidden.yaml", "not: [valid")
        write(tmp_path / "policies" / ".git" / "x.yaml", "not: [valid")
        result = loader.load_policies(["./policies"])
        assert result.files == ("policies/a.yaml", "policies/b.yml", "policies/team/c.yaml")
        assert [(p.name, p.file) for p in result.policies] == [
            ("a", "policies/a.yaml"),
            ("b", "policies/b.yml"),
            ("c", "policies/team/c.yaml"),
        ]

    def test_a_file_named_twice_is_read_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "policies" / "a.yaml", named("a"))
        result = loader.load_policies(["policies", "policies/a.yaml"])
        assert [p.name for p in result.policies] == ["a"]

    def test_missing_paths_and_empty_directories_are_problems(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "empty").mkdir()
        with pytest.raises(PolicyError) as caught:
            loader.load_policies(["missing.yaml", "empty"])
        assert [str(p) for p in caught.value.problems] == [
            "empty: no policy files (*.yaml, *.yml) in this directory",
            "missing.yaml: no such file or directory",
        ]

    def test_an_unreadable_file_is_a_problem(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "policies").mkdir()
        (tmp_path / "policies" / "gone.yaml").symlink_to(tmp_path / "nowhere")
        with pytest.raises(PolicyError) as caught:
            loader.load_policies(["policies"])
        assert [str(p) for p in caught.value.problems] == [
            "policies/gone.yaml: cannot read the file: No such file or directory"
        ]

    def test_all_problems_of_all_files_are_raised_together_sorted(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "b.yaml", named("shared") + "    enabled: maybe\n")
        write(tmp_path / "p" / "a.yaml", named("shared") + "    retention: {keep_last: 0}\n")
        with pytest.raises(PolicyError) as caught:
            loader.load_policies(["p"])
        assert [str(p) for p in caught.value.problems] == [
            "p/a.yaml:9:28: keep_last: 0 is less than the minimum of 1",
            "p/b.yaml:3:11: policy name `shared` is already used at p/a.yaml:3:11; "
            "names must be unique across every loaded file",
            "p/b.yaml:9:14: enabled: expected true or false, got `maybe`",
        ]

    def test_a_utf8_byte_order_mark_is_accepted(self, tmp_path: Path) -> None:
        path = tmp_path / "bom.yaml"
        path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
        assert loader.load_policies([path]).policies[0].name == "nightly"

    def test_the_policy_set_keeps_file_then_document_order(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        second = MINIMAL.split("policies:\n", 1)[1].replace("nightly", "alpha")
        write(tmp_path / "p" / "z.yaml", named("zulu") + second)
        write(tmp_path / "p" / "m.yaml", named("mike"))
        result = loader.load_policies(["p"])
        assert [p.name for p in result.policies] == ["mike", "zulu", "alpha"]
        assert result.get("alpha") is not None
        assert result.get("alpha").line == 9  # type: ignore[union-attr]


class TestUnusualInput:
    def test_a_key_with_an_object_building_tag_is_a_problem(self) -> None:
        assert problems_of(with_policy_lines("!!python/name:os.system x: 1")) == [
            "p.yaml:9:5: YAML tag `!!python/name:os.system` is not allowed; "
            "policy files hold only text, numbers, true/false, lists and mappings"
        ]

    def test_a_key_holding_half_a_surrogate_pair_is_a_problem(self) -> None:
        problems = problems_of(with_policy_lines('"\\ud800": 1'))
        assert problems == [
            "p.yaml:9:5: a \\u escape holds half of a UTF-16 surrogate pair; write the "
            "character itself, or escape it as \\UXXXXXXXX"
        ]

    def test_a_number_too_long_to_read_is_a_problem(self) -> None:
        problems = problems_of(with_policy_lines("retention: {keep_last: " + "9" * 5000 + "}"))
        assert problems == [f"p.yaml:9:28: `{'9' * 57}...` is too long to be a number"]

    @pytest.mark.parametrize(("written", "value"), [("0x10", 16), ("0o10", 8), ("+7", 7)])
    def test_yaml_1_2_integers_are_read_as_numbers(self, written: str, value: int) -> None:
        policy = parse_one(with_policy_lines(f"retention: {{keep_last: {written}}}"))
        assert policy.retention.keep_last == value

    @pytest.mark.parametrize("written", ["1.5", ".inf", "-.inf", ".nan"])
    def test_fractions_and_infinities_are_not_whole_numbers(self, written: str) -> None:
        [problem] = problems_of(with_policy_lines(f"retention: {{keep_last: {written}}}"))
        assert "keep_last: expected a whole number, got the number" in problem

    def test_nesting_deeper_than_the_yaml_reader_can_go_is_a_problem(self) -> None:
        assert problems_of("[" * 1000 + "]" * 1000) == [
            "p.yaml: values are nested too deeply to read"
        ]

    def test_a_wrong_entry_in_a_list_of_tag_values_names_the_tag(self) -> None:
        assert problems_of(with_tags("        env: [prod, {a: b}]\n")) == [
            "p.yaml:6:21: tag `env`: expected a tag value, got a mapping"
        ]

    def test_an_empty_schedule_expression_is_a_problem(self) -> None:
        text = MINIMAL.replace("expression: cron(0 3 * * ? *)", 'expression: ""')
        assert problems_of(text) == ["p.yaml:8:19: expression: must not be empty"]

    def test_a_tag_value_longer_than_aws_allows_is_a_problem(self) -> None:
        assert problems_of(with_tags(f"        backup: {'x' * 257}\n")) == [
            "p.yaml:6:17: tag `backup`: longer than 256 characters, the most AWS allows"
        ]

    def test_a_file_that_is_one_forbidden_object_is_one_problem(self) -> None:
        assert problems_of("!!python/object:os.system {}\n") == [
            "p.yaml:1:1: YAML tag `!!python/object:os.system` is not allowed; "
            "policy files hold only text, numbers, true/false, lists and mappings"
        ]

    def test_a_policy_that_is_not_a_mapping_is_a_problem(self) -> None:
        assert problems_of("version: 1\npolicies: [nightly]\n") == [
            "p.yaml:2:12: policy: expected a mapping, got `nightly`"
        ]

    def test_every_missing_key_of_a_mapping_is_reported_once(self) -> None:
        assert problems_of("version: 1\npolicies:\n  - name: lonely\n") == [
            "p.yaml:3:5: policy is missing the required key `schedule`",
            "p.yaml:3:5: policy is missing the required key `selector`",
        ]


def load_problems(*paths: str | Path, fifos: tuple[Path, ...] = ()) -> list[str]:
    """The problems of loading ``paths``; fails the test instead of hanging or blowing up."""

    def load() -> list[str]:
        with pytest.raises(PolicyError) as caught:
            loader.load_policies(list(paths))
        return [str(p) for p in caught.value.problems]

    return bounded(load, fifos=fifos)


class TestFilesThatAreNotPolicies:
    """Only regular files of at most 1 MiB are read; anything else is a located problem."""

    def test_a_link_to_dev_zero_in_a_policy_folder_is_a_problem_not_a_memory_blow_up(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.symlink("/dev/zero", tmp_path / "p" / "zero.yaml")
        assert load_problems("p") == [
            "p/zero.yaml: a link to a character device (/dev/zero), not a regular file; "
            "SmartVault reads only regular files: replace it with the file itself, "
            "or move it away"
        ]

    def test_the_loader_refuses_a_fifo_in_a_policy_folder_without_blocking(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.mkfifo(tmp_path / "p" / "pipe.yaml")
        assert load_problems("p", fifos=(tmp_path / "p" / "pipe.yaml",)) == [
            "p/pipe.yaml: a FIFO (named pipe), not a regular file; SmartVault reads only "
            "regular files: replace it with the file itself, or move it away"
        ]

    def test_the_loader_refuses_a_fifo_named_explicitly_without_blocking(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        os.mkfifo("pipe.yaml")
        assert load_problems("pipe.yaml", fifos=(tmp_path / "pipe.yaml",)) == [
            "pipe.yaml: a FIFO (named pipe), not a regular file; SmartVault reads only "
            "regular files: replace it with the file itself, or move it away"
        ]

    def test_a_file_larger_than_1_mib_is_a_problem_and_is_not_parsed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "big.yaml", MINIMAL + "# padding\n" * 200_000)
        assert load_problems("big.yaml") == [
            "big.yaml: the file is larger than 1 MiB (2,000,138 bytes), the most SmartVault "
            "reads from one file; split its policies into several files"
        ]

    def test_a_file_of_exactly_1_mib_is_read(self, tmp_path: Path) -> None:
        padding = 1024 * 1024 - len(MINIMAL) - 1
        path = write(tmp_path / "full.yaml", MINIMAL + "#" * padding + "\n")
        assert path.stat().st_size == 1024 * 1024
        assert [p.name for p in loader.load_policies([path]).policies] == ["nightly"]

    def test_a_symlink_loop_in_a_policy_folder_is_a_problem_not_a_traceback(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.symlink("loop.yaml", tmp_path / "p" / "loop.yaml")
        assert load_problems("p") == [
            "p/loop.yaml: a symbolic link loop (the link leads back to itself); "
            "point the link at a real file, or remove it"
        ]

    def test_a_symlink_loop_named_explicitly_is_called_a_loop_not_missing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        os.symlink("b.yaml", "a.yaml")
        os.symlink("a.yaml", "b.yaml")
        assert load_problems("a.yaml") == [
            "a.yaml: a symbolic link loop (the link leads back to itself); "
            "point the link at a real file, or remove it"
        ]

    def test_a_linked_folder_inside_a_policy_folder_is_followed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "shared" / "team.yaml", named("team"))
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.symlink("../shared", tmp_path / "p" / "shared")
        result = loader.load_policies(["p"])
        assert result.files == ("p/a.yaml", "p/shared/team.yaml")

    def test_a_folder_reached_twice_through_links_is_read_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "shared" / "team.yaml", named("team"))
        (tmp_path / "p").mkdir()
        os.symlink("../shared", tmp_path / "p" / "one")
        os.symlink("../shared", tmp_path / "p" / "two")
        assert loader.load_policies(["p"]).files == ("p/one/team.yaml",)

    def test_a_link_back_to_an_enclosing_folder_is_a_problem_not_a_walk_without_end(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "team" / "a.yaml", named("a"))
        os.symlink("..", tmp_path / "p" / "team" / "up")
        assert load_problems("p") == [
            "p/team/up: a link back to an enclosing folder (p), which would be read without "
            "end; remove the link"
        ]

    def test_a_link_loop_among_folders_is_a_problem_not_a_traceback(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "p" / "a.yaml", named("a"))
        os.symlink("team", tmp_path / "p" / "team")
        assert load_problems("p") == [
            "p/team: a symbolic link loop (the link leads back to itself); "
            "point the link at a real file, or remove it"
        ]
