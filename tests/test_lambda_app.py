"""The Lambda handler, invoked as EventBridge would, against moto."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

import lambda_entry
import smartvault
from smartvault import lambda_app
from smartvault.deploy import build_package
from smartvault.deploy import package as package_module
from smartvault.errors import ConfigError
from smartvault.errors import PolicyError
from smartvault.formats.policy.schema import schema_sha256
from smartvault.formats.policy.validated import read_manifest
from smartvault.lambda_app import RunFailed
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots
from tests.moto_helpers import sns_inbox

ROOT = Path(__file__).resolve().parent.parent

POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
  - name: weekly
    selector:
      tags: {tier: gold}
    schedule:
      expression: cron(0 4 ? * SUN *)
"""

SCHEDULER_EVENT = {"policies": ["nightly"], "dry_run": False}
EVENTBRIDGE_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-28T03:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/smartvault"],
    "detail": {},
}


class FakeContext:
    """What the Lambda runtime passes: a name and the time left (ms), fixed or computed."""

    function_name = "smartvault"

    def __init__(self, remaining_ms: Callable[[], int] | int = 600_000) -> None:
        self._remaining = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining if isinstance(self._remaining, int) else self._remaining()


@pytest.fixture
def account(tmp_path, monkeypatch, aws):
    """A simulated account with an audit table, and the handler's environment."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "policies.yaml").write_text(POLICY)
    monkeypatch.setenv("SMARTVAULT_POLICY_PATH", str(tmp_path / "policies"))
    monkeypatch.setenv("SMARTVAULT_REGIONS", "us-east-1")
    monkeypatch.setenv("SMARTVAULT_AUDIT_TABLE", "audit")
    from smartvault.engine import Engine
    from smartvault.settings import Settings

    Engine(Settings(regions=("us-east-1",), audit_table="audit")).audit_log().ensure_table()
    return boto3.client("ec2", region_name="us-east-1")


def audit_items() -> list[dict]:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("audit")
    return [i for i in table.scan()["Items"] if str(i["pk"]).startswith("DAY#")]


@pytest.mark.parametrize(
    "event", [SCHEDULER_EVENT, EVENTBRIDGE_EVENT, {}], ids=["scheduler", "eventbridge", "manual"]
)
def test_each_event_form_creates_snapshots_audits_and_returns_a_summary(account, event, capsys):
    instances = launch(account, 2)

    summary = lambda_entry.handler(event, FakeContext())

    json.dumps(summary)  # JSON-serialisable
    assert summary["ok"] is True
    assert summary["outcomes"]["succeeded"] == 2
    assert {s["Tags"][0]["Value"] for s in managed_snapshots(account)}  # tagged
    created = {
        t["Value"]
        for s in managed_snapshots(account)
        for t in s["Tags"]
        if t["Key"] == "InstanceId"
    }
    assert created == set(instances)
    outcomes = sorted((i["action"], i["outcome"]) for i in audit_items())
    assert outcomes == [("create", "succeeded"), ("create", "succeeded")]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(line["run_id"] == summary["run_id"] for line in lines if "run_id" in line)
    assert any(line.get("action") == "create" and line["outcome"] == "succeeded" for line in lines)


def test_a_second_invoke_in_the_same_slot_creates_nothing(account):
    launch(account, 2)
    lambda_entry.handler({}, FakeContext())

    summary = lambda_entry.handler({}, FakeContext())

    assert summary["planned"]["create"] == 0
    assert len(managed_snapshots(account)) == 2


def test_dry_run_plans_but_changes_nothing(account):
    launch(account, 1)

    summary = lambda_entry.handler({"dry_run": True}, FakeContext())

    assert summary["dry_run"] is True
    assert summary["planned"]["create"] == 1
    assert managed_snapshots(account) == []


def test_little_time_left_stops_early_and_the_next_invoke_finishes(account):
    launch(account, 3)

    # Ten minutes left until the first recovery point exists, then ten seconds.
    def remaining() -> int:
        return 600_000 if not managed_snapshots(account) else 10_000

    first = lambda_entry.handler({}, FakeContext(remaining))
    second = lambda_entry.handler({}, FakeContext())

    assert first["stopped_early"] is True
    assert first["outcomes"]["succeeded"] == 1
    assert first["outcomes"]["not_started"] == 2
    assert second["outcomes"]["succeeded"] == 2
    assert len(managed_snapshots(account)) == 3


def test_policies_named_in_the_event_are_the_only_ones_applied(account):
    launch(account, 1, tags={"backup": "true"})
    launch(account, 1, tags={"tier": "gold"})

    summary = lambda_entry.handler({"policies": ["weekly"]}, FakeContext())

    assert summary["policies"] == ["weekly"]
    assert summary["outcomes"]["succeeded"] == 1
    assert summary["planned"]["create"] == 1


def test_invalid_policies_fail_the_invocation_before_any_aws_call(account, tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "p.yaml").write_text(POLICY.replace("cron(0 3 * * ? *)", "cron(0 3 * * * *)"))
    monkeypatch.setenv("SMARTVAULT_POLICY_PATH", str(bad))
    launch(account, 1)

    with pytest.raises(PolicyError, match="day-of-month and day-of-week"):
        lambda_entry.handler({}, FakeContext())
    assert managed_snapshots(account) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"dryrun": True}, "unknown event key"),
        ({"policies": ["nope"]}, "no policy named nope"),
        ({"dry_run": "yes"}, "true or false"),
        (["nightly"], "JSON object"),
        ({"policies": []}, "empty list"),
        ({"policies": None}, "list of policy names"),
        ({**EVENTBRIDGE_EVENT, "policies": []}, "empty list"),
        ({**EVENTBRIDGE_EVENT, "dryrun": True}, "unknown event key"),
        ({**EVENTBRIDGE_EVENT, "detail": {"dryrun": True}}, "unknown key"),
        ({**EVENTBRIDGE_EVENT, "detail": ["nightly"]}, "JSON object"),
        ({**EVENTBRIDGE_EVENT, "dry_run": True, "detail": {"dry_run": False}}, "give each once"),
        # The breaker is a person's to lift: no event can carry the second key.
        ({"allow_deletes": ["nightly"]}, "unknown event key"),
    ],
    ids=[
        "misspelt-key",
        "unknown-policy",
        "non-bool-dry-run",
        "not-an-object",
        "empty-policies",
        "null-policies",
        "envelope-empty-policies",
        "envelope-misspelt-key",
        "detail-misspelt-key",
        "detail-not-an-object",
        "given-twice",
        "allow-deletes",
    ],
)
def test_a_malformed_event_is_refused_before_anything_is_done(account, event, message):
    launch(account, 1)

    with pytest.raises(ConfigError, match=message):
        lambda_entry.handler(event, FakeContext())
    assert managed_snapshots(account) == []


@pytest.mark.parametrize(
    "event",
    [
        {**EVENTBRIDGE_EVENT, "policies": ["weekly"], "dry_run": True},
        {**EVENTBRIDGE_EVENT, "detail": {"policies": ["weekly"], "dry_run": True}},
    ],
    ids=["top-level", "in-detail"],
)
def test_an_eventbridge_envelope_honours_policies_and_dry_run(account, event):
    """Before, the envelope made the handler ignore both keys and run every policy for real."""
    launch(account, 1, tags={"backup": "true"})
    launch(account, 1, tags={"tier": "gold"})

    summary = lambda_entry.handler(event, FakeContext())

    assert summary["dry_run"] is True
    assert summary["policies"] == ["weekly"]
    assert summary["planned"]["create"] == 1
    assert managed_snapshots(account) == []


def test_importing_the_handler_stays_light():
    """No CLI layer, no test libraries, nothing only a person's commands use (the demo,
    the report page, plan --compare, holds, coverage, saved plans), and none of what only
    some runs need (the copy, archive and restore-test steps; the messages of invalid
    policies; jsonschema, for policies no package manifest vouches for) on the Lambda's
    import path: those are imported when a run needs them."""
    code = (
        "import sys, lambda_entry; "
        "heavy = ('click', 'pytest', 'hypothesis', 'moto', 'smartvault.cli', "
        "'smartvault.formats.render', 'smartvault.demo', 'smartvault.formats.report_html', "
        "'smartvault.formats.policy.revision', 'smartvault.core.compare', "
        "'smartvault.core.audit_summary', 'smartvault.aws.holds', 'smartvault.apply.holds', "
        "'smartvault.core.coverage', 'smartvault.core.plan_diff', 'smartvault.formats.plan_json', "
        "'smartvault.apply.copy', 'smartvault.apply.archive', 'smartvault.apply.verify', "
        "'smartvault.apply.waiting', 'smartvault.apply.restore', "
        "'smartvault.formats.policy.messages', "
        "'jsonschema', 'referencing', 'rpds', 'jsonschema_specifications'); "
        "print(sorted(m for m in sys.modules "
        "if any(m == h or m.startswith(h + '.') for h in heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.fixture
def moto_endpoint():
    """moto as a server on the loopback, for a handler run in a process of its own."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


