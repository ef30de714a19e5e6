"""Schema problems in plain words, each located where it was written and said once."""

from __future__ import annotations

import pytest

from tests.factories import MINIMAL_POLICY
from tests.factories import problems_of
from tests.factories import with_policy_lines
from tests.factories import with_tags


def region_word(n: int) -> str:
    """A different word of letters for each ``n``, so ``us-<word>-1`` is a region name."""
    word = ""
    while True:
        n, letter = divmod(n, 26)
        word += chr(ord("a") + letter)
        if not n:
            return word


class TestSchemaProblems:
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
        second = MINIMAL_POLICY.split("policies:\n", 1)[1].replace("nightly", "weekly")
        text = with_policy_lines("retention: {keep_last: 0}") + second + "    colour: blue\n"
        assert problems_of(text) == [
            "p.yaml:9:28: keep_last: 0 is less than the minimum of 1",
            "p.yaml:16:5: unknown key `colour`; known keys here: archive, copies, description, "
            "enabled, name, notify, regions, resource, retention, retention_by_tag, "
            "retention_tag, safety, schedule, selector, snapshot, verify",
        ]

    def test_a_missing_key_points_at_the_mapping_that_lacks_it(self) -> None:
        text = MINIMAL_POLICY.replace(
            "      expression: cron(0 3 * * ? *)\n", "      timezone: UTC\n"
        )
        assert problems_of(text) == [
            "p.yaml:8:7: `schedule` is missing the required key `expression`"
        ]

    def test_a_misspelled_required_key_is_reported_once_as_a_misspelling(self) -> None:
        assert problems_of(MINIMAL_POLICY.replace("schedule:", "schedul:")) == [
            "p.yaml:7:5: unknown key `schedul`; did you mean `schedule`?"
        ]

    def test_a_value_of_the_wrong_type_is_reported_once(self) -> None:
        assert problems_of(with_policy_lines("resource: 3")) == [
            "p.yaml:9:15: resource: expected text, got the number 3"
        ]

    def test_a_tag_without_a_value_says_how_to_write_one(self) -> None:
        assert problems_of(with_policy_lines("snapshot: {tags: {Team: }}")) == [
            'p.yaml:9:28: tag `Team` has no value; write "" for an empty one'
        ]

    def test_a_late_repeated_item_is_reported_at_the_repeat(self) -> None:
        regions = [f"us-{region_word(n)}-1" for n in range(2_000)]
        text = with_policy_lines(f"regions: [{', '.join([*regions, regions[7]])}]")
        column = len("    regions: [") + len(", ".join(regions)) + len(", ") + 1
        assert problems_of(text) == [f"p.yaml:9:{column}: regions: `{regions[7]}` is listed twice"]


class TestUnusualInput:
    @pytest.mark.parametrize("written", ["1.5", ".inf", "-.inf", ".nan"])
    def test_fractions_and_infinities_are_not_whole_numbers(self, written: str) -> None:
        [problem] = problems_of(with_policy_lines(f"retention: {{keep_last: {written}}}"))
        assert "keep_last: expected a whole number, got the number" in problem

    def test_a_wrong_entry_in_a_list_of_tag_values_names_the_tag(self) -> None:
        assert problems_of(with_tags("        env: [prod, {a: b}]\n")) == [
            "p.yaml:6:21: tag `env`: expected a tag value, got a mapping"
        ]

    def test_an_empty_schedule_expression_is_a_problem(self) -> None:
        text = MINIMAL_POLICY.replace("expression: cron(0 3 * * ? *)", 'expression: ""')
        assert problems_of(text) == ["p.yaml:8:19: expression: must not be empty"]

    def test_a_tag_value_longer_than_aws_allows_is_a_problem(self) -> None:
        assert problems_of(with_tags(f"        backup: {'x' * 257}\n")) == [
            "p.yaml:6:17: tag `backup`: longer than 256 characters, the most AWS allows"
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
