"""The fleet deployment: one hub stack per region, one spoke role per member account.

Pure: CloudFormation templates as dicts, no AWS call. docs/fleet.md is the design:

- :func:`spoke_template` is the member account's stack (deployed by the hub's StackSet): one
  role the hub's SmartVault function assumes to work on a shard. Its permissions are the
  EC2 (and KMS-through-EC2) statements of the single-account function role
  (:func:`smartvault.deploy.iam.function_policy_statements`), nothing more: the audit table,
  logs and notifications stay with the function in the hub.
- :func:`hub_template` is the hub's stack: the StackSet that puts the spoke role into every
  account of the given OUs (new accounts included), a Step Functions workflow that runs every
  shard of its region (:func:`state_machine_definition`), its tick, its results bucket, its
  roles and its alarms.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from smartvault.core.model import PolicySet
from smartvault.deploy.alarms import schedule_period
from smartvault.deploy.iam import allow
from smartvault.deploy.iam import function_policy_statements
from smartvault.deploy.template import Extension
from smartvault.deploy.template import build_template
from smartvault.deploy.template import template_text
from smartvault.errors import ConfigError

Json = dict[str, Any]

#: The member-account role's default name.
DEFAULT_SPOKE_ROLE = "SmartVaultShard"
#: Distributed Map defaults: shards at once, and the share of shards that may fail.
DEFAULT_MAX_CONCURRENCY = 40
DEFAULT_TOLERATED_FAILURE_PERCENTAGE = 10
#: Invocations of one shard in one execution before it is counted as failed.
DEFAULT_MAX_ROUNDS = 12
#: Distributed Map runs at most this many child executions at once.
MAX_MAP_CONCURRENCY = 10_000
#: The tick is never coarser than this, so a policy is served within an hour of its slot.
LONGEST_TICK = timedelta(hours=1)
#: CloudFormation accepts a StackSet TemplateBody up to this many bytes.
MAX_TEMPLATE_BODY = 51_200
#: Where the workflow writes shard lists and map results in the results bucket.
SHARD_LIST_PREFIX = "shard-lists/"
RESULTS_PREFIX = "map-runs/"
#: Where the shard function writes each shard's plan and summary (the shard contract).
SHARDS_PREFIX = "shards/"
#: The Distributed Map's label: its child executions' metrics carry it in their
#: StateMachineArn dimension (``...:stateMachine:<name>/<label>``).
MAP_LABEL = "Shards"
#: Lambda errors a shard invocation is retried on: throttling and the service's own faults,
#: never the function's error (a failed run), which the next tick plans again.
RETRIED_LAMBDA_ERRORS = (
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
)
#: The state machine's name, fixed so that its role can name it without a cycle.
_STATE_MACHINE_NAME = "${AWS::StackName}-fleet"
_STATE_MACHINE_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
    + _STATE_MACHINE_NAME
)
_EXECUTIONS_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
    + _STATE_MACHINE_NAME
    + "/*"
)

#: The EC2 statements are the ones the spoke role carries; everything else the function
#: does (audit table, logs, its queue, notifications) happens in the hub, as the function.
_SPOKE_SERVICES = ("ec2:", "kms:")


# --- the spoke ------------------------------------------------------------------


def spoke_statements(policies: PolicySet) -> list[Json]:
    """The spoke role's statements: the function role's EC2 and KMS ones, unchanged."""
    return [
        s
        for s in function_policy_statements(policies)
        if all(a.startswith(_SPOKE_SERVICES) for a in s["Action"])
    ]


def spoke_template(policies: PolicySet) -> Json:
    """The member account's template: the role the hub's function assumes, trusted by it only.

    The trust policy names the hub function's role as its only principal and checks
    ``aws:PrincipalArn`` as well, so no other role of the hub account (and no user) can
    assume it, whatever the hub account's own policies allow.
    """
    hub_role = {"Ref": "HubFunctionRoleArn"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "SmartVault spoke: the role the SmartVault hub function assumes to back "
        "up this account's EBS volumes. Deployed by the hub's StackSet.",
        "Parameters": {
            "HubFunctionRoleArn": {
                "Type": "String",
                "AllowedPattern": "^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$",
                "Description": "The role of the SmartVault function in the hub account: "
                "the only principal that may assume this role.",
            },
            "RoleName": {
                "Type": "String",
                "Default": DEFAULT_SPOKE_ROLE,
                "AllowedPattern": "^[A-Za-z0-9+=,.@_-]{1,64}$",
                "Description": "Name of the role (the hub builds its ARN from the account).",
            },
        },
        "Resources": {
            "ShardRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Ref": "RoleName"},
                    "Description": "SmartVault shard: snapshots it tags, in this account.",
                    "MaxSessionDuration": 3600,
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "OnlyTheHubFunction",
                                "Effect": "Allow",
                                "Principal": {"AWS": hub_role},
                                "Action": "sts:AssumeRole",
                                # Belt and braces: if the principal were ever widened, the
                                # calling role must still be the hub function's.
                                "Condition": {"ArnEquals": {"aws:PrincipalArn": hub_role}},
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "smartvault-shard",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": spoke_statements(policies),
                            },
                        }
                    ],
                },
            }
        },
        "Outputs": {"ShardRoleArn": {"Value": {"Fn::GetAtt": ["ShardRole", "Arn"]}}},
    }


# --- the workflow ---------------------------------------------------------------


def state_machine_definition(
    *,
    shard_list: tuple[str, str] | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    tolerated_failure_percentage: int = DEFAULT_TOLERATED_FAILURE_PERCENTAGE,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> Json:
    """The workflow (Amazon States Language): list the shards, run each until it is done.

    ``shard_list`` is an S3 ``(bucket, key)`` of a JSON array of ``{"account", "region"}``;
    without it the lister function writes that array from Organizations at run time. Each
    shard is a child execution of a Distributed Map that invokes the shard function until
    ``remaining`` is 0, at most ``max_rounds`` times. ``${ShardFunctionArn}``,
    ``${ShardListerArn}`` and ``${ResultsBucket}`` are CloudFormation substitutions.
    """
    if not 1 <= max_concurrency <= MAX_MAP_CONCURRENCY:
        raise ConfigError(
            f"max concurrency {max_concurrency}: a Distributed Map runs 1 to "
            f"{MAX_MAP_CONCURRENCY:,} child executions at once; give a value in that range"
        )
    if not 0 <= tolerated_failure_percentage <= 100:
        raise ConfigError(
            f"tolerated failure percentage {tolerated_failure_percentage}: give 0 to 100"
        )
    if max_rounds < 1:
        raise ConfigError(f"max rounds {max_rounds}: a shard needs at least one invocation")
    states: Json = {}
    if shard_list is None:
        reader_parameters: Json = {
            "Bucket.$": "$.shard_list.bucket",
            "Key.$": "$.shard_list.key",
        }
        states["ListShards"] = {
            "Type": "Task",
            "Comment": "Accounts of the Organization, in this region: written to S3 (a "
            "thousand accounts would not fit in the 256 KiB state).",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "${ShardListerArn}",
                "Payload": {"execution.$": "$$.Execution.Name"},
            },
            "ResultSelector": {"bucket.$": "$.Payload.bucket", "key.$": "$.Payload.key"},
            "ResultPath": "$.shard_list",
            "Retry": [_lambda_retry()],
            "Next": "RunShards",
        }
    else:
        bucket, key = shard_list
        reader_parameters = {"Bucket": bucket, "Key": key}
    states["RunShards"] = {
        "Type": "Map",
        "Comment": "One child execution per shard, each its own Standard execution, so a "
        "shard's history has 25,000 events of its own.",
        "Label": MAP_LABEL,
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": reader_parameters,
        },
        "ItemSelector": {
            "shard": {
                "account.$": "$$.Map.Item.Value.account",
                "region.$": "$$.Map.Item.Value.region",
                "at.$": "$$.Execution.StartTime",
            },
            "dry_run.$": "$.dry_run",
            "round": 0,
        },
        "MaxConcurrency": max_concurrency,
        "ToleratedFailurePercentage": tolerated_failure_percentage,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "RunShard",
            "States": _shard_states(max_rounds),
        },
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "${ResultsBucket}", "Prefix": RESULTS_PREFIX},
        },
        "ResultPath": "$.map_run",
        "Next": "Done",
    }
    states["Done"] = {"Type": "Succeed"}
    return {
        "Comment": "SmartVault fleet: every shard (account, region, at) of this region, each "
        "invoked until nothing remains.",
        "StartAt": "ListShards" if shard_list is None else "RunShards",
        "States": states,
    }


def _lambda_retry() -> Json:
    return {
        "ErrorEquals": list(RETRIED_LAMBDA_ERRORS),
        "IntervalSeconds": 5,
        "MaxAttempts": 6,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    }


def _shard_states(max_rounds: int) -> Json:
    return {
        "RunShard": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "${ShardFunctionArn}",
                "Payload": {"shard.$": "$.shard", "dry_run.$": "$.dry_run"},
            },
            # Only the counts and where the plan and the full summary are in S3 travel on
            # (a state holds at most 256 KiB).
            "ResultSelector": {
                "complete.$": "$.Payload.complete",
                "remaining.$": "$.Payload.remaining",
                "ok.$": "$.Payload.ok",
                "summary.$": "$.Payload.summary",
                "plan.$": "$.Payload.plan",
                "result.$": "$.Payload.result",
            },
            "ResultPath": "$.result",
            "TimeoutSeconds": 960,
            "Retry": [_lambda_retry()],
            "Next": "CountRound",
        },
        "CountRound": {
            "Type": "Pass",
            "Parameters": {
                "shard.$": "$.shard",
                "dry_run.$": "$.dry_run",
                "round.$": "States.MathAdd($.round, 1)",
                "result.$": "$.result",
            },
            "Next": "MoreToDo",
        },
        "MoreToDo": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.result.remaining", "NumericEquals": 0, "Next": "ShardDone"},
                {
                    "Variable": "$.round",
                    "NumericLessThan": max_rounds,
                    "Next": "RunShard",
                },
            ],
            "Default": "ShardUnfinished",
        },
        "ShardDone": {"Type": "Succeed"},
        "ShardUnfinished": {
            "Type": "Fail",
            "Error": "SmartVault.ShardUnfinished",
            "Cause": f"work remained after {max_rounds} invocations; the next tick goes on",
        },
    }


# --- the hub --------------------------------------------------------------------


def tick_expression(policies: PolicySet) -> str | None:
    """The hub's tick: ``rate()`` of the finest enabled schedule's period, at most an hour.

    None when no policy is enabled. A policy is run at the first tick after its slot, so
    never later than one tick (at most an hour) after it.
    """
    periods = [
        schedule_period(p.schedule.expression, p.schedule.timezone)
        for p in policies.policies
        if p.enabled
    ]
    known = [p for p in periods if p is not None]
    if not periods:
        return None
    finest = min([*known, LONGEST_TICK])
    minutes = max(1, int(finest.total_seconds()) // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"rate({hours} hour{'s' if hours > 1 else ''})"
    return f"rate({minutes} minute{'s' if minutes > 1 else ''})"


def hub_template(
    policies: PolicySet,
    *,
    region: str | None = None,
    shard_list: tuple[str, str] | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    tolerated_failure_percentage: int = DEFAULT_TOLERATED_FAILURE_PERCENTAGE,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> tuple[Json, list[str]]:
    """The hub account's template for one region, and warnings.

    It is the single-account template (:func:`smartvault.deploy.template.build_template`:
    function, role, audit table, queue, alarms, alarm topic) without its schedules, whose
    place the tick takes, plus the StackSet of the spoke role, the workflow, its tick, the
    results bucket, their roles and the workflow's alarms. The function works in the stack's
    own region; ``region``, when given, is where the stack is meant to go (for the warnings
    about policies that never run there). The audit table lives in one region
    (``AuditRegion``): only that region's stack creates it.

    Raises :class:`~smartvault.errors.ConfigError` for out-of-range Map settings and when
    the spoke template is too large for a StackSet's template body.
    """
    definition = state_machine_definition(
        shard_list=shard_list,
        max_concurrency=max_concurrency,
        tolerated_failure_percentage=tolerated_failure_percentage,
        max_rounds=max_rounds,
    )
    spoke_body = json.dumps(spoke_template(policies), sort_keys=False, separators=(",", ":"))
    if len(spoke_body.encode()) > MAX_TEMPLATE_BODY:
        raise ConfigError(
            f"the spoke template is {len(spoke_body.encode()):,} bytes, more than the "
            f"{MAX_TEMPLATE_BODY:,} a StackSet template body holds"
        )
    tick = tick_expression(policies)
    listing = shard_list is None
    resources: Json = {
        "SpokeStackSet": _stack_set(spoke_body),
        "ResultsBucket": _results_bucket(),
        "ResultsBucketPolicy": _results_bucket_policy(),
        "StateMachineRole": _state_machine_role(listing=listing, shard_list=shard_list),
        "StateMachine": _state_machine(definition, listing=listing),
        "ExecutionsFailedAlarm": _workflow_alarm(
            "ExecutionsFailed",
            {"Fn::Sub": _STATE_MACHINE_ARN},
            "A SmartVault fleet run failed: more shards failed than the map tolerates, or "
            "the shards could not be listed.",
        ),
        "ExecutionsTimedOutAlarm": _workflow_alarm(
            "ExecutionsTimedOut",
            {"Fn::Sub": _STATE_MACHINE_ARN},
            "A SmartVault fleet run timed out.",
        ),
        # The map's child executions (one per shard) report under the map run's own
        # StateMachineArn, the state machine's followed by the map's label: this alarm
        # counts failed shards even when the run as a whole is within its tolerance.
        "FailedShardsAlarm": _workflow_alarm(
            "ExecutionsFailed",
            {"Fn::Sub": f"{_STATE_MACHINE_ARN}/{MAP_LABEL}"},
            "A SmartVault shard (one account in this region) failed: a run failed or was "
            "refused, or work remained after the last round.",
        ),
    }
    if listing:
        resources["ShardListerRole"] = _lister_role()
        resources["ShardLister"] = _lister()
    if tick is not None:
        resources["TickRole"] = _tick_role()
        resources["Tick"] = _tick(tick)
    audit_home = {"Fn::If": ["HasAuditRegion", {"Ref": "AuditRegion"}, {"Ref": "AWS::Region"}]}
    extension = Extension(
        description=(
            "SmartVault fleet hub (one region): the SmartVault function, its audit table (in "
            "the AuditRegion only) and alarms; a StackSet puts the shard role into every "
            "account of the given OUs; a Step Functions workflow, started by one EventBridge "
            "Scheduler tick (in place of per-policy and catch-up schedules), runs the "
            "function once per account in this region."
        ),
        metadata={
            "Tick": tick or "off (no enabled policy)",
            "Schedules": "none per policy and no catch-up schedule: the tick runs every "
            "policy of every shard, at the finest cadence any policy uses (at most hourly)",
            "Region": region or "the stack's own",
            "Shards": "from Organizations"
            if shard_list is None
            else f"s3://{shard_list[0]}/{shard_list[1]}",
            "MaxConcurrency": max_concurrency,
            "ToleratedFailurePercentage": tolerated_failure_percentage,
            "MaxRoundsPerShard": max_rounds,
        },
        alarm_interval=tick,
        parameters=_hub_parameters(max_concurrency),
        conditions={
            "ShouldDeploySpokes": {"Fn::Equals": [{"Ref": "DeploySpokes"}, "true"]},
            "HasOrganizationId": {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]},
            "HasAuditRegion": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AuditRegion"}, ""]}]},
            "IsAuditHome": {
                "Fn::Or": [
                    {"Fn::Equals": [{"Ref": "AuditRegion"}, ""]},
                    {"Fn::Equals": [{"Ref": "AuditRegion"}, {"Ref": "AWS::Region"}]},
                ]
            },
        },
        resources=resources,
        outputs={
            "StateMachineArn": {
                "Description": "Start a run by hand with `aws stepfunctions start-execution "
                "--state-machine-arn ... --input '{\"dry_run\": true}'`.",
                "Value": {"Ref": "StateMachine"},
            },
            "ResultsBucketName": {
                "Description": "Shard lists, map results, and the plans and summaries the "
                "shard function writes.",
                "Value": {"Ref": "ResultsBucket"},
            },
            "FunctionRoleArn": {
                "Description": "The only principal the spoke role trusts.",
                "Value": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            },
        },
        environment={
            "SMARTVAULT_SHARD_ROLE": {"Ref": "SpokeRoleName"},
            "SMARTVAULT_RESULTS_BUCKET": {"Ref": "ResultsBucket"},
            "SMARTVAULT_AUDIT_REGION": audit_home,
        },
        role_statements=tuple(shard_function_statements()),
        table_region=audit_home,
        table_condition={
            "Fn::And": [
                {"Fn::Equals": [{"Ref": "CreateAuditTable"}, "true"]},
                {"Condition": "IsAuditHome"},
            ]
        },
    )
    return build_template(policies, regions=[region] if region else None, extension=extension)


def hub_template_text(policies: PolicySet, **options: Any) -> tuple[str, list[str]]:
    """:func:`hub_template` as YAML text (long intrinsic forms only, like ``deploy template``),
    and warnings."""
    template, warnings = hub_template(policies, **options)
    return template_text(template), warnings


def shard_function_statements() -> list[Any]:
    """What the hub function needs beyond the single-account role (the shard contract):
    assume the spoke role in member accounts, and write shard plans and summaries. (Its
    audit table statements name the table in the audit region instead of its own.)"""
    spoke_role = {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}"}
    assume = allow("AssumeSpokeRoles", ["sts:AssumeRole"], spoke_role)
    in_organization = allow(
        "AssumeSpokeRolesInTheOrganization",
        ["sts:AssumeRole"],
        spoke_role,
        {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}},
    )
    return [
        # The spoke role of any account (the shard's), narrowed to the Organization's
        # accounts when its id is given.
        {"Fn::If": ["HasOrganizationId", in_organization, assume]},
        # Each shard's plan.json and result.json; nothing else of the bucket.
        allow(
            "WriteShardPlansAndResults",
            ["s3:PutObject"],
            {"Fn::Sub": "${ResultsBucket.Arn}/" + SHARDS_PREFIX + "*"},
        ),
    ]


def _hub_parameters(max_concurrency: int) -> Json:
    return {
        "ReservedConcurrency": {
            "Type": "String",
            "Default": str(max_concurrency),
            "AllowedPattern": "^([1-9][0-9]*)?$",
            "Description": "Runs allowed at once: by default the map's MaxConcurrency, so "
            "that every shard the map starts can run (fewer would throttle the map); empty "
            "for no reservation.",
        },
        "SpokeRoleName": {
            "Type": "String",
            "Default": DEFAULT_SPOKE_ROLE,
            "AllowedPattern": "^[A-Za-z0-9+=,.@_-]{1,64}$",
            "Description": "Name of the role in every member account.",
        },
        "OrganizationalUnitIds": {
            "Type": "CommaDelimitedList",
            "Description": "OUs (or the root, r-...) whose accounts get the spoke role; "
            "accounts added to them later get it too.",
        },
        "OrganizationId": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^(o-[a-z0-9]{10,32})?$",
            "Description": "The Organization's id (o-...): the function may then assume "
            "spoke roles in its accounts only; empty for no such condition.",
        },
        "AuditRegion": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^([a-z]{2}(-[a-z]+)+-[0-9])?$",
            "Description": "The region of the audit table, the same in every hub stack; "
            "empty for this region. Only the stack in that region creates the table.",
        },
        "DeploySpokes": {
            "Type": "String",
            "Default": "true",
            "AllowedValues": ["true", "false"],
            "Description": "true in exactly one region's hub stack: IAM roles are global, so "
            "the StackSet deploys them once per account.",
        },
        "StackSetCallAs": {
            "Type": "String",
            "Default": "SELF",
            "AllowedValues": ["SELF", "DELEGATED_ADMIN"],
            "Description": "SELF in the management account; DELEGATED_ADMIN in a delegated "
            "administrator account for StackSets.",
        },
        "ResultsRetentionDays": {
            "Type": "Number",
            "Default": 90,
            "MinValue": 1,
            "MaxValue": 3650,
            "Description": "Days to keep shard lists, map results, plans and summaries.",
        },
    }


def _stack_set(spoke_body: str) -> Json:
    return {
        "Type": "AWS::CloudFormation::StackSet",
        "Condition": "ShouldDeploySpokes",
        "Properties": {
            "StackSetName": {"Fn::Sub": "${AWS::StackName}-spoke"},
            "Description": "SmartVault spoke role in every member account.",
            "PermissionModel": "SERVICE_MANAGED",
            # New accounts in the OUs get the role without a config edit; a departing
            # account loses it (its snapshots stay: they are the account's).
            "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
            "CallAs": {"Ref": "StackSetCallAs"},
            "Capabilities": ["CAPABILITY_NAMED_IAM"],
            "ManagedExecution": {"Active": True},
            "OperationPreferences": {
                "FailureTolerancePercentage": 10,
                "MaxConcurrentPercentage": 25,
                "RegionConcurrencyType": "PARALLEL",
            },
            "Parameters": [
                {
                    "ParameterKey": "HubFunctionRoleArn",
                    "ParameterValue": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                },
                {"ParameterKey": "RoleName", "ParameterValue": {"Ref": "SpokeRoleName"}},
            ],
            # One region: the stack holds only an IAM role, which is global.
            "StackInstancesGroup": [
                {
                    "DeploymentTargets": {
                        "OrganizationalUnitIds": {"Ref": "OrganizationalUnitIds"}
                    },
                    "Regions": [{"Ref": "AWS::Region"}],
                }
            ],
            "TemplateBody": spoke_body,
        },
    }


def _results_bucket() -> Json:
    return {
        "Type": "AWS::S3::Bucket",
        # Map results and shard summaries outlive a stack replaced by mistake.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "expire-results",
                        "Status": "Enabled",
                        "ExpirationInDays": {"Ref": "ResultsRetentionDays"},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        },
    }


def _results_bucket_policy() -> Json:
    bucket_arn = {"Fn::GetAtt": ["ResultsBucket", "Arn"]}
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": "ResultsBucket"},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, {"Fn::Sub": "${ResultsBucket.Arn}/*"}],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        },
    }


def _role(
    description: str, service: str, name: str, statements: list[Json], *, guard: bool = True
) -> Json:
    trust: Json = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if guard:
        # Confused-deputy guard: only this account's schedules and state machines.
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": description,
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [trust],
            },
            "Policies": [
                {
                    "PolicyName": name,
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def _state_machine_role(*, listing: bool, shard_list: tuple[str, str] | None) -> Json:
    objects = {"Fn::Sub": "${ResultsBucket.Arn}/*"}
    functions: list[Any] = [
        {"Fn::GetAtt": ["Function", "Arn"]},
        {"Fn::Sub": "${Function.Arn}:*"},
    ]
    if listing:
        functions.append({"Fn::GetAtt": ["ShardLister", "Arn"]})
    statements = [
        # The shard function (and the lister), qualified or not: nothing else.
        allow("InvokeShardFunctionOnly", ["lambda:InvokeFunction"], functions),
        # The Distributed Map starts its children as executions of this state machine,
        # and stops them when the map run fails.
        allow(
            "StartOwnChildExecutions", ["states:StartExecution"], {"Fn::Sub": _STATE_MACHINE_ARN}
        ),
        allow(
            "WatchOwnChildExecutions",
            ["states:DescribeExecution", "states:StopExecution"],
            {"Fn::Sub": _EXECUTIONS_ARN},
        ),
        # ResultWriter writes the map run's results (multipart for large ones); ItemReader
        # reads the shard list the lister wrote.
        allow(
            "ResultsBucketObjectsOnly",
            [
                "s3:AbortMultipartUpload",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ],
            objects,
        ),
    ]
    if shard_list is not None:
        bucket, key = shard_list
        statements.append(
            allow(
                "ReadTheShardList",
                ["s3:GetObject"],
                {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{bucket}/{key}"},
            )
        )
    return _role(
        "SmartVault fleet workflow: invoke the shard function, its results bucket.",
        "states.amazonaws.com",
        "smartvault-fleet",
        statements,
    )


def _state_machine(definition: Json, *, listing: bool) -> Json:
    substitutions: Json = {
        "ShardFunctionArn": {"Fn::GetAtt": ["Function", "Arn"]},
        "ResultsBucket": {"Ref": "ResultsBucket"},
    }
    if listing:
        substitutions["ShardListerArn"] = {"Fn::GetAtt": ["ShardLister", "Arn"]}
    return {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": {"Fn::Sub": _STATE_MACHINE_NAME},
            # Standard: a shard may need several 15-minute invocations, beyond Express's 5.
            "StateMachineType": "STANDARD",
            "RoleArn": {"Fn::GetAtt": ["StateMachineRole", "Arn"]},
            "Definition": definition,
            "DefinitionSubstitutions": substitutions,
        },
    }


def _workflow_alarm(metric: str, state_machine: Json, what: str) -> Json:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"{what} Open the execution in the Step Functions console; "
            f"failed shards are in the results bucket ({RESULTS_PREFIX}.../FAILED_*.json), "
            f"with each shard's plan and summary under {SHARDS_PREFIX} (docs/fleet.md).",
            "Namespace": "AWS/States",
            "MetricName": metric,
            "Dimensions": [{"Name": "StateMachineArn", "Value": state_machine}],
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
        },
    }


def _tick_role() -> Json:
    return _role(
        "EventBridge Scheduler: start the SmartVault fleet workflow, nothing else.",
        "scheduler.amazonaws.com",
        "smartvault-fleet-tick",
        [allow("StartFleetRunsOnly", ["states:StartExecution"], {"Ref": "StateMachine"})],
    )


def _tick(expression: str) -> Json:
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "Description": "SmartVault fleet tick: the finest enabled schedule, at most hourly.",
            "ScheduleExpression": expression,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": {"Ref": "StateMachine"},
                "RoleArn": {"Fn::GetAtt": ["TickRole", "Arn"]},
                "Input": json.dumps({"dry_run": False}),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
            },
        },
    }


#: The lister: every active member account, in this region, as a JSON array in S3. Left
#: out: the management account (a service-managed StackSet never deploys there) and the
#: hub account itself (the spoke role is not in it, and its own stack runs there).
LISTER_CODE = """\
import json
import os