#: A dry run of the unpacked package's handler: its summary, its planned actions, and
#: whether jsonschema (or a library only it needs) was imported; run in the unpacked zip.
_PACKAGED_RUN = """\
import json, sys
import lambda_entry
import smartvault
assert smartvault.__file__.startswith(sys.argv[2]), smartvault.__file__
summary = lambda_entry.handler({"dry_run": True}, None)
heavy = ("jsonschema", "referencing", "rpds", "jsonschema_specifications")
with open(sys.argv[1], "w") as out:
    json.dump({
        "summary": {k: v for k, v in summary.items() if k not in ("at", "run_id")},
        "imported": sorted(m for m in sys.modules if m.split(".")[0] in heavy),
    }, out)
"""


def run_packaged(task: Path, endpoint: str, tmp_path: Path) -> tuple[dict, list[str], list]:
    """Run the handler of the package unpacked at ``task``: its summary, the heavy modules
    it imported, and the actions it would take (from its log lines)."""
    result = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMARTVAULT_", "PYTHON"))}
    env.update(AWS_ENDPOINT_URL=endpoint, SMARTVAULT_REGIONS="us-east-1")
    out = subprocess.run(
        [sys.executable, "-c", _PACKAGED_RUN, str(result), str(task)],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    would = [
        {k: v for k, v in line.items() if k not in ("run_id", "time", "timestamp")}
        for line in map(json.loads, out.stdout.splitlines())
        if line.get("message", "").startswith("would ")
    ]
    got = json.loads(result.read_text())
    return got["summary"], got["imported"], would


def test_a_run_over_the_packaged_policies_never_imports_jsonschema_and_plans_the_same(
    moto_endpoint, tmp_path, monkeypatch
):
    """The manifest in the zip vouches for its policies: no schema, no jsonschema, the same
    plan as validating them; without the manifest they are validated (jsonschema loads)."""
    monkeypatch.setattr(package_module, "runtime_python", lambda: None)  # sources suffice
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "policies.yaml").write_text(POLICY)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_endpoint)
    launch(ec2, 2)
    info = build_package(
        tmp_path / "smartvault.zip", project_root=ROOT, policy_paths=[policies], vendor=False
    )
    task = tmp_path / "task"
    with zipfile.ZipFile(info.path) as archive:
        archive.extractall(task)
    manifest = task / "policies" / ".smartvault-validated.json"
    assert manifest.is_file()

    summary, imported, would = run_packaged(task, moto_endpoint, tmp_path)
    manifest.unlink()
    validated_summary, validated_imported, validated_would = run_packaged(
        task, moto_endpoint, tmp_path
    )

    assert imported == []
    assert "jsonschema" in validated_imported
    assert summary == validated_summary
    assert would == validated_would
    assert summary["planned"]["create"] == 2
    assert len(would) == 2


