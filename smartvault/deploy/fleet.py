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
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import yaml

from smartvault.core.model import PolicySet
from smartvault.deploy.alarms import schedule_period
from smartvault.deploy.iam import function_policy_statements
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
        "Label": "Shards",
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
            # Only the counts travel on: plans and full summaries are in S3.
            "ResultSelector": {
                "complete.$": "$.Payload.complete",
                "remaining.$": "$.Payload.remaining",
                "summary.$": "$.Payload.summary",
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
    shard_list: tuple[str, str] | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    tolerated_failure_percentage: int = DEFAULT_TOLERATED_FAILURE_PERCENTAGE,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> Json:
    """The hub account's template for one region: StackSet, workflow, tick, bucket, alarms.

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
    resources: Json = {
        "SpokeStackSet": _stack_set(spoke_body),
        "ResultsBucket": _results_bucket(),
        "ResultsBucketPolicy": _results_bucket_policy(),
        "StateMachineRole": _state_machine_role(listing=shard_list is None, shard_list=shard_list),
        "StateMachine": _state_machine(definition, listing=shard_list is None),
        "ExecutionsFailedAlarm": _executions_alarm("ExecutionsFailed", "failed"),
        "ExecutionsTimedOutAlarm": _executions_alarm("ExecutionsTimedOut", "timed out"),
    }
    if shard_list is None:
        resources["ShardListerRole"] = _lister_role()
        resources["ShardLister"] = _lister()
    if tick is not None:
        resources["TickRole"] = _tick_role()
        resources["Tick"] = _tick(tick)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "SmartVault fleet hub (one region): a StackSet puts the shard role into "
        "every account of the given OUs; a Step Functions workflow, ticked by EventBridge "
        "Scheduler, runs the SmartVault function once per account in this region.",
        "Metadata": {
            "SmartVault": {
                "Tick": tick or "off (no enabled policy)",
                "Shards": "from Organizations"
                if shard_list is None
                else f"s3://{shard_list[0]}/{shard_list[1]}",
                "MaxConcurrency": max_concurrency,
                "ToleratedFailurePercentage": tolerated_failure_percentage,
                "MaxRoundsPerShard": max_rounds,
            }
        },
        "Parameters": _hub_parameters(),
        "Conditions": {
            "ShouldDeploySpokes": {"Fn::Equals": [{"Ref": "DeploySpokes"}, "true"]},
            "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]},
        },
        "Resources": resources,
        "Outputs": {
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
        },
    }


def _hub_parameters() -> Json:
    return {
        "ShardFunctionArn": {
            "Type": "String",
            "AllowedPattern": "^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:.+$",
            "Description": "The SmartVault function of this region (the FunctionArn output of "
            "the `smartvault deploy template` stack in the hub account).",
        },
        "ShardFunctionRoleArn": {
            "Type": "String",
            "AllowedPattern": "^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$",
            "Description": "That function's role (`aws lambda get-function-configuration "
            "--function-name ... --query Role`): the only principal the spoke role trusts.",
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
        "AlarmTopicArn": {
            "Type": "String",
            "Default": "",
            "Description": "SNS topic for the workflow's alarms (for example the AlarmTopicArn "
            "output of the function's stack); empty for none.",
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
                    "ParameterValue": {"Ref": "ShardFunctionRoleArn"},
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


def _statement(sid: str, actions: Sequence[str], resources: Any) -> Json:
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": resources}


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
        {"Ref": "ShardFunctionArn"},
        {"Fn::Sub": "${ShardFunctionArn}:*"},
    ]
    if listing:
        functions.append({"Fn::GetAtt": ["ShardLister", "Arn"]})
    statements = [
        # The shard function (and the lister), qualified or not: nothing else.
        _statement("InvokeShardFunctionOnly", ["lambda:InvokeFunction"], functions),
        # The Distributed Map starts its children as executions of this state machine,
        # and stops them when the map run fails.
        _statement(
            "StartOwnChildExecutions", ["states:StartExecution"], {"Fn::Sub": _STATE_MACHINE_ARN}
        ),
        _statement(
            "WatchOwnChildExecutions",
            ["states:DescribeExecution", "states:StopExecution"],
            {"Fn::Sub": _EXECUTIONS_ARN},
        ),
        # ResultWriter writes the map run's results (multipart for large ones); ItemReader
        # reads the shard list the lister wrote.
        _statement(
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
            _statement(
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
        "ShardFunctionArn": {"Ref": "ShardFunctionArn"},
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


def _executions_alarm(metric: str, what: str) -> Json:
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"A SmartVault fleet run {what}: more shards failed than the "
            "map tolerates, or the listing failed. Open the execution in the Step Functions "
            "console; failed shards are in the results bucket (map-runs/.../FAILED_*.json).",
            "Namespace": "AWS/States",
            "MetricName": metric,
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": "StateMachine"}}],
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": topic,
        },
    }


def _tick_role() -> Json:
    return _role(
        "EventBridge Scheduler: start the SmartVault fleet workflow, nothing else.",
        "scheduler.amazonaws.com",
        "smartvault-fleet-tick",
        [_statement("StartFleetRunsOnly", ["states:StartExecution"], {"Ref": "StateMachine"})],
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


#: The lister: every active member account, in this region, as a JSON array in S3. The
#: management account is left out: a service-managed StackSet never deploys there.
_LISTER_CODE = """\
import json
import os

import boto3


def handler(event, context):
    org = boto3.client("organizations")
    management = org.describe_organization()["Organization"]["MasterAccountId"]
    accounts = []
    for page in org.get_paginator("list_accounts").paginate():
        accounts += [a["Id"] for a in page["Accounts"] if a["Status"] == "ACTIVE"]
    region = os.environ["AWS_REGION"]
    shards = [{"account": a, "region": region} for a in sorted(set(accounts)) if a != management]
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
            "Code": {"ZipFile": _LISTER_CODE},
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
            _statement(
                "ListOrganizationAccounts",
                ["organizations:DescribeOrganization", "organizations:ListAccounts"],
                "*",
            ),
            _statement(
                "WriteShardListsOnly",
                ["s3:PutObject"],
                {"Fn::Sub": "${ResultsBucket.Arn}/" + SHARD_LIST_PREFIX + "*"},
            ),
            _statement(
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


class _NoAliasDumper(yaml.SafeDumper):
    """Shared values written out in full: no ``&id001`` anchors in a template."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def hub_template_text(policies: PolicySet, **options: Any) -> str:
    """:func:`hub_template` as YAML text (long intrinsic forms only, like ``deploy template``)."""
    return yaml.dump(
        hub_template(policies, **options),
        Dumper=_NoAliasDumper,
        sort_keys=False,
        default_flow_style=False,
        width=120,
    )
