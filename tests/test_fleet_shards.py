"""Shards from the terminal and from the workflow: --accounts, the shard event, refusals.

moto serves many accounts through assumed roles: a member account's calls are made with
the credentials STS gave for its role, and land in that account.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from smartvault import lambda_app
from smartvault.aws.session import AwsSession
from smartvault.cli import cli
from smartvault.core.fleet import Shard
from smartvault.core.fleet import ShardRun
from smartvault.core.fleet import fleet_order
from smartvault.core.fleet import results_prefix
from smartvault.engine import Engine
from smartvault.errors import AwsError
from smartvault.errors import ConfigError
from smartvault.formats.render.fleet import render_fleet_markdown
from smartvault.formats.render.fleet import render_fleet_text
from smartvault.formats.render.markdown import GITHUB_COMMENT_LIMIT
from smartvault.formats.shards import parse_accounts
from smartvault.settings import Settings
from tests.factories import make_plan
from tests.factories import utc
from tests.moto_helpers import launch
from tests.test_fleet_run import POLICY
from tests.test_fleet_run import spoke

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REFUSED = "222222222222"


class Context:
    function_name = "smartvault"

    def __init__(self, remaining_ms: int = 600_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def members(aws, tmp_path, monkeypatch):
    """Three member accounts with one instance each in two regions; STS refuses the role
    of the second (moto evaluates no trust policy, so it is refused as STS would)."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "fleet.yaml").write_text(POLICY)
    (tmp_path / "accounts.txt").write_text(
        "# the fleet\n111111111111  payments\n222222222222  # not reached yet\n333333333333\n"
    )
    Engine(Settings(regions=("us-east-1",), audit_table="audit")).audit_log().ensure_table()
    for account in ACCOUNTS:
        for region in ("us-east-1", "eu-west-1"):
            launch(spoke("ec2", account, region), 1)
    real_call = botocore.client.BaseClient._make_api_call

    def refusing(client: Any, operation: str, params: dict[str, Any]) -> Any:
        refused = f"::{REFUSED}:" in params.get("RoleArn", "")
        if operation == "AssumeRole" and refused and params["RoleSessionName"] != "seed":
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, operation
            )
        return real_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refusing)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fleet_args(*more: str) -> list[str]:
    return [
        "--region",
        "us-east-1",
        "--region",
        "eu-west-1",
        "--audit-table",
        "audit",
        *more,
        "policies",
        "--accounts",
        "accounts.txt",
    ]


def managed(account: str, region: str) -> int:
    return len(
        spoke("ec2", account, region).describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag:CreatedBy", "Values": ["SmartVault"]}]
        )["Snapshots"]
    )


# --- the terminal ------------------------------------------------------------------


def test_plan_accounts_leads_with_the_failed_shard_then_those_with_changes(members, runner):
    result = runner.invoke(cli, fleet_args("plan"))

    assert result.exit_code == 1, result.output  # a shard failed: the fleet is not ok
    lines = result.output.splitlines()
    assert lines[0] == "6 shards: 2 failed, 4 with changes, 0 with nothing to do."
    table = [line.split()[0] for line in lines[4:10]]
    assert table[:2] == [f"{REFUSED}/eu-west-1", f"{REFUSED}/us-east-1"]
    assert "cannot work in account 222222222222" in result.output
    assert set(table[2:]) == {
        f"{a}/{r}" for a in ("111111111111", "333333333333") for r in ("eu-west-1", "us-east-1")
    }
    assert result.output.count("=== 111111111111/") == 2  # one plan per shard with changes
    assert all(managed(a, "us-east-1") == 0 for a in ACCOUNTS)  # a plan changes nothing


def test_plan_accounts_as_json_gives_every_shards_plan(members, runner):
    result = runner.invoke(cli, fleet_args("plan", "--format", "json"))

    fleet = json.loads(result.output)
    assert fleet["summary"] == {**fleet["summary"], "shards": 6, "failed": 2, "changes": 4}
    by_shard = {(s["account"], s["region"]): s for s in fleet["shards"]}
    assert by_shard[(REFUSED, "us-east-1")]["plan"] is None
    ok = by_shard[("333333333333", "eu-west-1")]
    assert ok["plan"]["account_id"] == "333333333333"
    assert [a["type"] for a in ok["plan"]["actions"]] == ["create"]


