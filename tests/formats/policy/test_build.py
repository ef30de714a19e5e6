"""What a policy means: the records it becomes and every documented default."""

from __future__ import annotations

from datetime import timedelta

from smartvault.core.model import DEFAULT_RETENTION
from smartvault.core.model import CopyRule
from smartvault.core.model import Duration
from smartvault.core.model import Notify
from smartvault.core.model import Retention
from smartvault.core.model import TagCondition
from smartvault.core.model import TagFilter
from smartvault.core.model import Verify
from tests.factories import MINIMAL_POLICY
from tests.factories import parse_one
from tests.factories import with_policy_lines
from tests.factories import with_tags


class TestDefaults:
    def test_a_minimal_policy_gets_every_documented_default(self) -> None:
        policy = parse_one(MINIMAL_POLICY)
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
        assert policy.verify is None
        assert policy.snapshot.copy_tags == ()
        assert policy.snapshot.tags == {}
        assert policy.snapshot.exclude_boot_volume is False
        assert policy.description == ""

    def test_a_policy_remembers_its_file_as_given_and_the_line_of_its_name(self) -> None:
        policy = parse_one(MINIMAL_POLICY)
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

    def test_verify_timeout_defaults_to_30_minutes(self) -> None:
        policy = parse_one(with_policy_lines("verify: {every: 7d}"))
        assert policy.verify == Verify(Duration.parse("7d"), timedelta(minutes=30))

    def test_verify_timeout_reads_minutes_and_hours_within_1m_to_12h(self) -> None:
        for text, limit in (("1m", 1), ("45m", 45), ("90m", 90), ("2h", 120), ("12h", 720)):
            policy = parse_one(with_policy_lines(f"verify: {{every: 1d, timeout: {text}}}"))
            assert policy.verify == Verify(Duration.parse("1d"), timedelta(minutes=limit)), text

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
        assert policy.verify == Verify(Duration.parse("7d"), timedelta(minutes=30))


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
    verify:
      every: 7d
      timeout: 30m
"""
