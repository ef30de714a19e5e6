"""The CloudFormation template of the deployment: a scheduled Lambda function and its table.

Pure: ``cloudformation_template`` takes policies and gives template text and warnings,
with no AWS call and no boto3 loaded. Deterministic: the same policies give the same
text. The template is plain CloudFormation (no SAM transform), written in the long
intrinsic form (``Fn::Sub``, never ``!Sub``) so any YAML reader can load it, and deploys
with ``aws cloudformation deploy --capabilities CAPABILITY_NAMED_IAM`` alone. Its roles
are :mod:`smartvault.deploy.iam`'s; its audit table is
:mod:`smartvault.core.audit_table`'s, the same table ``smartvault audit init`` makes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import yaml

from smartvault.core import audit_table
from smartvault.core import schedules
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.deploy.alarms import DEFAULT_CATCH_UP
from smartvault.deploy.alarms import AlarmPlan
from smartvault.deploy.alarms import alarm_topic
from smartvault.deploy.alarms import camel_ids
from smartvault.deploy.alarms import catch_up_schedule
from smartvault.deploy.alarms import function_alarms
from smartvault.deploy.alarms import policy_alarms
from smartvault.deploy.alarms import region_conditions
from smartvault.deploy.alarms import schedule_period
from smartvault.deploy.alarms import topic_conditions
from smartvault.deploy.iam import function_role
from smartvault.deploy.iam import scheduler_role
from smartvault.errors import ConfigError
from smartvault.settings import DEFAULT_AUDIT_TABLE

Json = dict[str, Any]

#: The runtime the template asks for, and so the interpreter the vendored wheels target.
LAMBDA_RUNTIME = "python3.12"
LAMBDA_PYTHON_VERSION = "3.12"
#: x86_64, because rpds-py (under jsonschema) is compiled: the wheel must match.
LAMBDA_ARCHITECTURE = "x86_64"
LAMBDA_PIP_PLATFORM = "manylinux2014_x86_64"
HANDLER = "lambda_entry.handler"

#: CloudFormation's limit on resources in one template.
MAX_RESOURCES = 500

#: Values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


# --- the template -------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    """What a variant of the template (the fleet's hub) adds to or changes in it.

    The single-account template is the template without an extension; the hub is the same
    function, role, table, queue and alarms with these changes, so both are built by the
    same code. A variant has no per-policy or catch-up schedule (nor the role that starts
    them): ``alarm_interval`` stands for them in the alarms (the expression the function
    is run at, or None). ``table_region`` is the audit table's region as a CloudFormation
    value (None: the stack's own), ``table_condition`` replaces the table's creation
    condition; ``parameters`` may replace the template's own.
    """

    description: str
    metadata: Json
    alarm_interval: str | None
    parameters: Json = field(default_factory=dict)
    conditions: Json = field(default_factory=dict)
    resources: Json = field(default_factory=dict)
    outputs: Json = field(default_factory=dict)
    environment: Json = field(default_factory=dict)
    role_statements: tuple[Json, ...] = ()
    table_region: Any = None
    table_condition: Json | None = None


def cloudformation_template(
    policies: PolicySet,
    *,
    regions: Sequence[str] | None = None,
    catch_up: str | None = DEFAULT_CATCH_UP,
) -> tuple[str, list[str]]:
    """The CloudFormation template (YAML text) for the scheduled Lambda, and warnings.

    One EventBridge Scheduler schedule per enabled policy; disabled policies get none
    (their snapshots are kept). ``regions`` are the regions the function will work in:
    they become the ``Regions`` parameter (its default and only allowed value, since the
    alarms are made per region), and a policy whose ``regions`` lie wholly outside them is
    a warning; without them, the function works in the stack's own region. ``catch_up``
    is the catch-up schedule's expression (None: no catch-up schedule). The alarms are
    :mod:`smartvault.deploy.alarms`'. Deterministic: the same input gives the same text.

    Raises :class:`~smartvault.errors.ConfigError` for a catch-up expression that is not
    a schedule, and when the template would exceed CloudFormation's 500 resources.
    """
    template, warnings = build_template(policies, regions=regions, catch_up=catch_up)
    return template_text(template), warnings


def build_template(
    policies: PolicySet,
    *,
    regions: Sequence[str] | None = None,
    catch_up: str | None = DEFAULT_CATCH_UP,
    extension: Extension | None = None,
) -> tuple[Json, list[str]]:
    """The template as a dict, and warnings: :func:`cloudformation_template`'s, or with
    ``extension`` a variant of it (then ``regions`` only serve the warnings: the function
    works in the stack's own region, and ``catch_up`` is ignored)."""
    deploy_regions = tuple(dict.fromkeys(regions)) if regions else ()
    if extension is not None:
        catch_up = extension.alarm_interval
    elif catch_up is not None:
        check_catch_up(catch_up)
    warnings = _warnings(policies, deploy_regions)
    function_regions = deploy_regions if extension is None else ()
    enabled = [p for p in policies.policies if p.enabled]
    schedule_ids = schedule_logical_ids([p.name for p in enabled])
    plan = AlarmPlan(policies.policies, function_regions, catch_up)
    per_policy, alarm_warnings = policy_alarms(plan)
    per_function, function_warnings = function_alarms(plan)
    warnings += alarm_warnings + function_warnings

    resources: Json = {
        "LogGroup": _log_group(),
        "FunctionRole": function_role(
            policies,
            extra_statements=extension.role_statements if extension else (),
            table_region=extension.table_region if extension else None,
        ),
        "Function": _function(
            has_regions=bool(function_regions),
            environment=extension.environment if extension else {},
        ),
        "FunctionInvokeConfig": _invoke_config(),
        "AuditTable": _audit_table(),
        "DeadLetterQueue": _dead_letter_queue(),
    }
    if extension is None:
        resources["SchedulerRole"] = scheduler_role()
        for policy in enabled:
            resources[schedule_ids[policy.name]] = _schedule(policy)
        if catch_up is not None:
            resources["CatchUpSchedule"] = catch_up_schedule(catch_up)
    resources.update(alarm_topic())
    resources.update(per_function)
    resources.update(per_policy)
    if extension is not None:
        resources.update(extension.resources)
    if len(resources) > MAX_RESOURCES:
        raise ConfigError(
            f"the template would hold {len(resources)} resources ({len(per_policy)} of "
            f"them alarms: about 3 per enabled policy and region), more than the "
            f"{MAX_RESOURCES} CloudFormation allows in one stack; deploy the policies in "
            "several stacks (`deploy template` and `deploy package` for each set of files) "
            "or give policies `regions`"
        )

    disabled = [p.name for p in policies.policies if not p.enabled]
    if extension is None:
        description = (
            "SmartVault: declarative EBS backups. A Lambda function run by EventBridge "
            "Scheduler, one schedule per enabled policy and a catch-up schedule, audited in "
            "DynamoDB, watched by CloudWatch alarms."
        )
        metadata: Json = {
            "ScheduledPolicies": [p.name for p in enabled],
            # Disabled policies neither create nor delete: they get no schedule.
            "DisabledPolicies": disabled,
            "CatchUpSchedule": catch_up if catch_up is not None else "off",
        }
    else:
        description = extension.description
        metadata = {"DisabledPolicies": disabled, **extension.metadata}
    parameters = _parameters(function_regions)
    if extension is not None:
        parameters.update(extension.parameters)
    conditions: Json = {
        "ShouldCreateAuditTable": {"Fn::Equals": [{"Ref": "CreateAuditTable"}, "true"]},
        "HasReservedConcurrency": {
            "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, ""]}]
        },
        "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
        **topic_conditions(enabled),
        **region_conditions(plan),
    }
    if extension is not None:
        if extension.table_condition is not None:
            conditions["ShouldCreateAuditTable"] = extension.table_condition
        conditions.update(extension.conditions)
    template: Json = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": description,
        "Metadata": {"SmartVault": metadata},
        "Parameters": parameters,
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": {**_outputs(), **(extension.outputs if extension else {})},
    }
    return template, warnings


def template_text(template: Json) -> str:
    """A template as YAML: long intrinsic forms only, no anchors, in the order built."""
    return yaml.dump(
        template, Dumper=_TemplateDumper, sort_keys=False, default_flow_style=False, width=120
    )


class _TemplateDumper(yaml.SafeDumper):
    """SafeDumper that writes shared values out in full: no ``&id001`` anchors in a template."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def schedule_logical_ids(names: Iterable[str]) -> dict[str, str]:
    """Policy name -> CloudFormation logical id of its schedule: ``PolicySchedule<CamelCase>``.

    Unique and stable (see :func:`smartvault.deploy.alarms.camel_ids`).
    """
    return camel_ids("PolicySchedule", names)


def check_catch_up(expression: str) -> None:
    """Refuse a catch-up expression the schedule parser (EventBridge's syntax) refuses."""
    try:
        period = schedule_period(expression)
    except schedules.ScheduleError as exc:
        raise ConfigError(f"catch-up schedule {expression!r}: {exc}") from None
    if period is None:
        raise ConfigError(
            f"catch-up schedule {expression!r} fires at most once; give a repeating "
            "schedule such as rate(1 hour), or turn the catch-up schedule off"
        )


def _warnings(policies: PolicySet, deploy_regions: tuple[str, ...]) -> list[str]:
    warnings: list[str] = []
    if not any(p.enabled for p in policies.policies):
        warnings.append(
            "no enabled policy: the template has no schedule, so the function never runs on "
            "its own; enable a policy or invoke the function by hand"
        )
    if not deploy_regions:
        return warnings
    for policy in policies.policies:
        if policy.enabled and policy.regions and set(policy.regions).isdisjoint(deploy_regions):
            warnings.append(
                f"policy {policy.name} ({policy.file}) only works in "
                f"{', '.join(policy.regions)}, none of which the function works in "
                f"({', '.join(deploy_regions)}): it will never back anything up; add a region "
                "to the deployment's Regions or change the policy's regions"
            )
    return warnings


def _parameters(deploy_regions: tuple[str, ...]) -> Json:
    parameters = {
        "CodeBucket": {
            "Type": "String",
            "Description": "S3 bucket holding the deployment zip (same region as the stack).",
            "MinLength": 3,
        },
        "CodeKey": {
            "Type": "String",
            "Description": "S3 key of the zip from `smartvault deploy package`; a new key per "
            "build (for example with its sha256 in the name) makes CloudFormation update the code.",
            "MinLength": 1,
        },
        "AuditTableName": {
            "Type": "String",
            "Default": DEFAULT_AUDIT_TABLE,
            "AllowedPattern": "^[a-zA-Z0-9_.-]{3,255}$",
            "Description": "DynamoDB table holding the audit log.",
        },
        "CreateAuditTable": {
            "Type": "String",
            "Default": "true",
            "AllowedValues": ["true", "false"],
            "Description": "false when the table already exists (made by `smartvault audit "
            "init`): the stack then only grants access to it.",
        },
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^([^@\\s]+@[^@\\s]+)?$",
            "Description": "An email address to subscribe to the AlarmTopic (it must confirm "
            "the subscription); empty for none.",
        },
        "LogRetentionDays": {
            "Type": "Number",
            "Default": 365,
            "AllowedValues": list(LOG_RETENTION_DAYS),
            "Description": "Days to keep the function's logs.",
        },
        "MemorySize": {
            "Type": "Number",
            "Default": 256,
            "MinValue": 128,
            "MaxValue": 10240,
            "Description": "Function memory in MB (CPU grows with it).",
        },
        "Timeout": {
            "Type": "Number",
            "Default": 900,
            "MinValue": 60,
            "MaxValue": 900,
            "Description": "Function timeout in seconds; a run stops starting actions "
            "DeadlineMarginSeconds before it and the next run finishes the work.",
        },
        "DeadlineMarginSeconds": {
            "Type": "Number",
            "Default": 30,
            "MinValue": 5,
            "MaxValue": 600,
            "Description": "Start no new action when less than this many seconds remain.",
        },
        "LogLevel": {
            "Type": "String",
            "Default": "INFO",
            "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR"],
            "Description": "Level of the function's JSON log lines.",
        },
        "ReservedConcurrency": {
            "Type": "String",
            "Default": "1",
            "AllowedPattern": "^([1-9][0-9]*)?$",
            "Description": "Runs allowed at once (default 1); empty for no reservation, "
            "needed on accounts whose concurrency limit is 10.",
        },
    }
    if deploy_regions:
        parameters["Regions"] = {
            "Type": "String",
            "Default": ",".join(deploy_regions),
            # The alarms are made per region when the template is generated: another
            # value here would leave regions unwatched, so it is refused at deployment.
            "AllowedValues": [",".join(deploy_regions)],
            "Description": "The regions to back up, comma-separated. Fixed by `smartvault "
            "--region ... deploy template`, because the alarms are made per region: "
            "regenerate the template to change them.",
        }
    return parameters


def _log_group() -> Json:
    return {
        "Type": "AWS::Logs::LogGroup",
        # Deleted with the stack (unlike the audit table, which is the lasting record), so
        # that a stack of the same name can be deployed again.
        "Properties": {
            "LogGroupName": {"Fn::Sub": "/smartvault/${AWS::StackName}"},
            "RetentionInDays": {"Ref": "LogRetentionDays"},
        },
    }


def _function(*, has_regions: bool, environment: Json) -> Json:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Description": "SmartVault: plan and apply the EBS backup policies packaged with it.",
            "Runtime": LAMBDA_RUNTIME,
            "Architectures": [LAMBDA_ARCHITECTURE],
            "Handler": HANDLER,
            "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "MemorySize": {"Ref": "MemorySize"},
            "Timeout": {"Ref": "Timeout"},
            # One run at a time by default. Overlapping runs would be safe (recovery-point
            # claims stop double creation), but they would share EC2's per-account request
            # buckets and slow each other down; a schedule firing meanwhile waits in
            # Lambda's asynchronous queue instead.
            "ReservedConcurrentExecutions": {
                "Fn::If": [
                    "HasReservedConcurrency",
                    {"Ref": "ReservedConcurrency"},
                    {"Ref": "AWS::NoValue"},
                ]
            },
            "Environment": {
                "Variables": {
                    "SMARTVAULT_AUDIT_TABLE": {"Ref": "AuditTableName"},
                    # The regions given to `deploy template`, else the stack's own.
                    "SMARTVAULT_REGIONS": {"Ref": "Regions" if has_regions else "AWS::Region"},
                    "SMARTVAULT_LOG_LEVEL": {"Ref": "LogLevel"},
                    "SMARTVAULT_DEADLINE_MARGIN": {"Ref": "DeadlineMarginSeconds"},
                    **environment,
                }
            },
            # Text: the handler already writes one JSON object per line, which Logs
            # Insights parses as it is.
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": {"Ref": "LogGroup"}},
        },
    }


