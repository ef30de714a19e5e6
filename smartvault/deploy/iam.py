"""The IAM roles of the deployment: the function's and EventBridge Scheduler's.

Pure: CloudFormation resources as dicts, no AWS call. Least privilege, and each
statement is commented with why it is there: no ``*`` action anywhere; every EC2 write
is confined to snapshots tagged ``CreatedBy=SmartVault`` (at creation, or already on
the snapshot) and, for restore tests, to test volumes tagged ``CreatedBy=SmartVault``
and ``smartvault:verify``; the audit table is reached by key prefix, so audit records
can never be deleted by the function; the function can never set or remove a person's
hold (``smartvault:hold``, ``smartvault:hold-by``: no Allow permits it, and an explicit
Deny refuses it); Scheduler may only invoke this function and feed its queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smartvault.core.audit_table import CLAIM_PARTITION_PREFIX
from smartvault.core.audit_table import RECORD_PARTITION_PREFIX
from smartvault.core.model import PolicySet
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_HOLD_BY
from smartvault.core.tags import TAG_NAME
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_VERIFIED
from smartvault.core.tags import TAG_VERIFY

Json = dict[str, Any]

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
#: A person's hold on a recovery point: tags the function may never set nor remove.
_HOLD_KEYS = [TAG_HOLD, TAG_HOLD_BY]
_CLAIM_KEYS = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [_CLAIMS]}}
_CLAIM_AND_RECORD_KEYS = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [_CLAIMS, _RECORDS]}}


def allow(sid: str, actions: Sequence[str], resources: Any, condition: Json | None = None) -> Json:
    statement: Json = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _table_arns(region: Any) -> tuple[Json, Json]:
    """The audit table's ARN and its indexes', in the stack's region (``region`` None) or
    in the region ``region`` (a CloudFormation value) evaluates to."""
    if region is None:
        return _TABLE_ARN, _TABLE_INDEX_ARN
    table, index = (
        {"Fn::Sub": [arn["Fn::Sub"].replace("${AWS::Region}", "${Home}"), {"Home": region}]}
        for arn in (_TABLE_ARN, _TABLE_INDEX_ARN)
    )
    return table, index


def function_policy_statements(policies: PolicySet, *, table_region: Any = None) -> list[Json]:
    """The function role's IAM statements, each commented with why it is there.

    Least privilege: no ``*`` action anywhere; every write is confined to snapshots
    tagged ``CreatedBy=SmartVault`` (at creation, or already on the snapshot), and to
    restore tests' own volumes when a policy has ``verify``. ``table_region`` is the audit
    table's region as a CloudFormation value (None: the stack's own).
    """
    table_arn, table_index_arn = _table_arns(table_region)
    statements = [
        # Reading the inventory. EC2 Describe* calls support no resource-level
        # permissions, so "*" is the only resource IAM accepts for them. No
        # sts:GetCallerIdentity: AWS allows it to every principal, always.
        allow(
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
        allow(
            "CreateOnlyTaggedSnapshots",
            ["ec2:CreateSnapshot", "ec2:CreateSnapshots"],
            _SNAPSHOT_ARN,
            _TAGGED_AT_CREATION,
        ),
        # CreateSnapshots is also authorized against the instance and each of its volumes,
        # CreateSnapshot against the volume. Request tags are not evaluated for those
        # source resources, so they get their own statement, limited to this account.
        # Snapshotting reads a volume; it never changes it.
        allow(
            "SnapshotSourcesInThisAccount",
            ["ec2:CreateSnapshot", "ec2:CreateSnapshots"],
            [_INSTANCE_ARN, _VOLUME_ARN],
        ),
        # Tags only as part of creating a snapshot (TagSpecifications): never retagging an
        # existing snapshot, which could otherwise adopt a foreign snapshot for deletion.
        # Never a hold key, even then: the keys copied from instances (copy_tags: true)
        # cannot be listed here, so the hold keys are what every key must not be.
        allow(
            "TagOnlyWhileCreatingSnapshots",
            ["ec2:CreateTags"],
            _SNAPSHOT_ARN,
            {
                "StringEquals": {
                    "ec2:CreateAction": ["CopySnapshot", "CreateSnapshot", "CreateSnapshots"]
                },
                "ForAllValues:StringNotEquals": {"aws:TagKeys": _HOLD_KEYS},
            },
        ),
        # Cross-region copies (policy `copies`). EC2 authorises CopySnapshot against the copy
        # being made and against the source snapshot. The copy must carry CreatedBy=SmartVault
        # from the moment it exists, like any snapshot SmartVault makes ...
        allow(
            "CopyOnlyToTaggedSnapshots",
            ["ec2:CopySnapshot"],
            _NEW_SNAPSHOT_ARN,
            _TAGGED_AT_CREATION,
        ),
        # ... and the source must be a managed snapshot: the role cannot copy a snapshot that
        # someone else made (or shared) into a region where SmartVault would own the copy.
        # (The executor also checks the source's policy and recovery point tags.)
        allow(
            "CopyOnlyFromManagedSnapshots",
            ["ec2:CopySnapshot"],
            _EXISTING_SNAPSHOT_ARN,
            _MANAGED_SNAPSHOT,
        ),
        # Retention and archive: only snapshots that already carry both SmartVault tags
        # ; anyone else's snapshots stay out of reach.
        allow(
            "DeleteAndArchiveOnlyManagedSnapshots",
            ["ec2:DeleteSnapshot", "ec2:ModifySnapshotTier"],
            _SNAPSHOT_ARN,
            _MANAGED_SNAPSHOT,
        ),
        # The audit log and the recovery-point claims: written with conditional PutItem, read
        # by time range and by policy (the by-policy index). This table and its indexes only;
        # no Scan, no table management.
        allow(
            "AuditTableReadWrite",
            [
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
            ],
            [table_arn, table_index_arn],
        ),
        # UpdateItem: a pending record gets its outcome (DAY# partitions), a claim its lease
        # or its completion (CLAIM#); no other partition.
        allow(
            "AuditUpdateRecordsAndClaims",
            ["dynamodb:UpdateItem"],
            table_arn,
            _CLAIM_AND_RECORD_KEYS,
        ),
        # DeleteItem only releases claims: audit records can never be deleted by the function.
        allow("AuditDeleteOnlyClaims", ["dynamodb:DeleteItem"], table_arn, _CLAIM_KEYS),
        # The function writes its own log streams into its own log group, nothing else;
        # the group exists (this stack makes it), so no CreateLogGroup.
        allow(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            {"Fn::GetAtt": ["LogGroup", "Arn"]},
        ),
        # A run that failed (it raises, after auditing and notifying) is parked in this
        # stack's dead-letter queue, the asynchronous invocation's on-failure destination.
        allow(
            "FailedRunsToOwnDeadLetterQueue",
            ["sqs:SendMessage"],
            {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        ),
    ]
    topics = sorted({p.notify.sns_topic_arn for p in policies.policies if p.notify})
    if topics:
        # Notifications go only to the topics the policies name.
        statements.append(allow("PublishToPolicyTopics", ["sns:Publish"], topics))
    verifies = any(p.verify for p in policies.policies)
    if verifies:
        statements.extend(restore_test_statements())
    if verifies or any(p.copies for p in policies.policies):
        # Copying an encrypted snapshot (and any copy with kms_key_id) makes EC2 decrypt
        # with the source key and re-encrypt with the target key on the caller's behalf;
        # a restore test of an encrypted snapshot makes EC2 decrypt it into the volume.
        # Keys may be named by alias, which IAM cannot match as a key resource, so this
        # allows the keys of this account but only when EC2 uses them for the call
        # (kms:ViaService). Keys of other accounts also need their key policy to allow it.
        account_keys = {"Fn::Sub": "arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/*"}
        via_ec2 = {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}
        statements.append(
            allow(
                "UseKmsKeysOnlyThroughEc2",
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
        # EC2 holds a grant on the key while it writes the copy or the volume; the role may
        # only create grants that are for an AWS resource, asked for by EC2.
        statements.append(
            allow(
                "GrantKmsKeysOnlyToEc2",
                ["kms:CreateGrant"],
                account_keys,
                {**via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
    statements.append(_never_holds())
    return statements


def _never_holds() -> Json:
    """Belt and braces: no Allow above lets the function set or remove a hold (no
    ec2:DeleteTags at all, and no ec2:CreateTags with a hold key), and this Deny refuses
    both calls on anything whenever a hold key is among the tag keys, whatever is added
    to the role later. A hold is a person's: only they may set or lift it."""
    return {
        "Sid": "NeverSetOrRemoveHolds",
        "Effect": "Deny",
        "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
        "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": _HOLD_KEYS}},
    }


