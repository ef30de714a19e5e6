"""The Lambda deployment: a CloudFormation template and the zip it runs.

``cloudformation_template`` is pure: policies in, template text and warnings out,
no AWS call. The template is plain
CloudFormation (no SAM transform), written in the long intrinsic form
(``Fn::Sub``, never ``!Sub``) so any YAML reader can load it, and deploys with
``aws cloudformation deploy --capabilities CAPABILITY_NAMED_IAM`` alone.

``build_package`` writes the zip the function runs: the ``smartvault`` package,
``lambda_entry.py``, the policies under ``policies/`` and the few third-party
libraries the Lambda Python runtime lacks, byte-for-byte reproducible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from smartvault.core import audit_table
from smartvault.core.audit_table import CLAIM_PARTITION_PREFIX
from smartvault.core.audit_table import RECORD_PARTITION_PREFIX
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_POLICY
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

#: What the handler imports that the Lambda runtime does not ship. boto3 and botocore
#: are in the runtime; click is only for the CLI and the handler never imports it.
#: Their dependencies (attrs, referencing, rpds-py, jsonschema-specifications,
#: typing-extensions) come along through pip's resolver.
RUNTIME_DISTRIBUTIONS = ("PyYAML", "jsonschema", "tzdata")
#: Floors from pyproject.toml, used only when a distribution is not installed here.
_RUNTIME_FLOORS = {"PyYAML": ">=6.0", "jsonschema": ">=4.18", "tzdata": ">=2024.1"}
#: jsonschema's dependencies: constrained to the versions installed here, when they are,
#: so the package holds what the tests ran against rather than whatever is newest.
_RUNTIME_DEPENDENCIES = (
    "attrs",
    "jsonschema-specifications",
    "referencing",
    "rpds-py",
    "typing_extensions",
)

#: Values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_SNAPSHOT_ARN = {"Fn::Sub": "arn:${AWS::Partition}:ec2:*::snapshot/*"}
#: A snapshot being made: its ARN ends in a literal "*", which IAM writes "${*}" (and
#: Fn::Sub "${!*}"). It matches no existing snapshot.
_NEW_SNAPSHOT_ARN = {"Fn::Sub": "arn:${AWS::Partition}:ec2:*::snapshot/${!*}"}
#: An existing snapshot, such as the source of a copy; never one being made.
_EXISTING_SNAPSHOT_ARN = {"Fn::Sub": "arn:${AWS::Partition}:ec2:*::snapshot/snap-*"}
_INSTANCE_ARN = {"Fn::Sub": "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*"}
_VOLUME_ARN = {"Fn::Sub": "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:volume/*"}
_TABLE_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}"
    ":table/${AuditTableName}"
}
_TABLE_INDEX_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}"
    ":table/${AuditTableName}/index/*"
}
#: The conditions that confine SmartVault to its own snapshots.
_TAGGED_AT_CREATION = {"StringEquals": {f"aws:RequestTag/{TAG_CREATED_BY}": CREATED_BY_VALUE}}
_MANAGED_SNAPSHOT = {
    "StringEquals": {f"aws:ResourceTag/{TAG_CREATED_BY}": CREATED_BY_VALUE},
    "Null": {f"aws:ResourceTag/{TAG_POLICY}": "false"},
}
#: Audit table partitions: claims may be deleted (released), records never.
_CLAIMS = f"{CLAIM_PARTITION_PREFIX}*"
_RECORDS = f"{RECORD_PARTITION_PREFIX}*"
_CLAIM_KEYS = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [_CLAIMS]}}
_CLAIM_AND_RECORD_KEYS = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [_CLAIMS, _RECORDS]}}


# --- the template -------------------------------------------------------------


def cloudformation_template(
    policies: PolicySet, *, regions: Sequence[str] | None = None
) -> tuple[str, list[str]]:
    """The CloudFormation template (YAML text) for the scheduled Lambda, and warnings.

    One EventBridge Scheduler schedule per enabled policy; disabled policies get none
    (their snapshots are kept). ``regions`` are the regions the function
    will work in: they become the ``Regions`` parameter's default, and a policy whose
    ``regions`` lie wholly outside them is a warning. Deterministic:
    the same policies give the same text.
    """
    deploy_regions = tuple(dict.fromkeys(regions)) if regions else ()
    warnings = _warnings(policies, deploy_regions)
    enabled = [p for p in policies.policies if p.enabled]
    schedule_ids = schedule_logical_ids([p.name for p in enabled])

    resources: Json = {
        "LogGroup": _log_group(),
        "FunctionRole": _function_role(policies),
        "Function": _function(),
        "AuditTable": _audit_table(),
        "DeadLetterQueue": _dead_letter_queue(),
        "SchedulerRole": _scheduler_role(),
    }
    for policy in enabled:
        resources[schedule_ids[policy.name]] = _schedule(policy)

    disabled = [p.name for p in policies.policies if not p.enabled]
    template: Json = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "SmartVault: declarative EBS backups. A Lambda function run by EventBridge "
            "Scheduler, one schedule per enabled policy, audited in DynamoDB."
        ),
        "Metadata": {
            "SmartVault": {
                "ScheduledPolicies": [p.name for p in enabled],
                # Disabled policies neither create nor delete: they get no schedule.
                "DisabledPolicies": disabled,
            }
        },
        "Parameters": _parameters(deploy_regions),
        "Conditions": {
            "HasRegions": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Regions"}, ""]}]},
            "ShouldCreateAuditTable": {"Fn::Equals": [{"Ref": "CreateAuditTable"}, "true"]},
            "HasReservedConcurrency": {
                "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, ""]}]
            },
        },
        "Resources": resources,
        "Outputs": _outputs(),
    }
    text = yaml.dump(
        template, Dumper=_TemplateDumper, sort_keys=False, default_flow_style=False, width=120
    )
    return text, warnings


class _TemplateDumper(yaml.SafeDumper):
    """SafeDumper that writes shared values out in full: no ``&id001`` anchors in a template."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def schedule_logical_ids(names: Iterable[str]) -> dict[str, str]:
    """Policy name -> CloudFormation logical id of its schedule: ``PolicySchedule<CamelCase>``.

    Logical ids are alphanumeric only, so ``a-b`` and ``ab`` (or ``x--y`` and ``x-y``) would
    collide once hyphens go; CloudFormation also treats ids that differ only in case as
    clashing in places. Colliding names get a short hash of the full name appended, which
    keeps every id stable for as long as the policy keeps its name (a new policy that
    clashes with an old one renames the old one's id: its schedule is simply replaced).
    """
    names = list(names)
    base = {
        n: "PolicySchedule" + "".join(w[:1].upper() + w[1:] for w in n.split("-")) for n in names
    }
    seen: dict[str, int] = {}
    for candidate in base.values():
        seen[candidate.lower()] = seen.get(candidate.lower(), 0) + 1
    ids: dict[str, str] = {}
    for name, candidate in base.items():
        if seen[candidate.lower()] > 1:
            candidate += "X" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
        ids[name] = re.sub(r"[^A-Za-z0-9]", "", candidate)
    return ids


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
    return {
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
        "Regions": {
            "Type": "String",
            "Default": ",".join(deploy_regions),
            "AllowedPattern": "^([a-z0-9-]+(,[a-z0-9-]+)*)?$",
            "Description": "Comma-separated regions to back up, no spaces; empty: the stack's "
            "own region.",
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


def _statement(
    sid: str, actions: Sequence[str], resources: Any, condition: Json | None = None
) -> Json:
    statement: Json = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def function_policy_statements(policies: PolicySet) -> list[Json]:
    """The function role's IAM statements, each commented with why it is there.

    Least privilege: no ``*`` action anywhere; every write is confined to snapshots
    tagged ``CreatedBy=SmartVault`` (at creation, or already on the snapshot).
    """
    statements = [
        # Reading the inventory. EC2 Describe* calls support no resource-level
        # permissions, so "*" is the only resource IAM accepts for them. No
        # sts:GetCallerIdentity: AWS allows it to every principal, always.
        _statement(
            "ReadInventory",
            [
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeSnapshots",
                "ec2:DescribeVolumes",
            ],
            "*",
        ),
        # Creating snapshots: the new snapshot resource must be tagged CreatedBy=SmartVault
        # in the same call, so the role cannot make a snapshot SmartVault would not own.
        # Snapshot ARNs carry no account id (arn:aws:ec2:REGION::snapshot/ID).
        _statement(
            "CreateOnlyTaggedSnapshots",
            ["ec2:CreateSnapshot", "ec2:CreateSnapshots"],
            _SNAPSHOT_ARN,
            _TAGGED_AT_CREATION,
        ),
        # CreateSnapshots is also authorized against the instance and each of its volumes,
        # CreateSnapshot against the volume. Request tags are not evaluated for those
        # source resources, so they get their own statement, limited to this account.
        # Snapshotting reads a volume; it never changes it.
        _statement(
            "SnapshotSourcesInThisAccount",
            ["ec2:CreateSnapshot", "ec2:CreateSnapshots"],
            [_INSTANCE_ARN, _VOLUME_ARN],
        ),
        # Tags only as part of creating a snapshot (TagSpecifications): never retagging an
        # existing snapshot, which could otherwise adopt a foreign snapshot for deletion.
        _statement(
            "TagOnlyWhileCreatingSnapshots",
            ["ec2:CreateTags"],
            _SNAPSHOT_ARN,
            {
                "StringEquals": {
                    "ec2:CreateAction": ["CopySnapshot", "CreateSnapshot", "CreateSnapshots"]
                }
            },
        ),
        # Cross-region copies (policy `copies`). EC2 authorises CopySnapshot against the copy
        # being made and against the source snapshot. The copy must carry CreatedBy=SmartVault
        # from the moment it exists, like any snapshot SmartVault makes ...
        _statement(
            "CopyOnlyToTaggedSnapshots",
            ["ec2:CopySnapshot"],
            _NEW_SNAPSHOT_ARN,
            _TAGGED_AT_CREATION,
        ),
        # ... and the source must be a managed snapshot: the role cannot copy a snapshot that
        # someone else made (or shared) into a region where SmartVault would own the copy.
        # (The executor also checks the source's policy and recovery point tags.)
        _statement(
            "CopyOnlyFromManagedSnapshots",
            ["ec2:CopySnapshot"],
            _EXISTING_SNAPSHOT_ARN,
            _MANAGED_SNAPSHOT,
        ),
        # Retention and archive: only snapshots that already carry both SmartVault tags
        # ; anyone else's snapshots stay out of reach.
        _statement(
            "DeleteAndArchiveOnlyManagedSnapshots",
            ["ec2:DeleteSnapshot", "ec2:ModifySnapshotTier"],
            _SNAPSHOT_ARN,
            _MANAGED_SNAPSHOT,
        ),
        # The audit log and the recovery-point claims: written with conditional PutItem and
        # BatchWriteItem, read by time range and by policy (the by-policy index). This table
        # and its indexes only; no Scan, no table management.
        _statement(
            "AuditTableReadWrite",
            [
                "dynamodb:BatchWriteItem",
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
            ],
            [_TABLE_ARN, _TABLE_INDEX_ARN],
        ),
        # UpdateItem: a pending record gets its outcome (DAY# partitions), a claim its lease
        # or its completion (CLAIM#); no other partition.
        _statement(
            "AuditUpdateRecordsAndClaims",
            ["dynamodb:UpdateItem"],
            _TABLE_ARN,
            _CLAIM_AND_RECORD_KEYS,
        ),
        # DeleteItem only releases claims: audit records can never be deleted by the function.
        _statement("AuditDeleteOnlyClaims", ["dynamodb:DeleteItem"], _TABLE_ARN, _CLAIM_KEYS),
        # The function writes its own log streams into its own log group, nothing else;
        # the group exists (this stack makes it), so no CreateLogGroup.
        _statement(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            {"Fn::GetAtt": ["LogGroup", "Arn"]},
        ),
    ]
    topics = sorted({p.notify.sns_topic_arn for p in policies.policies if p.notify})
    if topics:
        # Notifications go only to the topics the policies name.
        statements.append(_statement("PublishToPolicyTopics", ["sns:Publish"], topics))
    if any(p.copies for p in policies.policies):
        # Copying an encrypted snapshot (and any copy with kms_key_id) makes EC2 decrypt
        # with the source key and re-encrypt with the target key on the caller's behalf.
        # Keys may be named by alias, which IAM cannot match as a key resource, so this
        # allows the keys of this account but only when EC2 uses them for the call
        # (kms:ViaService). Keys of other accounts also need their key policy to allow it.
        account_keys = {"Fn::Sub": "arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/*"}
        via_ec2 = {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}
        statements.append(
            _statement(
                "UseKmsKeysOnlyThroughEc2ForCopies",
                [
                    "kms:Decrypt",
                    "kms:DescribeKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                ],
                account_keys,
                via_ec2,
            )
        )
        # EC2 holds a grant on the target key while it writes the copy; the role may only
        # create grants that are for an AWS resource, asked for by EC2.
        statements.append(
            _statement(
                "GrantKmsKeysOnlyToEc2ForCopies",
                ["kms:CreateGrant"],
                account_keys,
                {**via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
    return statements


def _function_role(policies: PolicySet) -> Json:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "SmartVault function: snapshots it tags, its audit table, its logs.",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            # Inline, so the permissions live and die with the stack and the function
            # (which depends on the role) never starts before they are attached.
            "Policies": [
                {
                    "PolicyName": "smartvault",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": function_policy_statements(policies),
                    },
                }
            ],
        },
    }


def _function() -> Json:
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
                    "SMARTVAULT_REGIONS": {
                        "Fn::If": ["HasRegions", {"Ref": "Regions"}, {"Ref": "AWS::Region"}]
                    },
                    "SMARTVAULT_LOG_LEVEL": {"Ref": "LogLevel"},
                    "SMARTVAULT_DEADLINE_MARGIN": {"Ref": "DeadlineMarginSeconds"},
                }
            },
            # Text: the handler already writes one JSON object per line, which Logs
            # Insights parses as it is.
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": {"Ref": "LogGroup"}},
            # No DeadLetterConfig: a failed run is audited and notified, and the next
            # scheduled run re-plans from the account; Scheduler keeps its own DLQ for
            # invocations it could not deliver.
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


def _scheduler_role() -> Json:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "EventBridge Scheduler: invoke the SmartVault function, nothing else.",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "scheduler.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        # Confused-deputy guard: only schedules of this account.
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                        },
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "smartvault-scheduler",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            # Start a run: this function only (unqualified, so $LATEST).
                            _statement(
                                "InvokeSmartVaultOnly",
                                ["lambda:InvokeFunction"],
                                {"Fn::GetAtt": ["Function", "Arn"]},
                            ),
                            # Park undeliverable invocations in this stack's DLQ.
                            _statement(
                                "DeadLetterOnly",
                                ["sqs:SendMessage"],
                                {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                            ),
                        ],
                    },
                }
            ],
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
    }


