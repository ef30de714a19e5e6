"""The template's alarms and its catch-up schedule: DESIGN §6 (catch-up) and §8 (alarms)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs
from cfnlint.api import lint

from smartvault.core.model import CopyRule
from smartvault.core.model import Duration
from smartvault.core.model import Notify
from smartvault.core.model import PolicySet
from smartvault.core.model import Schedule
from smartvault.core.model import Verify
from smartvault.core.schedules import ScheduleError
from smartvault.deploy import cloudformation_template
from smartvault.deploy import schedule_period
from smartvault.errors import ConfigError
from smartvault.lambda_app import LambdaRequest
from tests.deploy.test_template import shipped_policies
from tests.factories import make_policy

TOPIC = "arn:aws:sns:us-east-1:123456789012:backup-alerts"
EU_TOPIC = "arn:aws:sns:eu-west-1:123456789012:ops"
#: DESIGN §8, word for word.
METRICS = {
    "RecoveryPointsCreated",
    "RecoveryPointsDeleted",
    "ActionsFailed",
    "ActionsNotStarted",
    "DeletesHeld",
    "NewestRecoveryPointAgeSeconds",
    "VerificationsFailed",
}


def full_policies() -> PolicySet:
    """Copies, notify and verify on a cron policy; a rate policy without a topic."""
    return PolicySet(
        (
            make_policy(
                "prod-nightly",
                schedule=Schedule("cron(0 3 * * ? *)", "Europe/Berlin"),
                notify=Notify(TOPIC, on=("failure",)),
                copies=(CopyRule("us-west-2", kms_key_id="alias/backup"),),
                verify=Verify(every=Duration("7d", 7 * 86400)),
            ),
            make_policy("hourly-db", resource="volume", schedule=Schedule("rate(1 hour)")),
            make_policy("eu-only", regions=("eu-west-1",), notify=Notify(EU_TOPIC)),
            make_policy("retired", enabled=False, notify=Notify(TOPIC)),
        )
    )


def resources(policies: PolicySet, **kwargs: Any) -> dict[str, Any]:
    text, _ = cloudformation_template(policies, **kwargs)
    return yaml.safe_load(text)["Resources"]


def alarms(policies: PolicySet, **kwargs: Any) -> dict[str, Any]:
    return {
        rid: r
        for rid, r in resources(policies, **kwargs).items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def smartvault_alarms(policies: PolicySet, **kwargs: Any) -> list[dict[str, Any]]:
    found = alarms(policies, **kwargs).values()
    return [a["Properties"] for a in found if a["Properties"]["Namespace"] == "SmartVault"]


def dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def watched(policies: PolicySet, **kwargs: Any) -> set[tuple[str, str, Any]]:
    """(metric, policy, region) of every SmartVault alarm."""
    found = set()
    for alarm in smartvault_alarms(policies, **kwargs):
        dims = dimensions(alarm)
        region = dims["Region"] if isinstance(dims["Region"], str) else json.dumps(dims["Region"])
        found.add((alarm["MetricName"], dims["Policy"], region))
    return found


def one(policies: PolicySet, metric: str, policy: str, region: str, **kwargs: Any) -> Any:
    (alarm,) = [
        a
        for a in smartvault_alarms(policies, **kwargs)
        if a["MetricName"] == metric and dimensions(a) == {"Policy": policy, "Region": region}
    ]
    return alarm


REGIONS = ["us-east-1", "eu-west-1"]


class TestSchedulePeriod:
    @pytest.mark.parametrize(
        ("expression", "timezone", "period"),
        [
            ("rate(1 hour)", "UTC", timedelta(hours=1)),
            ("rate(7 days)", "Europe/Berlin", timedelta(days=7)),
            ("cron(0 3 * * ? *)", "UTC", timedelta(days=1)),
            # Weekdays only: the weekend is the longest gap.
            ("cron(0 3 ? * MON-FRI *)", "UTC", timedelta(days=3)),
            # 02:30 does not exist on the day clocks go forward in Berlin: a skipped firing.
            ("cron(30 2 * * ? *)", "Europe/Berlin", timedelta(hours=47)),
            # The night clocks go back in Berlin is 25 hours long.
            ("cron(0 3 * * ? *)", "Europe/Berlin", timedelta(hours=25)),
            # The last day of the month: 31 days is the longest month.
            ("cron(0 3 L * ? *)", "UTC", timedelta(days=31)),
            # Yearly: the gap to the first firing after the window counts.
            ("cron(0 3 1 1 ? *)", "UTC", timedelta(days=365)),
        ],
        ids=[
            "rate",
            "rate-zone",
            "daily",
            "weekdays",
            "dst-skip",
            "dst-back",
            "month-end",
            "yearly",
        ],
    )
    def test_period_is_the_longest_gap_between_firings(self, expression, timezone, period):
        assert schedule_period(expression, timezone) == period

    def test_a_schedule_that_fires_once_has_no_period(self):
        assert schedule_period("cron(0 3 1 1 ? 2030)") is None

    def test_an_invalid_expression_is_the_parsers_error(self):
        with pytest.raises(ScheduleError, match="6 fields"):
            schedule_period("cron(0 3 * *)")


class TestAlarmsMatchTheMetrics:
    def test_every_alarm_names_a_metric_of_design_section_8_with_its_two_dimensions(self):
        found = smartvault_alarms(full_policies(), regions=REGIONS)
        assert found
        for alarm in found:
            assert alarm["MetricName"] in METRICS
            assert [d["Name"] for d in alarm["Dimensions"]] == ["Policy", "Region"]

    def test_each_enabled_policy_is_watched_in_each_region_it_works_in(self):
        found = watched(full_policies(), regions=REGIONS)
        per_policy = {
            "prod-nightly": {
                "ActionsFailed",
                "DeletesHeld",
                "VerificationsFailed",
                "NewestRecoveryPointAgeSeconds",
            },
            "hourly-db": {"ActionsFailed", "DeletesHeld", "NewestRecoveryPointAgeSeconds"},
            "eu-only": {"ActionsFailed", "DeletesHeld", "NewestRecoveryPointAgeSeconds"},
        }
        expected = {
            (metric, policy, region)
            for policy, metrics in per_policy.items()
            for metric in metrics
            for region in REGIONS
            if policy != "eu-only" or region == "eu-west-1"
        }
        assert found == expected  # no alarm for the disabled policy, none outside regions

    def test_without_regions_the_stack_region_is_watched_and_policy_regions_are_a_condition(
        self,
    ):
        text, _ = cloudformation_template(full_policies())
        template = yaml.safe_load(text)
        found = {
            rid: r
            for rid, r in template["Resources"].items()
            if r["Type"] == "AWS::CloudWatch::Alarm" and "EuOnly" in rid
        }
        assert found
        for alarm in found.values():
            assert dimensions(alarm["Properties"])["Region"] == {"Ref": "AWS::Region"}
            assert alarm["Condition"] == "StackInRegionsOfEuOnly"
        assert template["Conditions"]["StackInRegionsOfEuOnly"] == {
            "Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]
        }


class TestRpoAlarm:
    @pytest.mark.parametrize(
        ("policy", "period"),
        [("prod-nightly", 25 * 3600), ("hourly-db", 3600)],
        ids=["cron", "rate"],
    )
    def test_fires_above_two_schedule_periods_and_when_no_metric_comes(self, policy, period):
        alarm = one(
            full_policies(), "NewestRecoveryPointAgeSeconds", policy, "us-east-1", regions=REGIONS
        )
        assert alarm["Threshold"] == 2 * period
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Statistic"] == "Maximum"
        assert alarm["TreatMissingData"] == "breaching"
        # One window of two periods: a datapoint over the threshold fires at once, and a
        # window without any (the function no longer runs) fires too.
        assert alarm["Period"] == 2 * period
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["DatapointsToAlarm"] == 1

    def test_a_window_longer_than_cloudwatch_allows_is_cut_to_seven_days(self):
        weekly = PolicySet((make_policy("weekly", schedule=Schedule("rate(7 days)")),))
        alarm = one(
            weekly, "NewestRecoveryPointAgeSeconds", "weekly", "us-east-1", regions=["us-east-1"]
        )
        assert alarm["Threshold"] == 14 * 86400
        assert alarm["Period"] == 7 * 86400

    def test_a_long_period_without_catch_up_is_a_warning_with_the_catch_up_it_needs(self):
        weekly = PolicySet((make_policy("weekly", schedule=Schedule("rate(7 days)")),))
        _, with_catch_up = cloudformation_template(weekly)
        _, without = cloudformation_template(weekly, catch_up=None)
        assert with_catch_up == []
        (warning,) = without
        assert "weekly" in warning
        assert "keep the catch-up schedule on" in warning

    def test_a_schedule_more_frequent_than_a_run_lasts_is_a_warning(self):
        """Runs may last 15 minutes: a 20-minute window may pass without a metric."""
        frequent = PolicySet((make_policy("frequent", schedule=Schedule("rate(10 minutes)")),))
        _, warnings = cloudformation_template(frequent)
        (warning,) = warnings
        assert "frequent" in warning
        assert "20m its RPO alarm waits for data" in warning

    def test_rpo_alarm_reports_recovery_too(self):
        alarm = one(
            full_policies(),
            "NewestRecoveryPointAgeSeconds",
            "hourly-db",
            "us-east-1",
            regions=REGIONS,
        )
        assert alarm["OKActions"] == alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


class TestFailureAlarms:
    @pytest.mark.parametrize("metric", ["ActionsFailed", "DeletesHeld", "VerificationsFailed"])
    def test_any_count_above_zero_fires_and_no_run_is_not_a_failure(self, metric):
        alarm = one(full_policies(), metric, "prod-nightly", "eu-west-1", regions=REGIONS)
        assert alarm["Statistic"] == "Sum"
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        # A failure that repeats at every hourly catch-up keeps the alarm in ALARM instead
        # of paging every hour: the window is one catch-up interval and one run.
        assert alarm["Period"] == 3600 + 900

    def test_without_catch_up_a_failure_alarm_looks_back_an_hour(self):
        alarm = one(
            full_policies(),
            "ActionsFailed",
            "hourly-db",
            "us-east-1",
            catch_up=None,
            regions=REGIONS,
        )
        assert alarm["Period"] == 3600

    def test_descriptions_say_what_to_check_first(self):
        for alarm in smartvault_alarms(full_policies(), regions=REGIONS):
            assert "First check:" in alarm["AlarmDescription"]
            assert len(alarm["AlarmDescription"]) <= 1024


class TestAlarmActions:
    def test_a_policy_topic_is_notified_when_the_stack_shares_its_region_else_ours(self):
        """CloudWatch cannot notify a topic in another region than the alarm's."""
        text, _ = cloudformation_template(full_policies(), regions=REGIONS)
        template = yaml.safe_load(text)
        alarm = one(full_policies(), "ActionsFailed", "prod-nightly", "eu-west-1", regions=REGIONS)
        assert alarm["AlarmActions"] == [
            {"Fn::If": ["StackInUsEast1", TOPIC, {"Ref": "AlarmTopic"}]}
        ]
        assert template["Conditions"]["StackInUsEast1"] == {
            "Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]
        }

    def test_a_policy_without_a_topic_notifies_the_topic_the_template_creates(self):
        alarm = one(full_policies(), "DeletesHeld", "hourly-db", "us-east-1", regions=REGIONS)
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        found = resources(full_policies())
        assert found["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
        subscription = found["AlarmEmailSubscription"]
        assert subscription["Condition"] == "HasAlarmEmail"
        assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}

    def test_the_functions_alarms_notify_our_topic_and_every_policy_topic(self):
        found = alarms(full_policies())
        for rid in ("FunctionErrorsAlarm", "DeadLetterQueueAlarm"):
            assert found[rid]["Properties"]["AlarmActions"] == [
                {"Ref": "AlarmTopic"},
                {"Fn::If": ["StackInEuWest1", EU_TOPIC, {"Ref": "AWS::NoValue"}]},
                {"Fn::If": ["StackInUsEast1", TOPIC, {"Ref": "AWS::NoValue"}]},
            ]

    def test_more_topics_than_an_alarm_takes_leave_only_ours_with_a_warning(self):
        policies = PolicySet(
            tuple(
                make_policy(f"p{i}", notify=Notify(f"arn:aws:sns:us-east-1:123456789012:t{i}"))
                for i in range(5)
            )
        )
        text, warnings = cloudformation_template(policies)
        found = yaml.safe_load(text)["Resources"]
        assert found["FunctionErrorsAlarm"]["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert any("more than 4 SNS topics" in w for w in warnings)


class TestFunctionAlarms:
    def test_function_errors_and_dead_letter_queue_depth_are_watched(self):
        found = alarms(full_policies())
        errors = found["FunctionErrorsAlarm"]["Properties"]
        assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "Function"}}]
        assert errors["Threshold"] == 0
        queue = found["DeadLetterQueueAlarm"]["Properties"]
        assert queue["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert queue["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
        ]