def test_a_malformed_manifest_means_the_packaged_policies_are_validated(
    account, tmp_path, monkeypatch
):
    """Never an error: the policies are validated in full, and an invalid one is refused."""
    monkeypatch.delenv("SMARTVAULT_POLICY_PATH")
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    (packaged / "p.yaml").write_text(POLICY.replace("cron(0 3", "cron(0 99"))
    (packaged / ".smartvault-validated.json").write_text("{not json")
    with pytest.raises(PolicyError, match=r"p\.yaml"):
        lambda_app.handle({"dry_run": True}, None, environ=os.environ, packaged_policies=packaged)
    (packaged / "p.yaml").write_text(POLICY)
    summary = lambda_app.handle(
        {"dry_run": True}, None, environ=os.environ, packaged_policies=packaged
    )
    assert summary["policies"] == ["nightly", "weekly"]


def test_a_policy_path_setting_is_validated_even_beside_a_manifest(account, tmp_path, monkeypatch):
    """SMARTVAULT_POLICY_PATH names policies no package vouches for: a manifest there,
    even one listing the file as it is, is not read."""
    folder = Path(os.environ["SMARTVAULT_POLICY_PATH"])
    (folder / "policies.yaml").write_text(
        POLICY.replace("    schedule:", "    xyzzy: 1\n    schedule:", 1)
    )
    digest = hashlib.sha256((folder / "policies.yaml").read_bytes()).hexdigest()
    (folder / ".smartvault-validated.json").write_text(
        json.dumps(
            {
                "schema_sha256": schema_sha256(),
                "smartvault_version": smartvault.__version__,
                "files": {"policies.yaml": digest},
            }
        )
    )
    assert read_manifest(folder) is not None
    with pytest.raises(PolicyError, match="unknown key `xyzzy`"):
        lambda_app.handle({"dry_run": True}, None, environ=os.environ, packaged_policies=folder)