# --- the package ----------------------------------------------------------------

#: 1980-01-01, the earliest time a zip can hold: fixed, so the bytes depend on content only.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIPPED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class PackageInfo:
    """What ``build_package`` wrote."""

    path: Path
    #: hex digest of the zip, handy in the S3 key so each build gets its own
    sha256: str
    size: int
    #: number of files in the zip
    entries: int
    #: ``name==version`` of each vendored distribution; empty when not vendored
    vendored: tuple[str, ...]


def runtime_requirements() -> tuple[str, ...]:
    """Pip requirements for the vendored libraries: pinned to the versions installed here
    (the ones the tests ran against), or the pyproject floor when one is not installed."""
    pins = dict(_installed_pins(RUNTIME_DISTRIBUTIONS))
    return tuple(pins.get(name, f"{name}{_RUNTIME_FLOORS[name]}") for name in RUNTIME_DISTRIBUTIONS)


def _installed_pins(names: Iterable[str]) -> Iterator[tuple[str, str]]:
    for name in names:
        try:
            yield name, f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue


def build_package(
    out: Path,
    *,
    project_root: Path,
    policy_paths: Sequence[Path],
    vendor: bool = True,
    requirements: Sequence[str] | None = None,
) -> PackageInfo:
    """Write the Lambda deployment zip to ``out`` and describe it.

    The zip holds ``smartvault/`` (sources and package data, no caches),
    ``lambda_entry.py``, each policy file under ``policies/`` and, when ``vendor``, the
    runtime libraries the Lambda runtime lacks (``runtime_requirements()`` unless
    ``requirements`` is given), installed by pip as python3.12 x86_64 manylinux
    wheels. boto3 and botocore are left out: the runtime has them. Entries are sorted
    and timestamped 1980-01-01, so the same inputs give the same bytes. Raises
    ``ConfigError`` for a missing file, no policy files, or a failed pip install.
    """
    project_root = project_root.resolve()
    files: dict[str, Path] = {}
    package_dir = project_root / "smartvault"
    entry = project_root / "lambda_entry.py"
    if not (package_dir / "__init__.py").is_file():
        raise ConfigError(f"{package_dir} is not the smartvault package: pass the project root")
    if not entry.is_file():
        raise ConfigError(
            f"{entry} is missing: the Lambda handler lives there. Build the package from a "
            "clone of the SmartVault repository (pip install -e . in it), not from an "
            "installed wheel"
        )
    for path in _walk(package_dir):
        files[path.relative_to(project_root).as_posix()] = path
    files["lambda_entry.py"] = entry
    for arcname, path in _policy_files(policy_paths):
        if arcname in files:
            raise ConfigError(
                f"two policy files would both be packaged as {arcname} ({files[arcname]} and "
                f"{path}): rename one"
            )
        files[arcname] = path

    vendored: tuple[str, ...] = ()
    with tempfile.TemporaryDirectory(prefix="smartvault-vendor-") as tmp:
        if vendor:
            target = Path(tmp) / "vendor"
            if requirements is None:
                wanted = list(runtime_requirements())
                constraints = [pin for _, pin in _installed_pins(_RUNTIME_DEPENDENCIES)]
            else:
                wanted, constraints = list(requirements), []
            vendored = _pip_install(wanted, constraints, target)
            for path in _walk(target):
                arcname = path.relative_to(target).as_posix()
                # Console scripts are useless in Lambda; our own modules win over anything.
                if arcname.startswith("bin/") or arcname in files:
                    continue
                files[arcname] = path
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_zip(out, files)

    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return PackageInfo(
        path=out, sha256=digest, size=out.stat().st_size, entries=len(files), vendored=vendored
    )


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_PARTS)
        for filename in sorted(filenames):
            if not filename.endswith(_SKIPPED_SUFFIXES):
                yield Path(dirpath) / filename


