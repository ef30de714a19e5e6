"""The fleet: hub and spoke templates linted, the spoke's trust, and the workflow run in moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import yaml
from cfnlint.api import ManualArgs
from cfnlint.api import lint
from moto import mock_aws
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException

from smartvault.cli import cli
from smartvault.core.model import PolicySet
from smartvault.deploy import hub_template
from smartvault.deploy import hub_template_text
from smartvault.deploy import spoke_template
from smartvault.deploy import state_machine_definition
from smartvault.deploy.fleet import LISTER_CODE
from tests.cli import POLICY
from tests.deploy.test_alarms import full_policies
from tests.deploy.test_iam import _FAKE_ATTS
from tests.deploy.test_iam import _FAKE_REFS
from tests.deploy.test_iam import JUSTIFIED_FINDINGS
from tests.deploy.test_iam import _resolve
from tests.deploy.test_iam import verifying_policies
from tests.deploy.test_template import example_policies
from tests.deploy.test_template import shipped_policies
from tests.factories import make_policy
from tests.fleet_sfn import BUCKET
from tests.fleet_sfn import SHARD_LIST_KEY
from tests.fleet_sfn import moto_definition
from tests.fleet_sfn import run_fleet

HUB = "111111111111"
HUB_ROLE = f"arn:aws:iam::{HUB}:role/hub-FunctionRole-1"


def hub(policies: PolicySet | None = None, **options: Any) -> Any:
    template, _ = hub_template(policies or example_policies(), **options)
    return template


def serious_lint(text: str) -> list[str]:
    matches = lint(text, config=ManualArgs(regions=["us-east-1"]))
    return [f"{m.rule.id} {m.message}" for m in matches if m.rule.severity in ("error", "warning")]


# --- the templates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("policies", "options"),
    [
        (shipped_policies(), {}),
        (full_policies(), {"region": "eu-west-1"}),
        (
            PolicySet((*example_policies().policies, *verifying_policies().policies)),
            {"shard_list": ("lists", "fleet/shards.json"), "max_concurrency": 200},
        ),
    ],
    ids=["shipped", "copies-notify-verify", "verify-with-shard-list"],
)
def test_the_hub_template_passes_cfn_lint(policies, options):
    text, _ = hub_template_text(policies, **options)
    assert serious_lint(text) == []


def test_the_spoke_template_passes_cfn_lint():
    policies = PolicySet((*full_policies().policies, *verifying_policies().policies))
    assert serious_lint(json.dumps(spoke_template(policies))) == []


def test_cfn_lint_would_catch_a_broken_hub():
    template = hub()
    template["Resources"]["StateMachine"]["Properties"]["RoleArn"] = {"Ref": "NoSuchThing"}
    assert serious_lint(yaml.safe_dump(template)) != []


class TestHubIsTheSingleAccountTemplate:
    def test_it_has_the_function_role_table_queue_and_topic_but_no_schedules(self):
        resources = hub()["Resources"]
        for name in ("Function", "FunctionRole", "AuditTable", "DeadLetterQueue", "AlarmTopic"):
            assert name in resources
        assert "FunctionErrorsAlarm" in resources
        assert not [r for r in resources if r.startswith("PolicySchedule")]
        assert "CatchUpSchedule" not in resources
        assert "SchedulerRole" not in resources
        schedules = [r for r, v in resources.items() if v["Type"] == "AWS::Scheduler::Schedule"]
        assert schedules == ["Tick"]

    def test_the_description_and_metadata_say_the_tick_replaces_the_schedules(self):
        template = hub()
        assert "in place of per-policy and catch-up schedules" in template["Description"]
        metadata = template["Metadata"]["SmartVault"]
        assert metadata["Tick"] == "rate(1 hour)"
        assert "no catch-up schedule" in metadata["Schedules"]

    def test_the_function_gets_the_shard_settings_and_works_in_its_own_region(self):
        variables = hub()["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
        assert variables["SMARTVAULT_REGIONS"] == {"Ref": "AWS::Region"}
        assert variables["SMARTVAULT_SHARD_ROLE"] == {"Ref": "SpokeRoleName"}
        assert variables["SMARTVAULT_RESULTS_BUCKET"] == {"Ref": "ResultsBucket"}
        home = {"Fn::If": ["HasAuditRegion", {"Ref": "AuditRegion"}, {"Ref": "AWS::Region"}]}
        assert variables["SMARTVAULT_AUDIT_REGION"] == home

    def test_the_table_is_made_only_in_the_audit_region(self):
        template = hub()
        assert template["Parameters"]["AuditRegion"]["Default"] == ""
        assert template["Resources"]["AuditTable"]["Condition"] == "ShouldCreateAuditTable"
        created = template["Conditions"]["ShouldCreateAuditTable"]
        assert {"Condition": "IsAuditHome"} in created["Fn::And"]
        home = template["Conditions"]["IsAuditHome"]["Fn::Or"]
        assert {"Fn::Equals": [{"Ref": "AuditRegion"}, {"Ref": "AWS::Region"}]} in home

    def test_the_function_reaches_the_table_in_the_audit_region(self):
        statements = _function_statements(hub())
        table = next(s for s in statements if s.get("Sid") == "AuditTableReadWrite")
        text, variables = table["Resource"][0]["Fn::Sub"]
        assert ":dynamodb:${Home}:" in text
        assert "${AWS::Region}" not in text
        assert variables["Home"]["Fn::If"][0] == "HasAuditRegion"

    def test_reserved_concurrency_defaults_to_the_maps_max_concurrency(self):
        assert hub(max_concurrency=75)["Parameters"]["ReservedConcurrency"]["Default"] == "75"

    def test_state_machine_and_stack_set_use_the_templates_own_function(self):
        resources = hub()["Resources"]
        machine = resources["StateMachine"]["Properties"]
        assert machine["DefinitionSubstitutions"]["ShardFunctionArn"] == {
            "Fn::GetAtt": ["Function", "Arn"]
        }
        stack_set = resources["SpokeStackSet"]["Properties"]
        trusted = {p["ParameterKey"]: p["ParameterValue"] for p in stack_set["Parameters"]}
        assert trusted["HubFunctionRoleArn"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
        assert stack_set["PermissionModel"] == "SERVICE_MANAGED"
        assert stack_set["AutoDeployment"]["Enabled"] is True

    def test_failed_shards_have_their_own_alarm_on_the_map_runs_child_executions(self):
        resources = hub()["Resources"]
        alarm = resources["FailedShardsAlarm"]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", "ExecutionsFailed")
        (dimension,) = alarm["Dimensions"]
        assert dimension["Value"]["Fn::Sub"].endswith(
            ":stateMachine:${AWS::StackName}-fleet/Shards"
        )
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        for name in ("ExecutionsFailedAlarm", "ExecutionsTimedOutAlarm"):
            assert resources[name]["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]

    def test_the_function_role_may_assume_the_spoke_role_and_write_shard_results(self):
        statements = _function_statements(hub())
        (assume,) = [s for s in statements if "Fn::If" in s]
        condition, in_org, anywhere = assume["Fn::If"]
        assert condition == "HasOrganizationId"
        role = {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${SpokeRoleName}"}
        assert in_org["Resource"] == anywhere["Resource"] == role
        assert in_org["Condition"] == {
            "StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}
        }
        (write,) = [s for s in statements if s.get("Sid") == "WriteShardPlansAndResults"]
        assert write["Action"] == ["s3:PutObject"]
        assert write["Resource"] == {"Fn::Sub": "${ResultsBucket.Arn}/shards/*"}

    def test_a_stack_region_outside_a_policys_regions_is_a_warning(self):
        only_west = PolicySet((make_policy("west", regions=("us-west-2",)),))
        _, warnings = hub_template(only_west, region="eu-west-1")
        assert any("never back anything up" in w for w in warnings)
        _, none = hub_template(only_west, region="us-west-2")
        assert not any("never back anything up" in w for w in none)

    def test_the_stack_set_deploys_the_spoke_template(self):
        policies = full_policies()
        body = hub(policies)["Resources"]["SpokeStackSet"]["Properties"]["TemplateBody"]
        assert json.loads(body) == json.loads(json.dumps(spoke_template(policies)))

    def test_the_lister_fits_in_an_inline_zip_file(self):
        lister = hub()["Resources"]["ShardLister"]["Properties"]
        # CloudFormation takes at most 4,096 characters of inline Lambda code.
        assert len(lister["Code"]["ZipFile"]) <= 4096
        assert lister["Code"]["ZipFile"] == LISTER_CODE


def _function_statements(template: Any) -> list[Any]:
    (policy,) = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    statements: list[Any] = policy["PolicyDocument"]["Statement"]
    return statements


# --- the spoke's trust and IAM linting ---------------------------------------------


def _trust(template: Any) -> list[Any]:
    role = template["Resources"]["ShardRole"]["Properties"]
    statements: list[Any] = role["AssumeRolePolicyDocument"]["Statement"]
    return statements


def assert_only_the_hub_function_is_trusted(statements: list[Any]) -> None:
    """Every principal of every statement: the hub function's role, and nothing else."""
    hub_role = {"Ref": "HubFunctionRoleArn"}
    assert statements, "a trust policy without statements"
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        assert set(statement["Principal"]) == {"AWS"}, statement
        assert statement["Principal"]["AWS"] == hub_role, statement
        assert statement["Action"] == "sts:AssumeRole", statement
        assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": hub_role}}