NOTIFYING_POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
    notify:
      sns_topic_arn: TOPIC
      on: [always]
"""


def use_policy(tmp_path, monkeypatch, text: str) -> None:
    folder = tmp_path / "notifying"
    folder.mkdir()
    (folder / "p.yaml").write_text(text)
    monkeypatch.setenv("SMARTVAULT_POLICY_PATH", str(folder))


def test_a_run_publishes_one_message_per_policy_with_its_run_id(account, tmp_path, monkeypatch):
    _sns, sqs, topic, queue = sns_inbox()
    use_policy(tmp_path, monkeypatch, NOTIFYING_POLICY.replace("TOPIC", topic))
    launch(account, 2)

    summary = lambda_entry.handler({}, FakeContext())

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert summary["run_id"] in body["Message"]
    assert "2 created" in body["Subject"]
    assert summary["notifications"] == [
        {"policy": "nightly", "topic_arn": topic, "sent": True, "error": ""}
    ]
    assert ("notify", "succeeded") in {(i["action"], i["outcome"]) for i in audit_items()}


def test_a_failed_publish_is_audited_and_never_fails_the_backups(account, tmp_path, monkeypatch):
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    use_policy(tmp_path, monkeypatch, NOTIFYING_POLICY.replace("TOPIC", missing))
    launch(account, 1)

    summary = lambda_entry.handler({}, FakeContext())

    assert summary["ok"] is True
    assert summary["outcomes"]["succeeded"] == 1
    assert len(managed_snapshots(account)) == 1
    (note,) = summary["notifications"]
    assert note["sent"] is False
    assert "no-such-topic" in note["error"]
    notify_records = [i for i in audit_items() if i["action"] == "notify"]
    assert [(r["outcome"], r["resource_id"]) for r in notify_records] == [("failed", missing)]


def test_without_its_audit_table_a_run_changes_nothing_and_notifies_the_failure(
    account, tmp_path, monkeypatch
):
    """Unattended, nobody reads an error line: the failure goes to the policy's topic."""
    _sns, sqs, topic, queue = sns_inbox()
    use_policy(tmp_path, monkeypatch, NOTIFYING_POLICY.replace("TOPIC", topic))
    launch(account, 2)
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName="audit")

    with pytest.raises(RunFailed) as raised:
        lambda_entry.handler({}, FakeContext())

    summary = raised.value.summary
    assert summary["ok"] is False
    assert summary["outcomes"]["failed"] == 2
    assert managed_snapshots(account) == []
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    assert "FAILED" in body["Subject"]
    assert "audit table audit not found" in body["Message"]