class TestCatchUpSchedule:
    def test_one_catch_up_schedule_runs_every_policy_each_hour_by_default(self):
        schedule = resources(full_policies(), regions=REGIONS)["CatchUpSchedule"]["Properties"]
        assert schedule["ScheduleExpression"] == "rate(1 hour)"
        assert schedule["ScheduleExpressionTimezone"] == "UTC"
        assert schedule["State"] == "ENABLED"
        assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["Function", "Arn"]}
        event = json.loads(schedule["Target"]["Input"])
        # What the handler reads it as: every policy, applied for real.
        assert LambdaRequest.from_event(event) == LambdaRequest(policies=(), dry_run=False)

    def test_the_catch_up_expression_is_configurable_and_can_be_turned_off(self):
        found = resources(full_policies(), catch_up="cron(15 * * * ? *)")
        assert found["CatchUpSchedule"]["Properties"]["ScheduleExpression"] == "cron(15 * * * ? *)"
        assert "CatchUpSchedule" not in resources(full_policies(), catch_up=None)

    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("rate(0 hours)", "value must be at least 1"),
            ("every hour", "is not a schedule expression"),
            ("cron(0 3 1 1 ? 2030)", "fires at most once"),
        ],
        ids=["zero-rate", "prose", "once"],
    )
    def test_an_invalid_catch_up_expression_is_refused_with_the_reason(self, expression, message):
        with pytest.raises(ConfigError, match=message) as caught:
            cloudformation_template(full_policies(), catch_up=expression)
        assert expression in str(caught.value)