import boto3


def handler(event, context):
    org = boto3.client("organizations")
    management = org.describe_organization()["Organization"]["MasterAccountId"]
    hub = context.invoked_function_arn.split(":")[4]
    accounts = []
    for page in org.get_paginator("list_accounts").paginate():
        accounts += [a["Id"] for a in page["Accounts"] if a["Status"] == "ACTIVE"]
    region = os.environ["AWS_REGION"]
    left_out = {management, hub}
    shards = [{"account": a, "region": region} for a in sorted(set(accounts)) if a not in left_out]
    bucket = os.environ["RESULTS_BUCKET"]
    key = os.environ["PREFIX"] + event["execution"] + ".json"
    body = json.dumps(shards).encode()
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return {"bucket": bucket, "key": key, "count": len(shards)}
"""


def _lister() -> Json:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Description": "SmartVault fleet: list the Organization's accounts as shards.",
            "Runtime": "python3.12",
            "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["ShardListerRole", "Arn"]},
            "Timeout": 300,
            "MemorySize": 256,
            "Environment": {
                "Variables": {
                    "RESULTS_BUCKET": {"Ref": "ResultsBucket"},
                    "PREFIX": SHARD_LIST_PREFIX,
                }
            },
            "Code": {"ZipFile": LISTER_CODE},
        },
    }


def _lister_role() -> Json:
    return _role(
        "SmartVault fleet lister: read the Organization's accounts, write the shard list.",
        "lambda.amazonaws.com",
        "smartvault-fleet-lister",
        [
            # Organizations' read calls take no resource-level permissions: "*" is the
            # only resource IAM accepts for them.
            allow(
                "ListOrganizationAccounts",
                ["organizations:DescribeOrganization", "organizations:ListAccounts"],
                "*",
            ),
            allow(
                "WriteShardListsOnly",
                ["s3:PutObject"],
                {"Fn::Sub": "${ResultsBucket.Arn}/" + SHARD_LIST_PREFIX + "*"},
            ),
            allow(
                "WriteOwnLogs",
                ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                {
                    "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                    "log-group:/aws/lambda/${AWS::StackName}-ShardLister-*"
                },
            ),
        ],
        guard=False,  # Lambda execution roles are assumed by Lambda itself, as in iam.py
    )