def test_an_unknown_policy_name_suggests_the_close_one(account, capsys):
    with pytest.raises(ConfigError, match=r"no policy named nighty \(did you mean nightly\?\)"):
        lambda_entry.handler({"policies": ["nighty"]}, FakeContext())

    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["level"] == "ERROR"
    assert "known: nightly, weekly" in line["error"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SMARTVAULT_DEADLINE_MARGIN", "abc", "SMARTVAULT_DEADLINE_MARGIN='abc' is not a number"),
        ("SMARTVAULT_DEADLINE_MARGIN", "-5", "SMARTVAULT_DEADLINE_MARGIN='-5' is not a number"),
        ("SMARTVAULT_DEADLINE_MARGIN", "nan", "SMARTVAULT_DEADLINE_MARGIN='nan' is not a number"),
        ("SMARTVAULT_AUDIT_TTL_DAYS", "1y", "SMARTVAULT_AUDIT_TTL_DAYS='1y' is not a whole number"),
    ],
    ids=["margin-text", "margin-negative", "margin-nan", "ttl-text"],
)
def test_a_malformed_setting_fails_in_one_log_line_before_anything_is_done(
    account, monkeypatch, capsys, name, value, message
):
    monkeypatch.setenv(name, value)
    launch(account, 1)

    with pytest.raises(ConfigError, match=re.escape(message)):
        lambda_entry.handler({}, FakeContext())

    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["level"] == "ERROR"
    assert message in line["error"]
    assert managed_snapshots(account) == []


def test_called_by_hand_without_a_context_it_runs_without_a_deadline(account):
    launch(account, 2)

    summary = lambda_entry.handler({}, None)

    assert summary["ok"] is True
    assert summary["outcomes"]["succeeded"] == 2


def test_a_malformed_audit_table_name_fails_in_one_log_line_before_anything_is_done(
    account, monkeypatch, capsys
):
    monkeypatch.setenv("SMARTVAULT_AUDIT_TABLE", "my table")
    launch(account, 1)

    with pytest.raises(ConfigError, match="'my table' is not a DynamoDB table name"):
        lambda_entry.handler({}, FakeContext())

    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["message"] == "run failed before applying anything"
    assert managed_snapshots(account) == []