def _invoke_config() -> Json:
    """What Lambda does with a run that raised (any action failed: it is audited and
    notified first). No retry of its own: an immediate retry would fail the same way and
    notify again, and the catch-up schedule (or the next slot) re-plans from the account
    anyway. The failed invocation goes to this stack's dead-letter queue, where the
    DLQ alarm sees it."""
    return {
        "Type": "AWS::Lambda::EventInvokeConfig",
        "Properties": {
            "FunctionName": {"Ref": "Function"},
            "Qualifier": "$LATEST",
            "MaximumRetryAttempts": 0,
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
            },
        },
    }


def _audit_table() -> Json:
    # The audit log's fixed design: items by run and time under pk/sk, the
    # by-policy index for `audit list --policy` without a scan, TTL for expired claims.
    # Written once, in core/audit_table.py, which `audit init` creates the table from too.
    return {
        "Type": "AWS::DynamoDB::Table",
        "Condition": "ShouldCreateAuditTable",
        # Never lose the audit log: deleting or replacing the stack leaves the table.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "TableName": {"Ref": "AuditTableName"},
            "BillingMode": audit_table.BILLING_MODE,
            "AttributeDefinitions": audit_table.ATTRIBUTE_DEFINITIONS,
            "KeySchema": audit_table.KEY_SCHEMA,
            "GlobalSecondaryIndexes": audit_table.GLOBAL_SECONDARY_INDEXES,
            "TimeToLiveSpecification": {
                "AttributeName": audit_table.TTL_ATTRIBUTE,
                "Enabled": True,
            },
            "PointInTimeRecoverySpecification": {
                "PointInTimeRecoveryEnabled": audit_table.POINT_IN_TIME_RECOVERY
            },
            "SSESpecification": {"SSEEnabled": audit_table.SSE_ENABLED},
            "DeletionProtectionEnabled": True,
        },
    }