class TestLimits:
    def test_more_resources_than_cloudformation_allows_is_an_error_that_says_what_to_do(self):
        policies = PolicySet(tuple(make_policy(f"p{i}") for i in range(60)))
        with pytest.raises(ConfigError, match="more than the 500 CloudFormation allows"):
            cloudformation_template(policies, regions=["us-east-1", "eu-west-1", "us-west-2"])


@pytest.mark.parametrize(
    ("policies", "kwargs"),
    [
        (shipped_policies(), {"regions": REGIONS, "catch_up": None}),
        (full_policies(), {"regions": REGIONS}),
        (full_policies(), {}),
    ],
    ids=["shipped-no-catch-up", "copies-notify-verify", "stack-region"],
)
def test_the_template_with_its_alarms_passes_cfn_lint(policies, kwargs):
    """Errors and warnings fail; informational notes do not (none are expected either).

    No rule is ignored. About 2 s per template (cfn-lint validates every resource against
    its schema), so three templates cover the branches: the shipped policies, a set with
    copies, notify (two topic regions), verify and a regional policy, and that set without
    regions (the alarms' region conditions).
    """
    text, _ = cloudformation_template(policies, **kwargs)
    matches = lint(text, config=ManualArgs(regions=["us-east-1"]))
    serious = [m for m in matches if m.rule.severity in ("error", "warning")]
    assert serious == [], [f"{m.rule.id} {m.message}" for m in serious]