VOLUME_POLICY = """\
version: 1
policies:
  - name: nightly
    resource: volume
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
    notify:
      sns_topic_arn: TOPIC
      on: [failure]
"""


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_failed_action_raises_after_its_audit_records_and_notification(
    account, tmp_path, monkeypatch, capsys
):
    """The volume goes between plan and create, so EC2 refuses the create: the run
    audits it, notifies, writes its metrics, and then raises for Lambda's Errors."""
    from smartvault import lambda_app

    _sns, sqs, topic, queue = sns_inbox()
    use_policy(tmp_path, monkeypatch, VOLUME_POLICY.replace("TOPIC", topic))
    volume = account.create_volume(
        AvailabilityZone="us-east-1a",
        Size=8,
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": "backup", "Value": "true"}]}
        ],
    )["VolumeId"]
    log_plan = lambda_app._log_plan

    def plan_then_lose_the_volume(log, plan, *, dry_run):
        log_plan(log, plan, dry_run=dry_run)
        account.delete_volume(VolumeId=volume)

    monkeypatch.setattr(lambda_app, "_log_plan", plan_then_lose_the_volume)

    with pytest.raises(RunFailed) as raised:
        lambda_entry.handler({}, FakeContext())

    summary = raised.value.summary
    run_id = summary["run_id"]
    message = str(raised.value)
    assert message.startswith(f"run {run_id}: 1 action(s) failed (create nightly/{volume}/")
    assert message.endswith(
        f"0 not started. Its audit records: smartvault audit list --run-id {run_id}"
    )
    records = [(i["run_id"], i["action"], i["outcome"]) for i in audit_items()]
    assert sorted(records) == [(run_id, "create", "failed"), (run_id, "notify", "succeeded")]
    (sent,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(sent["Body"])
    assert body["Subject"] == "SmartVault nightly: FAILED (1 failed)"
    assert f"smartvault audit list --run-id {run_id}" in body["Message"]
    lines = log_lines(capsys)
    (doc,) = [line for line in lines if "_aws" in line]
    assert doc["ActionsFailed"] == 1
    assert doc["RecoveryPointsCreated"] == 0
    assert lines[-1]["message"] == "run finished"
    assert lines[-1]["level"] == "ERROR"


def test_a_deadline_stopped_run_returns_incomplete_and_says_what_was_not_started(
    account, tmp_path, monkeypatch, capsys
):
    _sns, sqs, topic, queue = sns_inbox()
    use_policy(
        tmp_path, monkeypatch, NOTIFYING_POLICY.replace("TOPIC", topic).replace("always", "failure")
    )
    instances = launch(account, 3)

    def remaining() -> int:
        # Ten minutes until the first recovery point exists, then 20 s: under the 30 s
        # margin (no new action), enough for the notification (twice 6 s).
        return 600_000 if not managed_snapshots(account) else 20_000

    summary = lambda_entry.handler({}, FakeContext(remaining))

    assert summary["ok"] is True  # nothing failed: not raised
    assert summary["complete"] is False
    assert summary["not_started"] == 2
    assert len(summary["not_started_actions"]) == 2
    assert {a["type"] for a in summary["not_started_actions"]} == {"create"}
    (sent,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(sent["Body"])
    assert body["Subject"] == "SmartVault nightly: INCOMPLETE (2 not started, 1 created)"
    text = body["Message"]
    assert "Nothing to do" not in text
    assert "Not started (2):" in text
    not_started = [a["recovery_point"] for a in summary["not_started_actions"]]
    for recovery_point in not_started:
        assert f"  - create {recovery_point} [us-east-1]" in text
    assert {rp.split("/")[1] for rp in not_started} < set(instances)
    assert f"smartvault audit list --run-id {summary['run_id']}" in text
    lines = log_lines(capsys)
    assert [
        line["recovery_point"] for line in lines if line["message"] == "create not started"
    ] == (not_started)
    (doc,) = [line for line in lines if "_aws" in line]
    assert (doc["ActionsNotStarted"], doc["RecoveryPointsCreated"]) == (2, 1)
    last = lines[-1]
    assert (last["message"], last["level"], last["complete"]) == ("run finished", "WARNING", False)


EMF_KEYS = {"Namespace", "Dimensions", "Metrics"}
SECTION_8 = {
    "RecoveryPointsCreated": "Count",
    "RecoveryPointsDeleted": "Count",
    "ActionsFailed": "Count",
    "ActionsNotStarted": "Count",
    "DeletesHeld": "Count",
    "VerificationsFailed": "Count",
    "NewestRecoveryPointAgeSeconds": "Seconds",
}


def test_a_run_writes_one_emf_document_per_policy_and_region(account, capsys):
    """The lines follow the Embedded Metric Format: ``_aws.CloudWatchMetrics`` names the
    namespace, the dimension set and each metric with its unit; values are top level."""
    launch(account, 2)
    lambda_entry.handler({}, FakeContext())  # the recovery points exist from here
    capsys.readouterr()

    summary = lambda_entry.handler({}, FakeContext())

    docs = [line for line in log_lines(capsys) if "_aws" in line]
    assert [(d["Policy"], d["Region"]) for d in docs] == [
        ("nightly", "us-east-1"),
        ("weekly", "us-east-1"),
    ]
    for doc in docs:
        assert isinstance(doc["_aws"]["Timestamp"], int)
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert set(directive) == EMF_KEYS
        assert directive["Namespace"] == "SmartVault"
        assert directive["Dimensions"] == [["Policy", "Region"]]
        for metric in directive["Metrics"]:
            assert set(metric) == {"Name", "Unit"}
            assert SECTION_8[metric["Name"]] == metric["Unit"]
            assert isinstance(doc[metric["Name"]], int | float)
        assert doc["run_id"] == summary["run_id"]
    nightly, weekly = docs
    names = [m["Name"] for m in nightly["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names == list(SECTION_8)  # zeros too: an alarm needs its data points
    assert nightly["RecoveryPointsCreated"] == 0
    assert nightly["ActionsFailed"] == nightly["DeletesHeld"] == 0
    assert 0 <= nightly["NewestRecoveryPointAgeSeconds"] < 600
    # weekly selects nothing here: its counts are written, it has no age to measure
    assert "NewestRecoveryPointAgeSeconds" not in weekly
    assert weekly["ActionsFailed"] == 0


def test_a_dry_run_logs_each_planned_action_and_warning_with_the_run_id(account, capsys):
    instances = launch(account, 2)

    summary = lambda_entry.handler({"dry_run": True}, FakeContext())

    lines = log_lines(capsys)
    assert all(line["run_id"] == summary["run_id"] for line in lines)
    would = [line for line in lines if line["message"] == "would create"]
    assert sorted(line["resource_id"] for line in would) == sorted(instances)
    for line in would:
        assert line["dry_run"] is True
        assert line["policy"] == "nightly"
        assert line["recovery_point"].startswith(f"nightly/{line['resource_id']}/")
        assert line["reason"].startswith("due:")
    assert not [line for line in lines if "_aws" in line]  # a dry run writes no metrics


def test_a_run_whose_deletions_safety_held_raises_notifies_and_counts_them(
    account, tmp_path, monkeypatch, capsys
):
    """The Lambda never lifts the breaker: tonight's backup is made, the nine deletions a
    keep_last cut asks for are not, and the run fails loudly for a person to decide."""
    from tests.cli.test_safety import seed_lineage

    _sns, sqs, topic, queue = sns_inbox()
    cut = NOTIFYING_POLICY.replace("TOPIC", topic) + "    retention: {keep_last: 1}\n"
    use_policy(tmp_path, monkeypatch, cut)
    (instance,) = launch(account, 1)
    seeded = seed_lineage(account, instance, 10)

    with pytest.raises(RunFailed) as raised:
        lambda_entry.handler({}, FakeContext())

    summary = raised.value.summary
    assert summary["ok"] is False
    assert summary["held_deletes"] == 9
    assert summary["outcomes"]["succeeded"] == 1  # the backup
    assert "safety held 9 deletion(s), none made" in str(raised.value)
    assert set(seeded) < {s["SnapshotId"] for s in managed_snapshots(account)}
    assert [i["action"] for i in audit_items() if i["action"] != "notify"] == ["create"]
    (sent,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(sent["Body"])
    assert body["Subject"] == "SmartVault nightly: DELETIONS HELD (1 created)"
    assert "smartvault apply --allow-deletes nightly" in body["Message"]
    assert (
        f"us-east-1: 9 deletions held (max_delete_fraction 0.5: this run would delete 9 of "
        f"the 10 completed recovery points of {instance})" in body["Message"]
    )
    (doc,) = [line for line in log_lines(capsys) if "_aws" in line]
    assert doc["DeletesHeld"] == 9
    assert doc["RecoveryPointsDeleted"] == 0