def test_apply_accounts_backs_up_every_reachable_shard_and_a_second_plan_has_nothing(
    members, runner
):
    # One shard at a time: moto's in-process DynamoDB is not thread-safe (AWS's is).
    result = runner.invoke(cli, [*fleet_args("apply", "--yes"), "--max-concurrency", "1"])

    assert result.exit_code == 1  # the refused account
    for account in ACCOUNTS:
        for region in ("us-east-1", "eu-west-1"):
            assert managed(account, region) == (0 if account == REFUSED else 1)
    items = boto3.resource("dynamodb", region_name="us-east-1").Table("audit").scan()["Items"]
    audited = sorted(
        (i["account_id"], i["region"]) for i in items if str(i["pk"]).startswith("DAY#")
    )
    assert audited == sorted(
        (a, r) for a in ("111111111111", "333333333333") for r in ("eu-west-1", "us-east-1")
    )
    (members / "accounts.txt").write_text("111111111111\n333333333333\n")

    again = runner.invoke(cli, [*fleet_args("plan"), "--detailed-exitcode"])

    assert again.exit_code == 0, again.output
    assert again.output.startswith("4 shards: 0 failed, 0 with changes, 4 with nothing to do.")
    listed = runner.invoke(cli, ["--audit-table", "audit", "audit", "list"])
    assert "111111111111/us-east-1" in listed.output  # several accounts: each line says which


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1234\n", "accounts.txt:1:1: '1234' is not an AWS account id"),
        (
            "111111111111\n  111111111111\n",
            "accounts.txt:2:3: account 111111111111 is listed twice",
        ),
        ("# nobody\n\n", "accounts.txt: lists no account"),
    ],
)
def test_a_bad_accounts_file_is_refused_with_its_line_and_column(text, message, tmp_path):
    path = tmp_path / "accounts.txt"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_accounts(path.read_text(), "accounts.txt")


def test_accounts_file_comments_and_names_after_the_id_are_ignored():
    text = "# prod\n111111111111\tpayments\n222222222222, search  # later\n\n"
    assert parse_accounts(text, "f") == ("111111111111", "222222222222")


def test_fleet_flags_need_accounts_and_refuse_what_plans_one_account(members, runner):
    result = runner.invoke(cli, ["plan", "policies", "--role-name", "Other"])
    assert result.exit_code == 2
    assert "--role-name: only with --accounts" in result.output
    result = runner.invoke(cli, [*fleet_args("plan"), "--out", "plan.json"])
    assert result.exit_code == 2
    assert "--out and --compare plan one account" in result.output


def test_ou_lists_the_active_member_accounts_below_it_without_the_management_account(
    aws, tmp_path, runner, monkeypatch
):
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    prod = org.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    deep = org.create_organizational_unit(ParentId=prod, Name="deep")["OrganizationalUnit"]["Id"]
    made = []
    for parent, name in ((prod, "a"), (deep, "b"), (root, "c")):
        status = org.create_account(Email=f"{name}@example.com", AccountName=name)
        account = status["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=parent)
        made.append(account)
    from smartvault.aws.organizations import accounts_below

    found, management = accounts_below(AwsSession(regions=("us-east-1",)), prod)

    assert found == tuple(sorted(made[:2]))  # the OU and the one below it, not the root's
    everything, _ = accounts_below(AwsSession(regions=("us-east-1",)), root)
    assert management not in everything
    assert set(made) <= set(everything)


# --- the workflow's shard event ---------------------------------------------------------


def shard_environ(tmp_path, region: str = "eu-west-1") -> dict[str, str]:
    return {
        "SMARTVAULT_POLICY_PATH": str(tmp_path / "policies"),
        "SMARTVAULT_REGIONS": region,
        "AWS_REGION": region,
        "SMARTVAULT_AUDIT_TABLE": "audit",
        "SMARTVAULT_AUDIT_REGION": "us-east-1",
    }


def handle(members, event: dict[str, Any], context: Context | None = None) -> dict[str, Any]:
    return lambda_app.handle(
        event, context or Context(), environ=shard_environ(members), packaged_policies=members
    )


def now_text(offset: timedelta = timedelta()) -> str:
    from datetime import UTC
    from datetime import datetime

    return (datetime.now(UTC) + offset).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        ({"account": "1111", "region": "eu-west-1", "at": "now"}, "12-digit account id"),
        ({"account": "111111111111", "region": "us-east-1", "at": "now"}, "not one this function"),
        ({"account": "111111111111", "region": "eu-west-1", "at": "noon"}, "not an ISO 8601"),
        ({"account": "111111111111", "region": "eu-west-1"}, "missing at"),
        ({"account": "111111111111", "region": "eu-west-1", "at": "now", "x": 1}, "unknown key"),
        ({"account": "111111111111", "region": "eu-west-1", "at": "+1d"}, "in the future"),
        ({"account": "111111111111", "region": "eu-west-1", "at": "-2d"}, "overtaken"),
    ],
)
def test_a_shard_event_the_function_cannot_honour_is_refused_before_any_change(
    members, shard, message
):
    offsets = {"now": timedelta(), "+1d": timedelta(days=1), "-2d": timedelta(days=-2)}
    if shard.get("at") in offsets:
        shard = {**shard, "at": now_text(offsets[shard["at"]])}
    with pytest.raises(ConfigError, match=message):
        handle(members, {"shard": shard})
    assert managed("111111111111", "eu-west-1") == 0


