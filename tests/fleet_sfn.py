"""Run the fleet workflow for real in moto's Step Functions interpreter.

``run_fleet(definition, shards, invoke)`` creates the results bucket, the shard list, a
shard function (and a lister), the state machine from ``definition`` (the
CloudFormation substitutions filled), starts one execution and waits for it. Every
``lambda:invoke`` the workflow makes reaches ``invoke`` (or ``lister``) as the decoded
payload; what it returns is the function's response, and what it raises is a function
error (``{"errorType": <class name>, "errorMessage": <text>}``, as Lambda reports an
unhandled exception). Call it inside nothing: it opens its own ``mock_aws``.

Where moto 5.2.5 differs from AWS, checked here (the tests in tests/deploy/test_fleet.py
pin the ones that matter, so a moto upgrade that changes them shows):

- ``ToleratedFailurePercentage`` has no effect (moto logs "ToleratedFailurePercentage
  declarations currently have no effect"), and more: a failed child execution never
  fails the map run, even at 0 %. In AWS the map run (and the execution) fails once
  more than that share of items failed. Tolerance cannot be tested here.
- Its ASL grammar refuses an integer ``ToleratedFailurePercentage`` (AWS accepts any
  number 0-100): the harness gives moto the same value as a float.
- ``ResultWriter`` writes only ``<prefix><map run id>/manifest.json``, with empty
  ``ResultFiles``; AWS also writes ``SUCCEEDED_0.json``, ``FAILED_0.json`` (and
  ``PENDING_0.json``). The harness writes those two files itself, in AWS's format (a
  JSON array of ``{"Input", "Output" | "Error"/"Cause", "Status"}``, Input and Output as
  JSON text), from the outputs moto's map run produced (a failed child leaves ``None``
  in its place, in item order), and lists them in the manifest; :class:`FleetRun` reads
  them back from S3. moto keeps no error of a failed child, so a FAILED item has no
  ``Error``/``Cause`` here (AWS gives them).
- Child executions are not visible through ``ListExecutions``/``DescribeExecution``, and
  the parent's history holds only ``MapRun*`` events, not the children's.
- Retries (``Retry``) wait their real intervals: a stub that raises a retried Lambda
  error (``Lambda.TooManyRequestsException``) makes a test take minutes; raise others.
- ``$$.Execution.StartTime`` (the shards' ``at``) is written with microseconds and an
  offset (``2026-12-02T20:42:19.963346+00:00``); AWS writes milliseconds and ``Z``
  (``2026-12-02T20:42:19.963Z``). A handler must read both.
- ``$$.Execution.Name`` is null unless StartExecution is given a name: the harness names
  its execution (:data:`EXECUTION_NAME`).
- The result files' ``Input`` here is the item as read (``{"shard": {account, region},
  "dry_run"}``, without ``at``); the ``Output`` is the child's output as moto made it.
- IAM is not evaluated: the state machine's role is not checked.
- The map runs its children in threads of this process, and moto's backends are not
  thread-safe (a DynamoDB Query iterating a table while another thread puts an item fails
  with "dictionary changed size during iteration"). In AWS every invocation has its own
  sandbox and DynamoDB serves them all; here the shard invocations run one at a time.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.awslambda.models import LambdaBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3 import (  # noqa: E501
    ResourceEvalS3,
)

Json = dict[str, Any]

BUCKET = "smartvault-fleet-results"
SHARD_LIST_KEY = "given/shards.json"
SHARD_FUNCTION = "smartvault"
LISTER_FUNCTION = "smartvault-lister"
#: The execution's name (moto gives ``$$.Execution.Name`` as null when none is given).
EXECUTION_NAME = "fleet-run-1"
#: The longest a run may take before the harness gives up (it is a hang, not slowness).
WAIT_SECONDS = 120.0


@dataclass
class FleetRun:
    """One execution: its outcome, the map's result files and every invocation made."""

    status: str
    output: Json | None
    error: str | None
    cause: str | None
    #: The map's result files, read back from S3: one entry per shard, as AWS writes them.
    succeeded: list[Json]
    failed: list[Json]
    #: Every shard invocation's payload, in the order made.
    invocations: list[Json] = field(default_factory=list)
    lister_invocations: list[Json] = field(default_factory=list)

    def invocations_of(self, account: str, region: str | None = None) -> list[Json]:
        return [
            i
            for i in self.invocations
            if i["shard"]["account"] == account
            and (region is None or i["shard"]["region"] == region)
        ]

    @staticmethod
    def shard_of(entry: Json) -> Json:
        """The shard of a result-file entry (its Input is the child execution's input)."""
        shard: Json = json.loads(entry["Input"])["shard"]
        return shard


