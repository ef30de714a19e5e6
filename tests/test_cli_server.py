"""The CLI against a simulated AWS served over HTTP on 127.0.0.1 (``--endpoint-url``)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from smartvault.cli import cli
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots

POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: rate(1 day)
"""


@pytest.fixture
def endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_a_full_cycle_through_an_endpoint_url(runner, endpoint, tmp_path: Path):
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=endpoint)
    instances = launch(ec2, 2)
    base = ["--endpoint-url", endpoint, "--region", "us-east-1"]

    init = runner.invoke(cli, [*base, "audit", "init"])
    applied = runner.invoke(cli, [*base, "apply", "--yes", str(policy)])
    again = runner.invoke(cli, [*base, "plan", "--format", "json", str(policy)])
    records = runner.invoke(cli, [*base, "audit", "list", "--format", "json"])

    assert init.exit_code == 0, init.output
    assert applied.exit_code == 0, applied.output
    assert json.loads(again.output)["summary"]["create"] == 0
    created = {
        t["Value"] for s in managed_snapshots(ec2) for t in s["Tags"] if t["Key"] == "InstanceId"
    }
    assert created == set(instances)
    assert [r["outcome"] for r in json.loads(records.output)] == ["succeeded", "succeeded"]