def restore_test_statements() -> list[Json]:
    """What restore tests (policy ``verify``) need: make test volumes from managed
    snapshots, delete only test volumes, and add ``smartvault:verified`` and nothing else
    to managed snapshots."""
    test_volume_keys = sorted({TAG_CREATED_BY, TAG_VERIFY, TAG_POLICY, TAG_NAME})
    return [
        # The zone a test volume is made in (DescribeVolumes, to wait for it, is among the
        # inventory reads). Describe* calls take no resource-level permissions.
        allow("ReadZonesForRestoreTests", ["ec2:DescribeAvailabilityZones"], "*"),
        # A test volume: only from a snapshot (ec2:ParentSnapshot present), tagged
        # CreatedBy=SmartVault and smartvault:verify in the same call (the only volumes the
        # role may delete), with those four tags and no other, so it can neither pass as
        # someone's volume nor be selected by a volume policy.
        allow(
            "CreateOnlyTaggedTestVolumesFromSnapshots",
            ["ec2:CreateVolume"],
            _VOLUME_ARN,
            {
                "StringEquals": {f"aws:RequestTag/{TAG_CREATED_BY}": CREATED_BY_VALUE},
                "Null": {f"aws:RequestTag/{TAG_VERIFY}": "false", "ec2:ParentSnapshot": "false"},
                "ForAllValues:StringEquals": {"aws:TagKeys": test_volume_keys},
            },
        ),
        # CreateVolume is also authorised against its source snapshot: only a managed one,
        # so the role cannot turn someone else's (or a shared) snapshot into a volume.
        allow(
            "CreateTestVolumesOnlyFromManagedSnapshots",
            ["ec2:CreateVolume"],
            _EXISTING_SNAPSHOT_ARN,
            _MANAGED_SNAPSHOT,
        ),
        # Tags on volumes only as part of CreateVolume (TagSpecifications): never retagging
        # an existing volume, which could otherwise make any volume deletable.
        allow(
            "TagVolumesOnlyWhileCreatingThem",
            ["ec2:CreateTags"],
            _VOLUME_ARN,
            {
                "StringEquals": {"ec2:CreateAction": "CreateVolume"},
                "ForAllValues:StringEquals": {"aws:TagKeys": test_volume_keys},
            },
        ),
        # Deleting volumes: only test volumes, which carry CreatedBy=SmartVault and a
        # smartvault:verify tag from their creation; no volume in use by anyone else.
        allow(
            "DeleteOnlyTestVolumes",
            ["ec2:DeleteVolume"],
            _VOLUME_ARN,
            {
                "StringEquals": {f"aws:ResourceTag/{TAG_CREATED_BY}": CREATED_BY_VALUE},
                "Null": {f"aws:ResourceTag/{TAG_VERIFY}": "false"},
            },
        ),
        # The one tag ever added to a snapshot that exists: smartvault:verified, on managed
        # snapshots only. ForAllValues with a non-null aws:TagKeys: every key of the call
        # is that one (without the Null check an empty key list would pass ForAllValues).
        allow(
            "TagManagedSnapshotsOnlyVerified",
            ["ec2:CreateTags"],
            _EXISTING_SNAPSHOT_ARN,
            {
                "StringEquals": {f"aws:ResourceTag/{TAG_CREATED_BY}": CREATED_BY_VALUE},
                "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_VERIFIED]},
                "Null": {"aws:TagKeys": "false", f"aws:ResourceTag/{TAG_POLICY}": "false"},
            },
        ),
    ]


def function_role(
    policies: PolicySet, *, extra_statements: Sequence[Json] = (), table_region: Any = None
) -> Json:
    """The function's role; ``extra_statements`` are appended (the fleet hub's), and
    ``table_region`` is as in :func:`function_policy_statements`."""
    statements = function_policy_statements(policies, table_region=table_region)
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
                        "Statement": [*statements, *extra_statements],
                    },
                }
            ],
        },
    }


def scheduler_role() -> Json:
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
                            allow(
                                "InvokeSmartVaultOnly",
                                ["lambda:InvokeFunction"],
                                {"Fn::GetAtt": ["Function", "Arn"]},
                            ),
                            # Park undeliverable invocations in this stack's DLQ.
                            allow(
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