def _policy_files(policy_paths: Sequence[Path]) -> Iterator[tuple[str, Path]]:
    """``(policies/<name>, path)``: a directory's *.yaml/*.yml below it, keeping their
    relative paths (as the loader reads them); a file under its own name."""
    found = False
    for given in policy_paths:
        if given.is_dir():
            below = sorted(
                p for p in given.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
            )
            for path in below:
                found = True
                yield f"policies/{path.relative_to(given).as_posix()}", path
        elif given.is_file():
            found = True
            yield f"policies/{given.name}", given
        else:
            raise ConfigError(f"policy path {given} does not exist")
    if not found:
        raise ConfigError(
            "no policy files to package (*.yaml or *.yml): the function would have nothing to do"
        )


def _pip_install(requirements: list[str], constraints: list[str], target: Path) -> tuple[str, ...]:
    # The constraints file sits beside the target, not in it, so it never reaches the zip.
    constraints_file = target.parent / "constraints.txt"
    constraints_file.write_text("".join(f"{c}\n" for c in constraints))
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(target),
        # Wheels for the Lambda runtime, not this machine: rpds-py is compiled.
        "--platform", LAMBDA_PIP_PLATFORM,
        "--implementation", "cp",
        "--python-version", LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
        "--constraint", str(constraints_file),
        *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ConfigError(
            "could not download the runtime libraries for the Lambda package "
            f"(pip exited {result.returncode}: {detail[-1] if detail else 'no output'}); "
            "check the network or pip's index settings"
        )
    return tuple(
        sorted(
            f"{dist.metadata['Name']}=={dist.version}"
            for dist in metadata.distributions(path=[str(target)])
        )
    )


def _write_zip(out: Path, files: dict[str, Path]) -> None:
    with zipfile.ZipFile(out, "w") as archive:
        for arcname in sorted(files):
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the permission bits below are honoured
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(info, files[arcname].read_bytes(), compresslevel=9)
