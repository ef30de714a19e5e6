"""Checks beyond the schema: snapshot tag placeholders, restore-test limits, unique names."""

from __future__ import annotations

from tests.factories import MINIMAL_POLICY
from tests.factories import parse_one
from tests.factories import problems_of
from tests.factories import with_policy_lines


class TestChecks:
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

    def test_a_restore_test_may_wait_at_most_12_hours(self) -> None:
        assert parse_one(with_policy_lines("verify: {every: 7d, timeout: 720m}")).verify
        for text in ("721m", "13h", "9999m"):
            problems = problems_of(with_policy_lines(f"verify: {{every: 7d, timeout: {text}}}"))
            assert problems == [
                f"p.yaml:9:34: timeout `{text}` is longer than 12h: new volumes become "
                "available within minutes, so a restore test still waiting after that has found "
                "a problem, and its test volumes are billed while it waits; use 1m to 12h"
            ]

    def test_a_timeout_the_schema_refused_is_not_checked_again(self) -> None:
        assert problems_of(with_policy_lines("verify: {every: 7d, timeout: 1d}")) == [
            "p.yaml:9:34: timeout `1d` is not a time limit; write a positive whole number "
            "followed by m (minutes) or h (hours), from 1m to 12h, for example 30m"
        ]

    def test_parse_policies_finds_duplicate_names_within_one_document(self) -> None:
        second = MINIMAL_POLICY.split("policies:\n", 1)[1]
        assert problems_of(MINIMAL_POLICY + second) == [
            "p.yaml:9:11: policy name `nightly` is already used at p.yaml:3:11; "
            "names must be unique across every loaded file"
        ]

    def test_a_missing_key_does_not_stop_the_other_checks_of_its_policy(self) -> None:
        """Before, any schema error on a policy (a missing or unknown key) skipped its checks."""
        text = MINIMAL_POLICY.replace("cron(0 3 * * ? *)", "cron(61 3 * * ? *)").replace(
            '    selector:\n      tags:\n        backup: "true"\n', ""
        )

        assert problems_of(text + "    owner: me\n") == [
            "p.yaml:3:5: policy is missing the required key `selector`",
            "p.yaml:5:19: expression: minutes: 61 is out of range 0-59",
            "p.yaml:6:5: unknown key `owner`; known keys here: archive, copies, description, "
            "enabled, name, notify, regions, resource, retention, retention_by_tag, "
            "retention_tag, safety, schedule, selector, snapshot, verify",
        ]
