"""The CLI against a simulated AWS served over HTTP on 127.0.0.1 (``--endpoint-url``)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from smartvault.cli import cli
from tests.moto_helpers import launch
from tests.moto_helpers import managed_snapshots

ROOT = Path(__file__).resolve().parents[2]

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
    url = f"http://{host}:{port}"
    # The server keeps moto's state in this process: start from an empty account.
    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")):
        pass
    try:
        yield url
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


def test_apply_into_a_pipe_closed_early_still_applies_every_action(endpoint, tmp_path: Path):
    """`smartvault apply --yes | head -n 1`: the reader goes away after one line, the run
    goes on to the end (it used to stop after the first action, silently, exit 1)."""
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=endpoint)
    instances = launch(ec2, 4)
    base = [sys.executable, "-m", "smartvault", "--endpoint-url", endpoint, "--region", "us-east-1"]
    subprocess.run([*base, "audit", "init"], check=True, capture_output=True, cwd=ROOT)

    proc = subprocess.Popen(
        [*base, "apply", "--yes", str(policy)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first_line = proc.stdout.readline()
    proc.stdout.close()  # what `head -n 1` does
    with proc.stderr:
        errors = proc.stderr.read().decode()
    code = proc.wait(timeout=120)

    assert first_line
    assert code == 0, errors
    assert "Traceback" not in errors
    assert "Exception ignored" not in errors
    created = {
        t["Value"] for s in managed_snapshots(ec2) for t in s["Tags"] if t["Key"] == "InstanceId"
    }
    assert created == set(instances), (first_line, errors)
