"""The CloudFormation template: parsed, linted, and the same text for the same policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from smartvault.core import audit_table
from smartvault.core.model import CopyRule
from smartvault.core.model import Notify
from smartvault.core.model import PolicySet
from smartvault.core.model import Schedule
from smartvault.deploy import cloudformation_template
from smartvault.deploy import schedule_logical_ids
from smartvault.formats.policy import load_policies
from tests.factories import make_policy

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOPIC_A = "arn:aws:sns:us-east-1:123456789012:backup-alerts"
TOPIC_B = "arn:aws:sns:eu-west-1:123456789012:ops"


def example_policies() -> PolicySet:
    """A set covering every template branch: notify, copies, a disabled policy, time zones."""
    return PolicySet(
        (
            make_policy(
                "prod-nightly",
                description="Nightly crash-consistent snapshots of production",
                schedule=Schedule("cron(0 3 * * ? *)", "Europe/Berlin"),
                notify=Notify(TOPIC_A, on=("failure",)),
                copies=(CopyRule("us-west-2", kms_key_id="alias/backup"),),
            ),
            make_policy(
                "hourly-db",
                resource="volume",
                schedule=Schedule("rate(1 hour)"),
                notify=Notify(TOPIC_B, on=("always",)),
            ),
            make_policy("old-weekly", enabled=False, notify=Notify(TOPIC_A)),
        )
    )


def shipped_policies() -> PolicySet:
    """The example policies in policies/, when there are any; else the set above."""
    if not any((PROJECT_ROOT / "policies").glob("*.y*ml")):
        return example_policies()
    return load_policies([str(PROJECT_ROOT / "policies")])


def template_of(policies: PolicySet, **kwargs: Any) -> Any:
    text, _ = cloudformation_template(policies, **kwargs)
    return yaml.safe_load(text)


def statements(template: Any, role: str = "FunctionRole") -> Any:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    return policy["PolicyDocument"]["Statement"]


def by_sid(template: Any, sid: str) -> Any:
    (found,) = [s for s in statements(template) if s["Sid"] == sid]
    return found


def with_action(template: Any, action: str) -> list[Any]:
    """The statements that allow ``action`` (the one Deny, on hold tags, is tested alone)."""
    return [s for s in statements(template) if action in s["Action"] and s["Effect"] == "Allow"]


class TestTemplateShape:
    def test_template_is_plain_yaml_without_short_form_tags_or_anchors(self):
        text, _ = cloudformation_template(example_policies())
        assert "!Sub" not in text
        assert "!GetAtt" not in text
        assert "&id" not in text
        assert "Transform" not in yaml.safe_load(text)

    def test_same_policies_give_the_same_template_text(self):
        first, _ = cloudformation_template(example_policies(), regions=["us-east-1"])
        second, _ = cloudformation_template(example_policies(), regions=["us-east-1"])
        assert first == second

    def test_one_schedule_per_enabled_policy_with_its_expression_zone_and_input(self):
        template = template_of(example_policies())
        schedules = {
            rid: r["Properties"]
            for rid, r in template["Resources"].items()
            if r["Type"] == "AWS::Scheduler::Schedule" and rid.startswith("PolicySchedule")
        }
        assert set(schedules) == {"PolicyScheduleProdNightly", "PolicyScheduleHourlyDb"}
        nightly = schedules["PolicyScheduleProdNightly"]
        assert nightly["ScheduleExpression"] == "cron(0 3 * * ? *)"
        assert nightly["ScheduleExpressionTimezone"] == "Europe/Berlin"
        assert nightly["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert nightly["State"] == "ENABLED"
        assert json.loads(nightly["Target"]["Input"]) == {
            "policies": ["prod-nightly"],
            "dry_run": False,
        }
        assert nightly["Target"]["Arn"] == {"Fn::GetAtt": ["Function", "Arn"]}
        assert nightly["Target"]["DeadLetterConfig"] == {
            "Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
        }
        hourly = schedules["PolicyScheduleHourlyDb"]
        assert hourly["ScheduleExpression"] == "rate(1 hour)"
        assert hourly["ScheduleExpressionTimezone"] == "UTC"
        assert json.loads(hourly["Target"]["Input"])["policies"] == ["hourly-db"]

    def test_a_failed_run_goes_to_the_dead_letter_queue_without_a_retry(self):
        # The handler raises when an action failed (after its records and notifications):
        # Lambda's own retries would fail alike and notify again; the catch-up re-plans.
        resources = template_of(example_policies())["Resources"]
        config = resources["FunctionInvokeConfig"]
        assert config["Type"] == "AWS::Lambda::EventInvokeConfig"
        assert config["Properties"]["MaximumRetryAttempts"] == 0
        assert config["Properties"]["DestinationConfig"]["OnFailure"] == {
            "Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
        }
        statements = resources["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
            "Statement"
        ]
        sends = [st for st in statements if "sqs:SendMessage" in st["Action"]]
        assert sends == [
            {
                "Sid": "FailedRunsToOwnDeadLetterQueue",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
            }
        ]

    def test_disabled_policy_gets_no_schedule_and_is_listed_in_metadata(self):
        template = template_of(example_policies())
        inputs = [
            r["Properties"]["Target"]["Input"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Scheduler::Schedule"
        ]
        assert not any("old-weekly" in i for i in inputs)
        assert template["Metadata"]["SmartVault"]["DisabledPolicies"] == ["old-weekly"]

    def test_function_runs_the_handler_on_python_312_with_its_settings_from_parameters(self):
        function = template_of(example_policies())["Resources"]["Function"]["Properties"]
        assert function["Runtime"] == "python3.12"
        assert function["Handler"] == "lambda_entry.handler"
        assert function["Architectures"] == ["x86_64"]
        assert function["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
        env = function["Environment"]["Variables"]
        assert env["SMARTVAULT_AUDIT_TABLE"] == {"Ref": "AuditTableName"}
        assert env["SMARTVAULT_REGIONS"] == {"Ref": "AWS::Region"}  # no --region: its own
        assert env["SMARTVAULT_DEADLINE_MARGIN"] == {"Ref": "DeadlineMarginSeconds"}
        assert env["SMARTVAULT_LOG_LEVEL"] == {"Ref": "LogLevel"}
        assert function["LoggingConfig"]["LogGroup"] == {"Ref": "LogGroup"}
        # One run at a time unless the operator empties ReservedConcurrency.
        assert function["ReservedConcurrentExecutions"] == {
            "Fn::If": [
                "HasReservedConcurrency",
                {"Ref": "ReservedConcurrency"},
                {"Ref": "AWS::NoValue"},
            ]
        }

    def test_parameters_default_to_the_documented_values(self):
        params = template_of(example_policies())["Parameters"]
        assert params["AuditTableName"]["Default"] == "smartvault-audit"
        assert "Regions" not in params  # the function works in the stack's region
        assert params["AlarmEmail"]["Default"] == ""
        assert params["LogRetentionDays"]["Default"] == 365
        assert params["MemorySize"]["Default"] == 256
        assert params["Timeout"]["Default"] == 900
        assert params["DeadlineMarginSeconds"]["Default"] == 30
        assert params["LogLevel"]["Default"] == "INFO"

    def test_given_regions_become_the_regions_parameter_and_its_only_allowed_value(self):
        """The alarms are made per region: deploying other regions would leave them unwatched."""
        template = template_of(example_policies(), regions=["us-east-1", "eu-west-1"])
        params = template["Parameters"]
        assert params["Regions"]["Default"] == "us-east-1,eu-west-1"
        assert params["Regions"]["AllowedValues"] == ["us-east-1,eu-west-1"]
        env = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
        assert env["SMARTVAULT_REGIONS"] == {"Ref": "Regions"}

    def test_audit_table_has_the_fixed_design_and_is_never_deleted(self):
        table = template_of(example_policies())["Resources"]["AuditTable"]
        assert table["DeletionPolicy"] == "Retain"
        assert table["UpdateReplacePolicy"] == "Retain"
        props = table["Properties"]
        assert props["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        (index,) = props["GlobalSecondaryIndexes"]
        assert index == {
            "IndexName": "by-policy",
            "KeySchema": [
                {"AttributeName": "policy", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
            "pk": "S",
            "sk": "S",
            "policy": "S",
        }
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}

    def test_audit_table_is_the_one_defined_in_core_audit_table(self):
        """The template renders core/audit_table.py, the definition `audit init` uses too."""
        props = template_of(example_policies())["Resources"]["AuditTable"]["Properties"]

        def plain(value: Any) -> Any:  # tuples and read-only mappings as YAML reads them
            return json.loads(json.dumps(value))

        assert props["KeySchema"] == plain(audit_table.KEY_SCHEMA)
        assert props["AttributeDefinitions"] == plain(audit_table.ATTRIBUTE_DEFINITIONS)
        assert props["GlobalSecondaryIndexes"] == plain(audit_table.GLOBAL_SECONDARY_INDEXES)
        (index,) = props["GlobalSecondaryIndexes"]
        assert index["IndexName"] == audit_table.POLICY_INDEX
        assert index["KeySchema"] == plain(audit_table.POLICY_INDEX_KEY_SCHEMA)
        assert index["Projection"] == plain(audit_table.POLICY_INDEX_PROJECTION)
        assert props["BillingMode"] == audit_table.BILLING_MODE
        assert props["TimeToLiveSpecification"]["AttributeName"] == audit_table.TTL_ATTRIBUTE
        assert props["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": audit_table.POINT_IN_TIME_RECOVERY
        }
        assert props["SSESpecification"] == {"SSEEnabled": audit_table.SSE_ENABLED}

    def test_dead_letter_queue_is_encrypted(self):
        queue = template_of(example_policies())["Resources"]["DeadLetterQueue"]
        assert queue["Properties"]["SqsManagedSseEnabled"] is True

    def test_outputs_name_function_table_queue_and_log_group(self):
        outputs = template_of(example_policies())["Outputs"]
        assert set(outputs) == {
            "FunctionName",
            "FunctionArn",
            "AuditTableName",
            "DeadLetterQueueUrl",
            "LogGroupName",
            "AlarmTopicArn",
        }


class TestWarnings:
    def test_policy_whose_regions_lie_outside_the_deployment_is_a_warning(self):
        policies = PolicySet((make_policy("eu-only", regions=("eu-west-1", "eu-central-1")),))
        _, warnings = cloudformation_template(policies, regions=["us-east-1"])
        (warning,) = warnings
        assert "eu-only" in warning
        assert "eu-west-1, eu-central-1" in warning
        assert "us-east-1" in warning

    @pytest.mark.parametrize(
        ("policy_regions", "deploy_regions"),
        [(("us-east-1", "eu-west-1"), ["us-east-1"]), (("eu-west-1",), None), ((), ["us-east-1"])],
        ids=["overlapping", "deployment-regions-unknown", "policy-in-every-region"],
    )
    def test_policy_that_can_run_somewhere_is_no_warning(self, policy_regions, deploy_regions):
        policies = PolicySet((make_policy("p", regions=policy_regions),))
        _, warnings = cloudformation_template(policies, regions=deploy_regions)
        assert warnings == []

    def test_no_enabled_policy_is_a_warning(self):
        _, warnings = cloudformation_template(PolicySet((make_policy("p", enabled=False),)))
        assert any("no enabled policy" in w for w in warnings)


class TestLogicalIds:
    def test_schedule_ids_are_camel_case_alphanumeric(self):
        assert schedule_logical_ids(["prod-nightly", "db2"]) == {
            "prod-nightly": "PolicyScheduleProdNightly",
            "db2": "PolicyScheduleDb2",
        }

    def test_names_that_would_collide_get_distinct_stable_ids(self):
        names = ["x-y", "x--y", "xy", "a1-b", "a1b", "z-z"]
        ids = schedule_logical_ids(names)
        assert len({i.lower() for i in ids.values()}) == len(names)
        assert all(i.isalnum() for i in ids.values())
        assert ids == schedule_logical_ids(reversed(names))
        assert ids["xy"].startswith("PolicyScheduleXyX")  # "x-y" is "XY": a clash, suffixed
        assert ids["z-z"] == "PolicyScheduleZZ"  # no clash, no suffix