def _dead_letter_queue() -> Json:
    # Where Scheduler puts invocations it could not deliver after its retries.
    return {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": 1209600,  # 14 days, the most SQS keeps
        },
    }


def _schedule(policy: Policy) -> Json:
    description = f"SmartVault policy {policy.name}"
    if policy.description:
        description += f": {policy.description}"
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "Description": description[:512],
            "ScheduleExpression": policy.schedule.expression,
            "ScheduleExpressionTimezone": policy.schedule.timezone,
            # Exactly at the slot: the slot is what due-ness is measured against.
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": {"Fn::GetAtt": ["Function", "Arn"]},
                "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                "Input": json.dumps({"policies": [policy.name], "dry_run": False}),
                # Retries only cover delivery (throttling, a function being updated); a
                # late run is still useful, since it backs up the slot it finds.
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}},
            },
        },
    }


def _outputs() -> Json:
    return {
        "FunctionName": {
            "Description": "Run it by hand with `aws lambda invoke --function-name ...`.",
            "Value": {"Ref": "Function"},
        },
        "FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}},
        "AuditTableName": {
            "Description": "Read it with `smartvault --audit-table ... audit list`.",
            "Value": {"Ref": "AuditTableName"},
        },
        "DeadLetterQueueUrl": {
            "Description": "Schedules that could not start the function land here.",
            "Value": {"Ref": "DeadLetterQueue"},
        },
        "LogGroupName": {"Value": {"Ref": "LogGroup"}},
        "AlarmTopicArn": {
            "Description": "Alarms of policies without a notify topic, and the function's "
            "own; subscribe with `aws sns subscribe --topic-arn ...`.",
            "Value": {"Ref": "AlarmTopic"},
        },
    }
