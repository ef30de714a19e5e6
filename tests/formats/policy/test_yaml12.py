"""YAML as written: the 1.2 core schema, tag text kept exactly, and unsafe YAML refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.core.model import TagCondition
from smartvault.formats.policy import compose
from smartvault.formats.policy import parse_policies
from smartvault.formats.policy import yaml12
from tests.factories import MINIMAL_POLICY
from tests.factories import parse_one
from tests.factories import problems_of
from tests.factories import with_policy_lines
from tests.factories import with_tags


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
            MINIMAL_POLICY.replace('backup: "true"', "backup: yes\n      exclude_tags: {skip: on}")
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


class TestYamlProblems:
    def test_duplicate_keys_name_both_lines(self) -> None:
        assert problems_of(with_policy_lines("enabled: true", "enabled: false")) == [
            "p.yaml:10:5: duplicate key `enabled`: already defined at line 9; "
            "a key may appear only once in a mapping"
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

    def test_a_non_text_key_is_a_problem(self) -> None:
        assert problems_of(with_policy_lines("[a, b]: 1")) == [
            "p.yaml:9:5: a key must be plain text, not a list or mapping"
        ]

    def test_an_alias_reuses_a_value_written_once(self) -> None:
        text = MINIMAL_POLICY.replace(
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

    def test_a_recursive_alias_is_a_problem_not_a_hang(self) -> None:
        assert problems_of(with_policy_lines("regions: &loop [*loop]")) == [
            "p.yaml:9:14: an alias refers to a value that contains it"
        ]

    def test_many_values_written_out_are_not_mistaken_for_an_alias_bomb(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(yaml12, "_MAX_ALIASED_VALUES", 100)
        keys = [f"k{n}" for n in range(300)]
        policy = parse_one(with_policy_lines(f"snapshot: {{copy_tags: [{', '.join(keys)}]}}"))
        assert policy.snapshot.copy_tags == tuple(keys)

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

    def test_nesting_deeper_than_the_yaml_reader_can_go_is_a_problem(self) -> None:
        assert problems_of("[" * 1000 + "]" * 1000) == [
            "p.yaml: values are nested too deeply to read"
        ]

    def test_a_file_that_is_one_forbidden_object_is_one_problem(self) -> None:
        assert problems_of("!!python/object:os.system {}\n") == [
            "p.yaml:1:1: YAML tag `!!python/object:os.system` is not allowed; "
            "policy files hold only text, numbers, true/false, lists and mappings"
        ]


class TestCompose:
    def test_compose_gives_plain_data_and_where_each_value_and_key_was_written(self) -> None:
        document = compose(with_tags("        backup: yes\n"), "p.yaml")

        assert (document.problems, document.empty, document.unreadable) == ([], False, False)
        assert document.data["policies"][0]["selector"]["tags"] == {"backup": "yes"}
        path = ("policies", 0, "selector", "tags", "backup")
        assert document.at(path) == (6, 17)
        assert document.at(path, key=True) == (6, 9)

    def test_a_file_of_comments_composes_to_an_empty_document(self) -> None:
        document = compose("# nothing here yet\n", "p.yaml")

        assert (document.data, document.problems, document.empty) == (None, [], True)


def test_a_second_document_that_is_no_yaml_is_both_problems_and_the_first_is_still_checked() -> (
    None
):
    policies, problems = parse_policies("version: 1\npolicies: []\n---\nfoo: [\n", "p.yaml")

    assert policies == []
    assert [str(p) for p in problems] == [
        "p.yaml:2:11: policies: the list is empty; list at least one policy",
        "p.yaml:3:1: a policy file holds one YAML document; move what follows this `---` "
        "into a file of its own",
        "p.yaml:5:1: invalid YAML: expected the node content, but found '<stream end>'",
    ]