def run_fleet(
    definition: Json,
    shards: list[Json] | None,
    invoke: Callable[[Json], Json],
    *,
    region: str = "us-east-1",
    lister: Callable[[Json], Json] | None = None,
    setup: Callable[[], None] | None = None,
    dry_run: bool = False,
) -> FleetRun:
    """Run ``definition`` once over ``shards`` (written to S3 where its ItemReader reads
    them; None when the definition lists them itself, through ``lister``).

    ``definition`` is :func:`smartvault.deploy.fleet.state_machine_definition`'s, made with
    ``shard_list=(bucket, key)`` (for example ``(BUCKET, SHARD_LIST_KEY)``; ``shards`` are
    written there) or without one (then the lister's answer says where they are).
    ``setup`` runs inside the mock before the execution starts (for example to create an
    Organization). Inside a ``mock_aws`` of the caller's, several runs share one world
    (a second run over what the first made); the bucket, role and functions are made once.
    """
    invocations: list[Json] = []
    lister_invocations: list[Json] = []
    one_at_a_time = threading.Lock()
    map_outputs: list[list[Any]] = []

    def fake_invoke(
        backend: Any,
        function_name: str,
        qualifier: str,
        body: bytes,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        payload = json.loads(body)
        is_lister = function_name.endswith(":" + LISTER_FUNCTION)
        (lister_invocations if is_lister else invocations).append(payload)
        handler = lister if is_lister else invoke
        assert handler is not None, f"no handler for {function_name}"
        try:
            with one_at_a_time:  # see the module's notes: moto's backends share no lock
                response = handler(payload)
        except Exception as exc:  # a function error, as Lambda reports an unhandled one
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
        return json.dumps(response).encode()

    original_writer = ResourceEvalS3._handle_put_object

    def capturing_writer(env: Any, part: Any, credentials: Any) -> None:
        map_outputs.append(list(env.stack[-2]))  # the child outputs, under the parameters
        original_writer(env, part, credentials)

    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),  # type: ignore[arg-type]
        mock.patch.object(LambdaBackend, "invoke", fake_invoke),
        mock.patch.object(ResourceEvalS3, "_handle_put_object", staticmethod(capturing_writer)),
    ):
        s3 = boto3.client("s3", region_name=region)
        create = {} if region == "us-east-1" else {"LocationConstraint": region}
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        if shards is not None:
            bucket, key = _shard_list_location(definition)
        for name in {BUCKET, bucket} if shards is not None else {BUCKET}:
            if name not in buckets:
                s3.create_bucket(
                    Bucket=name, **({"CreateBucketConfiguration": create} if create else {})
                )
        if shards is not None:
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(shards).encode())
        if setup is not None:
            setup()
        iam = boto3.client("iam", region_name=region)
        roles = {r["RoleName"]: r["Arn"] for r in iam.list_roles()["Roles"]}
        role = (
            roles.get("smartvault-fleet")
            or iam.create_role(RoleName="smartvault-fleet", AssumeRolePolicyDocument="{}")["Role"][
                "Arn"
            ]
        )
        arns = {name: _function(region, role, name) for name in (SHARD_FUNCTION, LISTER_FUNCTION)}
        sfn = boto3.client("stepfunctions", region_name=region)
        machine = sfn.create_state_machine(
            name=f"smartvault-fleet-{uuid.uuid4().hex[:8]}",
            definition=moto_definition(definition, arns),
            roleArn=role,
        )["stateMachineArn"]
        execution = sfn.start_execution(
            stateMachineArn=machine, name=EXECUTION_NAME, input=json.dumps({"dry_run": dry_run})
        )["executionArn"]
        described = _wait(sfn, execution)
        succeeded, failed = _result_files(s3, definition, described, map_outputs)
    output = described.get("output")
    return FleetRun(
        status=described["status"],
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
        succeeded=succeeded,
        failed=failed,
        invocations=invocations,
        lister_invocations=lister_invocations,
    )


