"""Every AWS request of a Lambda run ends before the function's deadline."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from moto.server import ThreadedMotoServer

import lambda_entry
from smartvault.aws.errors import DeadlineReached
from smartvault.aws.session import AwsSession
from smartvault.deadline import Deadline
from smartvault.engine import Engine
from smartvault.lambda_app import RunFailed
from smartvault.settings import Settings
from tests.moto_helpers import launch
from tests.stalling import black_hole
from tests.stalling import stalling_proxy


class TestTheRule:
    def test_each_request_gets_a_fifth_of_the_margin(self):
        deadline = Deadline(lambda: 100.0, margin=30.0)

        assert deadline.request_seconds == pytest.approx(6.0)
        assert deadline.connect_timeout + deadline.read_timeout == pytest.approx(6.0)

    def test_ec2_needs_room_for_its_audit_record_and_the_notification(self):
        deadline = Deadline(lambda: 100.0, margin=30.0)

        assert deadline.needed("ec2") == pytest.approx(24.0)
        assert deadline.needed("sns") == pytest.approx(12.0)
        assert deadline.needed("dynamodb") == pytest.approx(6.0)

    @pytest.mark.parametrize("margin", [0.0, 5.0])
    def test_a_small_margin_still_gives_each_request_two_seconds(self, margin):
        deadline = Deadline(lambda: 100.0, margin=margin)

        assert deadline.request_seconds == pytest.approx(2.0)
        assert deadline.connect_timeout > 0

    @pytest.mark.parametrize(("left", "stops"), [(30.0, False), (29.9, True)])
    def test_no_action_starts_inside_the_margin(self, left, stops):
        assert Deadline(lambda: left, margin=30.0).stop_starting() is stops

    @pytest.mark.parametrize(("left", "slept"), [(100.0, 20.0), (10.0, 4.0), (3.0, 0.0)])
    def test_a_backoff_never_sleeps_into_the_last_request(self, left, slept):
        waits: list[float] = []

        Deadline(lambda: left, margin=30.0).bounded_sleep(waits.append)(20.0)

        assert waits == [pytest.approx(slept)]


def test_a_request_that_could_not_end_in_time_is_never_sent():
    with black_hole() as (url, connections):
        session = AwsSession(
            regions=["us-east-1"], endpoint_url=url, deadline=Deadline(lambda: 5.0, margin=30.0)
        )

        with pytest.raises(DeadlineReached, match="ec2:DescribeSnapshots not sent"):
            session.client("ec2", "us-east-1").describe_snapshots(OwnerIds=["self"])

    assert connections == []


def test_a_stalled_request_times_out_inside_the_deadline_and_is_not_retried_past_it():
    """Before, a stalled call waited for botocore's 60 s read timeout, then retried."""
    end = [float("inf")]
    deadline = Deadline(lambda: end[0] - time.monotonic(), margin=2.5, min_request_seconds=0)
    with black_hole() as (url, connections):
        session = AwsSession(regions=["us-east-1"], endpoint_url=url, deadline=deadline)
        ec2 = session.client("ec2", "us-east-1")
        end[0] = time.monotonic() + 3.0

        with pytest.raises(DeadlineReached, match=r"DescribeSnapshots \(retry\) not sent"):
            ec2.describe_snapshots(OwnerIds=["self"])

        assert time.monotonic() < end[0]
    assert len(connections) == 1


@pytest.fixture
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_a_lambda_run_whose_create_stalls_ends_before_the_deadline_with_nothing_pending(
    moto_endpoint, tmp_path, monkeypatch
):
    """The stalled CreateSnapshots used to end 26 s after the deadline: killed there, its
    record would stay pending and its claim held. Now the run ends in time, every record
    is final, and the action it could not start is reported as not started."""
    (tmp_path / "p.yaml").write_text(
        "version: 1\npolicies:\n  - name: nightly\n    selector:\n      tags: {backup: 'true'}"
        "\n    schedule:\n      expression: rate(1 day)\n"
    )
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_endpoint)
    launch(ec2, 2)
    Engine(
        Settings(regions=("us-east-1",), endpoint_url=moto_endpoint, audit_table="audit")
    ).audit_log().ensure_table()
    stalled = threading.Event()
    deadline_at: list[float] = []

    def stalls(body: bytes) -> bool:
        if b"Action=CreateSnapshots" not in body:
            return False
        if not stalled.is_set():  # the function has 4.5 s left from here
            deadline_at.append(time.monotonic() + 4.5)
            stalled.set()
        return True

    class Context:
        function_name = "smartvault"

        def get_remaining_time_in_millis(self) -> int:
            left = deadline_at[0] - time.monotonic() if deadline_at else 600.0
            return int(left * 1000)

    with stalling_proxy(moto_endpoint, stalls) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)
        monkeypatch.setenv("SMARTVAULT_POLICY_PATH", str(tmp_path))
        monkeypatch.setenv("SMARTVAULT_REGIONS", "us-east-1")
        monkeypatch.setenv("SMARTVAULT_AUDIT_TABLE", "audit")
        monkeypatch.setenv("SMARTVAULT_DEADLINE_MARGIN", "5")  # 2 s a request, the least

        with pytest.raises(RunFailed) as raised:  # the stalled create failed
            lambda_entry.handler({}, Context())
        finished = time.monotonic()
        summary = raised.value.summary

    assert stalled.is_set()
    assert finished < deadline_at[0]
    assert summary["outcomes"]["failed"] == 1
    assert summary["outcomes"]["not_started"] == 1
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=moto_endpoint)
    records = [
        item
        for item in dynamodb.scan(TableName="audit")["Items"]
        if not item["pk"]["S"].startswith("CLAIM#")
    ]
    assert [r["outcome"]["S"] for r in records if r["action"]["S"] == "create"] == ["failed"]
    assert json.dumps(summary)  # still a summary the Lambda can return
