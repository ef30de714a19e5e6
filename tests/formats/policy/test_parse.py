"""One document in, its policies or its located problems out: never an exception."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.core.model import Retention
from smartvault.errors import Problem
from smartvault.formats.policy import compose
from smartvault.formats.policy import parse_policies
from smartvault.formats.policy import parse_policy
from tests.factories import MINIMAL_POLICY
from tests.factories import problems_of
from tests.factories import with_policy_lines


class TestParsePolicies:
    def test_an_unknown_newer_version_is_the_only_problem_reported(self) -> None:
        text = MINIMAL_POLICY.replace("version: 1", "version: 2") + "    brand_new_key: 1\n"
        assert problems_of(text) == [
            "p.yaml:1:10: version 2 is not supported by this SmartVault; "
            "this version reads version 1"
        ]

    @given(st.text(max_size=300))
    @settings(max_examples=300, deadline=None)
    def test_any_text_gives_policies_or_problems_never_an_exception(self, text: str) -> None:
        policies, problems = parse_policies(text, "fuzz.yaml")
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
        document = yaml.safe_load(MINIMAL_POLICY)
        document["policies"][0][key] = value
        policies, problems = parse_policies(yaml.safe_dump(document), "fuzz.yaml")
        assert policies or problems


class TestParsePolicy:
    """``parse_policy(document)``: a document already read, checked from data alone."""

    def test_a_valid_document_becomes_its_policy_records(self) -> None:
        document = compose(with_policy_lines("retention: {keep_last: 3}"), "rev/nightly.yaml")

        policies, problems = parse_policy(document)

        assert problems == []
        [policy] = policies
        assert (policy.name, policy.file, policy.line) == ("nightly", "rev/nightly.yaml", 3)
        assert policy.retention == Retention(keep_last=3, max_age=None)

    def test_a_bad_document_gives_every_problem_located_and_no_policies(self) -> None:
        second = MINIMAL_POLICY.split("policies:\n", 1)[1]
        text = with_policy_lines("enabled: maybe") + second
        document = compose(text, "rev/nightly.yaml")

        policies, problems = parse_policy(document)

        assert policies == []
        assert [str(p) for p in problems] == [
            "rev/nightly.yaml:9:14: enabled: expected true or false, got `maybe`",
            "rev/nightly.yaml:10:11: policy name `nightly` is already used at "
            "rev/nightly.yaml:3:11; names must be unique across every loaded file",
        ]

    def test_a_document_that_is_no_yaml_gives_only_the_syntax_problem(self) -> None:
        policies, problems = parse_policy(compose("version: [1\n", "x.yaml"))

        assert policies == []
        assert len(problems) == 1
        assert str(problems[0]).startswith("x.yaml:2:1: invalid YAML: ")

    def test_parsing_leaves_the_document_as_it_was(self) -> None:
        document = compose(with_policy_lines("resource: vm"), "p.yaml")
        before = list(document.problems)

        first = parse_policy(document)

        assert document.problems == before
        assert parse_policy(document) == first

    def test_parse_policies_is_compose_then_parse_policy(self) -> None:
        text = with_policy_lines("retention: {keep_last: 0}")

        assert parse_policies(text, "p.yaml") == parse_policy(compose(text, "p.yaml"))

    def test_a_trailing_document_marker_is_no_problem(self) -> None:
        """An empty document after the first holds nothing to lose."""
        policies, problems = parse_policies(MINIMAL_POLICY + "---\n", "p.yaml")

        assert problems == []
        assert [p.name for p in policies] == ["nightly"]

    def test_parsing_a_misspelt_key_leaves_the_document_as_it_was(self) -> None:
        document = compose(with_policy_lines("retension: {keep_last: 0}"), "p.yaml")
        where, broken = dict(document.where), set(document.broken)

        _, problems = parse_policy(document)

        assert [p.message for p in problems] == [
            "unknown key `retension`; did you mean `retention`?",
            "keep_last: 0 is less than the minimum of 1",
        ]
        assert (document.where, document.broken) == (where, broken)

    def test_a_misspelt_key_with_a_misspelt_key_inside_reports_both_and_what_is_under_them(
        self,
    ) -> None:
        text = with_policy_lines("snapshots:", "  tag:", "    CreatedBy: me")

        assert problems_of(text) == [
            "p.yaml:9:5: unknown key `snapshots`; did you mean `snapshot`?",
            "p.yaml:10:7: unknown key `tag`; did you mean `tags`?",
            "p.yaml:11:9: tag `CreatedBy` is written by SmartVault itself to recognise its "
            "snapshots; choose another key",
        ]