def test_a_shard_stopped_by_the_deadline_says_what_remains_for_the_next_round(members):
    event = {"shard": {"account": "111111111111", "region": "eu-west-1", "at": now_text()}}

    # 29 s left: enough to read (24 s per EC2 request), inside the 30 s margin to start.
    cut = handle(members, event, Context(remaining_ms=29_000))

    assert (cut["complete"], cut["remaining"]) == (False, 1)
    done = handle(members, event)
    assert (done["complete"], done["remaining"], done["summary"]["create"]) == (True, 0, 1)
    assert managed("111111111111", "eu-west-1") == 1


def test_a_refused_role_names_the_account_the_role_and_what_to_check(aws):
    # moto evaluates no trust policy: STS's refusal is stubbed on the caller's client.
    hub = AwsSession(regions=("us-east-1",))
    sts = hub.client("sts", "us-east-1")
    member = hub.assume_role(
        "444444444444", "SmartVaultShard", regions=("us-east-1",), session_name="smartvault-t"
    )
    hub.account_id()  # asked of moto first: the stub below answers AssumeRole only
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", "AccessDenied", "not authorized", 403)
        with pytest.raises(AwsError) as refused:
            member.client("ec2", "us-east-1").describe_instances()
    text = str(refused.value)
    assert "cannot work in account 444444444444" in text
    assert "arn:aws:iam::444444444444:role/SmartVaultShard" in text  # the caller's partition
    assert "--role-name" in text


# --- the fleet's summary ---------------------------------------------------------------


def fifty_shards() -> list[ShardRun]:
    at = utc(2026, 12, 2, 3)
    runs = []
    for n in range(50):
        shard = Shard(f"{100000000000 + n:012d}", ("us-east-1", "eu-west-1")[n % 2], at)
        if n == 7:
            runs.append(ShardRun(shard, error="cannot work in account: AccessDenied"))
        elif n % 5 == 0:
            runs.append(ShardRun(shard, plan=make_plan(account_id=shard.account)))
        else:
            quiet = make_plan(account_id=shard.account, actions=(), warnings=())
            runs.append(ShardRun(shard, plan=quiet))
    return fleet_order(runs)


def test_fifty_shards_read_in_a_terminal_failed_first_and_quiet_ones_counted():
    runs = fifty_shards()
    text = render_fleet_text(runs)
    lines = text.splitlines()

    assert lines[0] == "50 shards: 1 failed, 10 with changes, 39 with nothing to do."
    assert "FAILED" in lines[4]
    assert "100000000007" in lines[4]
    assert "... and 39 shards with nothing to do and no warning (-v lists them)" in text
    assert max(len(line) for line in lines[:20]) <= 120


def test_fifty_shards_fit_a_pull_request_comment():
    runs = fifty_shards()
    markdown = render_fleet_markdown(runs)

    assert len(markdown) <= GITHUB_COMMENT_LIMIT
    assert markdown.index("**failed**") < markdown.index("| changes |")
    assert "39 shards with nothing to do" in markdown
    assert markdown.count("<details><summary>1000000000") == 10  # every changing shard's plan


def test_a_shards_results_go_under_its_tick_account_region_and_run():
    shard = Shard("111111111111", "eu-west-1", utc(2026, 12, 2, 3, 0))
    assert results_prefix(shard, "R1") == "shards/20261202T0300Z/111111111111/eu-west-1/R1/"


@pytest.mark.parametrize(
    ("arn", "partition"),
    [
        ("arn:aws-us-gov:sts::123456789012:assumed-role/hub/x", "aws-us-gov"),
        ("arn:aws-cn:iam::123456789012:role/hub", "aws-cn"),
        (None, "aws"),
        ("not an arn", "aws"),
    ],
)
def test_member_roles_are_named_in_the_callers_partition(arn, partition):
    from smartvault.aws.session import arn_partition
    from smartvault.aws.session import role_arn

    assert role_arn(arn_partition(arn), "444444444444", "R") == (
        f"arn:{partition}:iam::444444444444:role/R"
    )