def moto_definition(definition: Json, arns: dict[str, str]) -> str:
    """The definition as moto takes it: substitutions filled, the tolerance a float."""
    moto_ready = json.loads(json.dumps(definition))
    for state in moto_ready["States"].values():
        if "ToleratedFailurePercentage" in state:
            state["ToleratedFailurePercentage"] = float(state["ToleratedFailurePercentage"])
    text = json.dumps(moto_ready)
    for name, value in (
        ("ShardFunctionArn", arns[SHARD_FUNCTION]),
        ("ShardListerArn", arns[LISTER_FUNCTION]),
        ("ResultsBucket", BUCKET),
    ):
        text = text.replace("${" + name + "}", value)
    return text


def _function(region: str, role: str, name: str) -> str:
    client = boto3.client("lambda", region_name=region)
    known = {f["FunctionName"]: f["FunctionArn"] for f in client.list_functions()["Functions"]}
    if name in known:
        return known[name]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr(
            "index.py", "def handler(event, context):\n    raise NotImplementedError\n"
        )
    arn: str = client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]
    return arn


def _wait(sfn: Any, execution: str) -> Json:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        described: Json = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"the execution still runs after {WAIT_SECONDS:.0f} s")
        time.sleep(0.02)


def _shard_list_location(definition: Json) -> tuple[str, str]:
    """Where the definition's map reads a given shard list (``shard_list=(bucket, key)``)."""
    (reader,) = [s["ItemReader"] for s in definition["States"].values() if "ItemReader" in s]
    parameters = reader["Parameters"]
    if "Bucket" not in parameters:
        raise ValueError("this definition lists its shards itself: give shards=None and a lister")
    return parameters["Bucket"], parameters["Key"]


def _result_files(
    s3: Any, definition: Json, described: Json, map_outputs: list[list[Any]]
) -> tuple[list[Json], list[Json]]:
    """Write the result files moto leaves out (see the module's notes), read them back."""
    output = json.loads(described.get("output") or "{}")
    details = (output.get("map_run") or {}).get("ResultWriterDetails")
    if not details or not map_outputs:
        return [], []
    manifest_key = details["Key"]
    items = _items_read(s3, definition, output)
    files: dict[str, list[Json]] = {"SUCCEEDED": [], "FAILED": []}
    for item, child_output in zip(items, map_outputs[-1], strict=True):
        entry: Json = {"Input": json.dumps(item, default=str)}
        if child_output is None:
            files["FAILED"].append({**entry, "Status": "FAILED"})
        else:
            child = json.dumps(child_output, default=str)
            files["SUCCEEDED"].append({**entry, "Output": child, "Status": "SUCCEEDED"})
    prefix = manifest_key.rsplit("/", 1)[0]
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    for status, entries in files.items():
        key = f"{prefix}/{status}_0.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(entries).encode())
        manifest["ResultFiles"][status] = [{"Key": key, "Size": len(json.dumps(entries))}]
    s3.put_object(Bucket=BUCKET, Key=manifest_key, Body=json.dumps(manifest).encode())
    read = {
        status: json.loads(s3.get_object(Bucket=BUCKET, Key=files_[0]["Key"])["Body"].read())
        for status, files_ in manifest["ResultFiles"].items()
        if files_
    }
    return read.get("SUCCEEDED", []), read.get("FAILED", [])


def _items_read(s3: Any, definition: Json, output: Json) -> list[Json]:
    """The child inputs the map started, from the shard list it read (in its order)."""
    listed = output.get("shard_list")
    bucket, key = (listed["bucket"], listed["key"]) if listed else _shard_list_location(definition)
    shards = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return [{"shard": shard, "dry_run": output.get("dry_run")} for shard in shards]
