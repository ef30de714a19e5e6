"""A simulated fleet, end to end: 50 accounts × 2 regions through the real workflow.

The hub's workflow (:func:`smartvault.deploy.fleet.state_machine_definition`) runs in
moto's Step Functions interpreter (tests/fleet_sfn.py), one hub per region as deployed;
every shard invocation is the real ``lambda_app.handle`` with a shard event, in process.
Each shard assumes the member role in its account through moto's STS, whose assumed-role
credentials put every call in that account: 50 accounts of EC2, one audit table and one
results bucket in the hub. moto does not evaluate trust policies, so the one account
whose role "cannot be assumed" is refused the way STS refuses it (an AccessDenied from
AssumeRole), by a hook on the hub's STS calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from smartvault import lambda_app
from smartvault.aws.session import AwsSession
from smartvault.deploy.fleet import state_machine_definition
from smartvault.engine import Engine
from smartvault.formats import plan_json
from smartvault.settings import Settings
from tests.fleet_sfn import BUCKET
from tests.fleet_sfn import SHARD_LIST_KEY
from tests.fleet_sfn import FleetRun
from tests.fleet_sfn import run_fleet
from tests.moto_helpers import launch

ACCOUNTS = [f"{100000000000 + n:012d}" for n in range(1, 51)]
REGIONS = ("us-east-1", "eu-west-1")
HOME = "us-east-1"
#: the account whose role is refused: StackSet has not reached it yet
UNREACHED = ACCOUNTS[17]
POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: rate(1 day)
"""


class Context:
    function_name = "smartvault"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


def spoke(service: str, account: str, region: str) -> Any:
    """A client in a member account, as its role (moto keys accounts by credentials)."""
    creds = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/SmartVaultShard", RoleSessionName="seed"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@pytest.fixture
def fleet_world(tmp_path, monkeypatch):
    """50 accounts with two instances to back up in each region, the hub's audit table,
    and one account whose role STS refuses."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "fleet.yaml").write_text(POLICY)
    real_call = botocore.client.BaseClient._make_api_call

    def refusing(client: Any, operation: str, params: dict[str, Any]) -> Any:
        refused = f"::{UNREACHED}:" in params.get("RoleArn", "")
        if operation == "AssumeRole" and refused and params["RoleSessionName"] != "seed":
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not authorized to assume"}},
                operation,
            )
        return real_call(client, operation, params)

    with mock_aws():
        Engine(Settings(regions=(HOME,), audit_table="audit")).audit_log().ensure_table()
        boto3.client("s3", region_name=HOME).create_bucket(Bucket=BUCKET)
        for account in ACCOUNTS:
            for region in REGIONS:
                launch(spoke("ec2", account, region), 2)
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refusing)
        yield tmp_path / "policies"


def invoke_in(region: str, policies: Path):
    environ = {
        "SMARTVAULT_POLICY_PATH": str(policies),
        "SMARTVAULT_REGIONS": region,
        "AWS_REGION": region,
        "SMARTVAULT_AUDIT_TABLE": "audit",
        "SMARTVAULT_AUDIT_REGION": HOME,
        "SMARTVAULT_RESULTS_BUCKET": BUCKET,
        "SMARTVAULT_LOG_LEVEL": "ERROR",
    }

    def invoke(payload: dict[str, Any]) -> dict[str, Any]:
        return lambda_app.handle(payload, Context(), environ=environ, packaged_policies=policies)

    return invoke


def run_hubs(policies: Path, regions: tuple[str, ...] = REGIONS) -> dict[str, FleetRun]:
    """One execution of each region's hub workflow over its region's 50 shards."""
    definition = state_machine_definition(shard_list=(BUCKET, SHARD_LIST_KEY))
    return {
        region: run_fleet(
            definition,
            [{"account": a, "region": region} for a in ACCOUNTS],
            invoke_in(region, policies),
            region=region,
        )
        for region in regions
    }


def outputs(run: FleetRun) -> dict[str, dict[str, Any]]:
    return {
        FleetRun.shard_of(e)["account"]: json.loads(e["Output"])["result"] for e in run.succeeded
    }


def managed(account: str, region: str) -> list[dict[str, Any]]:
    return spoke("ec2", account, region).describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:CreatedBy", "Values": ["SmartVault"]}]
    )["Snapshots"]


def test_a_fleet_of_50_accounts_in_2_regions_backs_up_every_reachable_shard_once(
    fleet_world, capsys
):
    first = run_hubs(fleet_world)

    for run in first.values():
        assert run.status == "SUCCEEDED"
        # The unreachable account fails its own shard only, in each region.
        assert [FleetRun.shard_of(e)["account"] for e in run.failed] == [UNREACHED]
        done = outputs(run)
        assert sorted(done) == sorted(set(ACCOUNTS) - {UNREACHED})
        assert all(r["summary"]["create"] == 2 and r["remaining"] == 0 for r in done.values())
        assert len(run.invocations_of(UNREACHED)) == 1  # a function error ends the child
    for account in ACCOUNTS:
        for region in REGIONS:
            expected = 0 if account == UNREACHED else 2
            assert len(managed(account, region)) == expected, (account, region)
    # One audit table, in the hub's home region, says which account each action was in.
    table = boto3.resource("dynamodb", region_name=HOME).Table("audit")
    items = [i for i in table.scan()["Items"] if str(i["pk"]).startswith("DAY#")]
    creates = sorted((i["account_id"], i["region"]) for i in items if i["action"] == "create")
    reachable = [a for a in ACCOUNTS if a != UNREACHED]
    assert creates == sorted((a, r) for a in reachable for r in REGIONS for _ in range(2))
    assert "cannot work in account " + UNREACHED in capsys.readouterr().out

    # Again, in one region's hub (each shard's run is the same code in either region).
    second = run_hubs(fleet_world, ("eu-west-1",))

    for run in second.values():
        assert [FleetRun.shard_of(e)["account"] for e in run.failed] == [UNREACHED]
        assert all(
            r["summary"] == {**r["summary"], "create": 0, "delete": 0}
            for r in outputs(run).values()
        )
    for account in reachable:
        assert len(managed(account, "eu-west-1")) == 2


def test_a_shards_plan_in_s3_is_the_single_account_plan_of_that_account(fleet_world):
    account, region = ACCOUNTS[3], "eu-west-1"
    result = invoke_in(region, fleet_world)(
        {
            "shard": {"account": account, "region": region, "at": "2026-12-02T06:00:00Z"},
            "dry_run": True,
        }
    )

    key = result["plan"].removeprefix(f"s3://{BUCKET}/")
    body = boto3.client("s3", region_name=region).get_object(Bucket=BUCKET, Key=key)["Body"]
    from_shard = plan_json.loads(body.read())
    # The same account, planned the single-account way: its own credentials, no shard.
    own = AwsSession(regions=(region,)).assume_role(
        account, "SmartVaultShard", regions=(region,), session_name="alone"
    )
    alone = Engine(Settings(regions=(region,)), session=own)
    direct = alone.plan(alone.load_policies([str(fleet_world)]), at=from_shard.at)

    def comparable(plan: Any) -> dict[str, Any]:
        return {k: v for k, v in plan_json.plan_to_dict(plan).items() if k != "generated_at"}

    assert comparable(from_shard) == comparable(direct)
    assert from_shard.account_id == account
    assert result["summary"]["create"] == 2
    assert result["complete"] is True