def test_the_spoke_role_trusts_only_the_hub_function_role():
    assert_only_the_hub_function_is_trusted(_trust(spoke_template(example_policies())))


@pytest.mark.parametrize(
    "principal",
    [{"Service": "ec2.amazonaws.com"}, {"AWS": "*"}, {"AWS": HUB_ROLE, "Service": "x"}],
)
def test_the_trust_walk_fails_on_any_other_principal(principal):
    statements = _trust(spoke_template(example_policies()))
    statements.append({**statements[0], "Principal": principal})
    with pytest.raises(AssertionError):
        assert_only_the_hub_function_is_trusted(statements)


def test_the_spoke_role_has_only_the_ec2_and_kms_statements_of_the_function_role():
    policies = PolicySet((*full_policies().policies, *verifying_policies().policies))
    (policy,) = spoke_template(policies)["Resources"]["ShardRole"]["Properties"]["Policies"]
    actions = {a for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert actions
    assert all(a.startswith(("ec2:", "kms:")) for a in actions)
    assert "ec2:CreateSnapshots" in actions
    assert "ec2:DeleteSnapshot" in actions


_FLEET_REFS = {
    **_FAKE_REFS,
    "SpokeRoleName": "SmartVaultShard",
    "Home": "us-east-1",
    "OrganizationId": "o-abcdefghij",
}
_FLEET_ATTS = {
    **_FAKE_ATTS,
    "ResultsBucket": "arn:aws:s3:::hub-resultsbucket-1",
    "FunctionRole": HUB_ROLE,
}


# Beyond the single-account role's: CREDENTIALS_EXPOSURE on sts:AssumeRole, which the shard
# contract needs (the hub function works in a member account through its spoke role); it
# is confined to roles of the spoke role's name, in the Organization when its id is given.
FLEET_JUSTIFIED_FINDINGS = {*JUSTIFIED_FINDINGS, ("FunctionRole", "CREDENTIALS_EXPOSURE")}


# The spoke's trust policy is checked statement by statement above: parliament reads
# identity policies (it wants a Resource), not trust policies.
@pytest.mark.parametrize("role", ["hub-function", "spoke"])
def test_the_fleet_roles_pass_parliament_apart_from_justified_findings(role):
    parliament = pytest.importorskip("parliament", reason="the IAM linter parliament is missing")
    policies = PolicySet((*example_policies().policies, *verifying_policies().policies))
    if role == "hub-function":
        (policy,) = hub(policies)["Resources"]["FunctionRole"]["Properties"]["Policies"]
        document = policy["PolicyDocument"]
        justified = FLEET_JUSTIFIED_FINDINGS
    else:
        (policy,) = spoke_template(policies)["Resources"]["ShardRole"]["Properties"]["Policies"]
        document = policy["PolicyDocument"]
        justified = JUSTIFIED_FINDINGS
    analysed = parliament.analyze_policy_string(
        json.dumps(_resolve(document, _FLEET_REFS, _FLEET_ATTS)), include_community_auditors=True
    )
    findings = {("FunctionRole", f.issue) for f in analysed.findings}
    assert findings <= justified, [(f.issue, f.detail) for f in analysed.findings]


# --- the workflow's definition -------------------------------------------------------


def _parse(definition: Any) -> None:
    AmazonStateLanguageParser.parse(json.dumps(definition))


@pytest.mark.parametrize("shard_list", [None, (BUCKET, SHARD_LIST_KEY)], ids=["lister", "file"])
def test_the_definition_is_valid_amazon_states_language(shard_list):
    definition = state_machine_definition(shard_list=shard_list)
    # moto's grammar refuses an integer ToleratedFailurePercentage, which AWS accepts (the
    # field is a number from 0 to 100); moto accepts the same value written as a float.
    definition["States"]["RunShards"]["ToleratedFailurePercentage"] = 10.0
    _parse(definition)


def test_moto_refuses_the_integer_tolerance_and_a_broken_definition():
    definition = state_machine_definition()
    # only the integer tolerance: the moto difference above
    with pytest.raises(ASLParserException, match='"ToleratedFailurePercentage":10'):
        _parse(definition)
    broken = json.loads(moto_definition(definition, {"smartvault": "x", "smartvault-lister": "y"}))
    broken["States"]["RunShards"]["Next"] = 42
    with pytest.raises(ASLParserException, match="mismatched input '42'"):
        _parse(broken)


def test_the_map_passes_the_shard_contract_and_keeps_only_small_results():
    definition = state_machine_definition()
    run_shards = definition["States"]["RunShards"]
    assert run_shards["ItemSelector"]["shard"] == {
        "account.$": "$$.Map.Item.Value.account",
        "region.$": "$$.Map.Item.Value.region",
        "at.$": "$$.Execution.StartTime",
    }
    assert run_shards["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    task = run_shards["ItemProcessor"]["States"]["RunShard"]
    assert task["Parameters"]["Payload"] == {"shard.$": "$.shard", "dry_run.$": "$.dry_run"}
    assert set(task["ResultSelector"]) == {
        f"{k}.$" for k in ("complete", "remaining", "ok", "summary", "plan", "result")
    }


# --- the workflow, executed ------------------------------------------------------------


def _shards(n: int, region: str = "us-east-1") -> list[dict[str, str]]:
    return [{"account": f"{200000000000 + i}", "region": region} for i in range(n)]


def _result(remaining: int) -> dict[str, Any]:
    return {
        "complete": remaining == 0,
        "remaining": remaining,
        "ok": True,
        "summary": {"create": 1, "failed": 0},
        "plan": "s3://b/plan.json",
        "result": "s3://b/result.json",
    }


class RunFailed(Exception):
    pass


FILE = (BUCKET, SHARD_LIST_KEY)


def test_a_shard_is_invoked_again_while_work_remains_and_stops_at_zero():
    left = {"200000000000": [5, 2, 0], "200000000001": [0]}

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return _result(left[event["shard"]["account"]].pop(0))

    run = run_fleet(state_machine_definition(shard_list=FILE), _shards(2), invoke)

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert len(run.invocations_of("200000000000")) == 3
    assert len(run.invocations_of("200000000001")) == 1
    assert left == {"200000000000": [], "200000000001": []}
    assert run.failed == []
    assert len(run.succeeded) == 2
    first = json.loads(run.succeeded[0]["Output"])
    assert (first["round"], first["result"]["remaining"]) == (3, 0)
    assert first["result"]["plan"] == "s3://b/plan.json"
    event = run.invocations[0]
    assert set(event) == {"shard", "dry_run"}
    assert event["dry_run"] is False
    assert set(event["shard"]) == {"account", "region", "at"}
    # every shard of one execution is planned at the same moment, the execution's start
    assert len({i["shard"]["at"] for i in run.invocations}) == 1


def test_a_shard_with_work_left_after_the_last_round_fails_as_unfinished():
    run = run_fleet(
        state_machine_definition(shard_list=FILE, max_rounds=3),
        _shards(2),
        lambda event: _result(7 if event["shard"]["account"] == "200000000000" else 0),
    )

    assert len(run.invocations_of("200000000000")) == 3
    assert len(run.invocations_of("200000000001")) == 1
    assert [account_of(e) for e in run.failed] == ["200000000000"]
    assert [account_of(e) for e in run.succeeded] == ["200000000001"]


def account_of(entry: dict[str, Any]) -> str:
    return str(json.loads(entry["Input"])["shard"]["account"])


def test_a_failing_shard_fails_only_its_own_child():
    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        if event["shard"]["account"] == "200000000001":
            raise RunFailed("an action failed")
        return _result(0)

    run = run_fleet(state_machine_definition(shard_list=FILE), _shards(4), invoke)

    assert [account_of(e) for e in run.failed] == ["200000000001"]
    assert len(run.succeeded) == 3
    # a function error is not retried (the next tick plans the shard again)
    assert len(run.invocations_of("200000000001")) == 1


def test_in_moto_the_tolerated_failure_percentage_has_no_effect():
    """AWS fails this run (every shard failed, none tolerated); moto lets it succeed. If
    this starts failing, moto has learnt tolerance: test it then."""

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        raise RunFailed("an action failed")

    definition = state_machine_definition(shard_list=FILE, tolerated_failure_percentage=0)
    run = run_fleet(definition, _shards(2), invoke)

    assert run.status == "SUCCEEDED"
    assert len(run.failed) == 2


MANAGEMENT = "123456789012"  # moto's account: the Organization is created from it


def _lister_handler() -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(LISTER_CODE, "lister", "exec"), namespace)  # the code CloudFormation deploys
    return namespace["handler"]


def _organization() -> list[str]:
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    made = []
    for name in ("hub", "prod", "dev"):
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")
        made.append(status["CreateAccountStatus"]["AccountId"])
    return made


def test_the_lister_lists_the_organization_without_the_management_and_hub_accounts(
    monkeypatch,
):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("RESULTS_BUCKET", BUCKET)
    monkeypatch.setenv("PREFIX", "shard-lists/")
    with mock_aws():
        hub_account, prod, dev = _organization()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        context = type(
            "Context",
            (),
            {"invoked_function_arn": f"arn:aws:lambda:eu-west-1:{hub_account}:function:l"},
        )
        answer = _lister_handler()({"execution": "run-1"}, context)
        body = (
            boto3.client("s3", region_name="us-east-1")
            .get_object(Bucket=BUCKET, Key="shard-lists/run-1.json")["Body"]
            .read()
        )
    assert answer == {"bucket": BUCKET, "key": "shard-lists/run-1.json", "count": 2}
    assert json.loads(body) == [{"account": a, "region": "eu-west-1"} for a in sorted([prod, dev])]


def test_the_workflow_runs_every_account_the_lister_finds(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("RESULTS_BUCKET", BUCKET)
    monkeypatch.setenv("PREFIX", "shard-lists/")
    made: list[str] = []
    handler = _lister_handler()

    def setup() -> None:
        made.extend(_organization())

    def lister(event: dict[str, Any]) -> dict[str, Any]:
        context = type(
            "Context",
            (),
            {"invoked_function_arn": f"arn:aws:lambda:us-east-1:{made[0]}:function:l"},
        )
        result: dict[str, Any] = handler(event, context)
        return result

    run = run_fleet(
        state_machine_definition(), None, lambda e: _result(0), lister=lister, setup=setup
    )

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert len(run.lister_invocations) == 1
    invoked = sorted(i["shard"]["account"] for i in run.invocations)
    assert invoked == sorted(made[1:])  # not the hub (made[0]), not the management account
    assert MANAGEMENT not in invoked
    assert len(run.succeeded) == 2


# --- the command ----------------------------------------------------------------------


@pytest.fixture
def policy_dir(tmp_path):
    (tmp_path / "nightly.yaml").write_text(POLICY)
    return str(tmp_path)


def test_deploy_template_fleet_prints_a_hub_template_for_the_region(runner, policy_dir):
    result = runner.invoke(
        cli, ["--region", "eu-west-1", "deploy", "template", "--fleet", policy_dir]
    )
    assert result.exit_code == 0, result.output
    template = yaml.safe_load(result.stdout)
    assert "StateMachine" in template["Resources"]
    assert "Function" in template["Resources"]
    assert template["Metadata"]["SmartVault"]["Region"] == "eu-west-1"
    assert template["Parameters"]["ReservedConcurrency"]["Default"] == "40"


def test_deploy_template_fleet_takes_the_map_settings_and_a_shard_list(runner, policy_dir):
    result = runner.invoke(
        cli,
        ["deploy", "template", "--fleet", "--max-concurrency", "7",
         "--tolerated-failure-percentage", "25", "--shard-list", "s3://lists/a/b.json", policy_dir],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    template = yaml.safe_load(result.stdout)
    definition = template["Resources"]["StateMachine"]["Properties"]["Definition"]
    run_shards = definition["States"]["RunShards"]
    assert (run_shards["MaxConcurrency"], run_shards["ToleratedFailurePercentage"]) == (7, 25)
    assert run_shards["ItemReader"]["Parameters"] == {"Bucket": "lists", "Key": "a/b.json"}
    assert "ShardLister" not in template["Resources"]


@pytest.mark.parametrize(
    "flags",
    [["--max-concurrency", "5"], ["--tolerated-failure-percentage", "5"],
     ["--shard-list", "s3://b/k.json"]],
)  # fmt: skip
def test_fleet_only_flags_are_refused_without_fleet(runner, policy_dir, flags):
    result = runner.invoke(cli, ["deploy", "template", *flags, policy_dir])
    assert result.exit_code == 2
    assert "only with --fleet" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "us-east-1", "--region", "eu-west-1"], "one hub stack per region"),
        (["--catch-up", "rate(2 hours)"], "--fleet has no catch-up schedule"),
        (["--shard-list", "lists/a.json"], "give s3://BUCKET/KEY"),
    ],
)
def test_fleet_refuses_what_it_cannot_honour(runner, policy_dir, args, message):
    regions = [a for a in args if a == "--region" or a.endswith("-1")] if "--region" in args else []
    rest = [a for a in args if a not in regions]
    result = runner.invoke(cli, [*regions, "deploy", "template", "--fleet", *rest, policy_dir])
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_dry_run_reaches_every_shard_as_a_dry_run():
    run = run_fleet(
        state_machine_definition(shard_list=FILE), _shards(3), lambda e: _result(0), dry_run=True
    )
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert [i["dry_run"] for i in run.invocations] == [True, True, True]
