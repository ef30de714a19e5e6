"""The AWS session wrapper: clients, regions, account id and readable errors."""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any

import pytest
from botocore.parsers import ResponseParserError
from botocore.stub import Stubber
from moto import mock_aws

from smartvault import __version__
from smartvault.aws import session as session_module
from smartvault.aws.errors import NotAnAwsReply
from smartvault.aws.errors import check_reply
from smartvault.aws.errors import translate_errors
from smartvault.aws.inventory import read_snapshots
from smartvault.aws.session import AwsSession
from smartvault.errors import AwsError
from smartvault.settings import Settings
from tests.moto_helpers import count_calls


def unused_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_one_line(error: AwsError) -> str:
    message = str(error)
    assert message
    assert "\n" not in message
    return message


# --- clients ---------------------------------------------------------------------


def test_a_client_is_created_once_per_service_and_region() -> None:
    session = AwsSession(regions=("us-east-1",))
    first = session.client("ec2", "us-east-1")
    assert session.client("ec2", "us-east-1") is first
    assert session.client("ec2", "eu-west-1") is not first
    assert session.client("sts", "us-east-1").meta.service_model.service_name == "sts"
    assert session.client("ec2", "eu-west-1").meta.region_name == "eu-west-1"


def test_sessions_of_one_process_read_the_service_models_once(monkeypatch) -> None:
    """``smartvault demo`` runs ten commands in one process, each with its own session:
    EC2's model (megabytes of JSON) must be parsed once, not once per session."""
    from botocore import loaders

    loaded: list[str] = []
    real = loaders.Loader.load_data_with_path

    def counting(self: Any, name: str) -> Any:
        loaded.append(name)
        return real(self, name)

    monkeypatch.setattr(loaders.Loader, "load_data_with_path", counting)
    monkeypatch.setattr(session_module, "_LOADER", None)  # as in a new process
    AwsSession(regions=("us-east-1",)).client("ec2", "us-east-1")
    first = loaded.count("ec2/2016-11-15/service-2")
    for _ in range(2):
        AwsSession(regions=("us-east-1",)).client("ec2", "us-east-1")

    assert first > 0
    assert loaded.count("ec2/2016-11-15/service-2") == first


def test_clients_use_adaptive_retries_timeouts_and_a_smartvault_user_agent() -> None:
    client = AwsSession().client("ec2", "us-east-1")
    config: Any = client.meta.config
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 11}
    assert config.user_agent_extra == f"smartvault/{__version__}"
    assert config.connect_timeout == 10
    assert config.read_timeout == 60


def test_clients_send_to_the_endpoint_url_when_one_is_given() -> None:
    session = AwsSession(endpoint_url="http://127.0.0.1:5000")
    assert session.client("ec2", "us-east-1").meta.endpoint_url == "http://127.0.0.1:5000"


def test_a_session_is_built_from_the_engine_settings() -> None:
    settings = Settings(regions=("eu-west-1", "us-east-1"), endpoint_url="http://127.0.0.1:5000")
    session = AwsSession.from_settings(settings)
    assert session.regions() == ("eu-west-1", "us-east-1")
    assert session.endpoint_url == "http://127.0.0.1:5000"


# --- regions ----------------------------------------------------------------------


def test_regions_are_those_asked_for_without_duplicates() -> None:
    session = AwsSession(regions=("us-west-2", "us-east-1", "us-west-2"))
    assert session.regions() == ("us-west-2", "us-east-1")


def test_regions_default_to_the_sessions_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert AwsSession().regions() == ("eu-central-1",)


def test_no_region_anywhere_is_a_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(AwsError) as caught:
        AwsSession().regions()
    assert str(caught.value) == "no AWS region: pass --region or set AWS_DEFAULT_REGION"


def test_a_misspelt_region_suggests_the_closest_known_one() -> None:
    with pytest.raises(AwsError) as caught:
        AwsSession(regions=("us-east-1", "us-eest-1")).regions()
    assert assert_one_line(caught.value) == "unknown region `us-eest-1`; did you mean `us-east-1`?"


def test_a_region_name_of_the_wrong_shape_is_rejected() -> None:
    with pytest.raises(AwsError, match="unknown region `prod`: a region name looks like"):
        AwsSession(regions=("prod",)).regions()


def test_a_well_formed_region_botocore_does_not_know_is_rejected_against_aws() -> None:
    with pytest.raises(AwsError, match="unknown region `zz-nowhere-7`: this boto3 does not know"):
        AwsSession(regions=("zz-nowhere-7",)).regions()


def test_a_well_formed_unknown_region_is_allowed_with_a_local_endpoint() -> None:
    session = AwsSession(regions=("zz-nowhere-7",), endpoint_url="http://127.0.0.1:5000")
    assert session.regions() == ("zz-nowhere-7",)
    assert session.client("ec2", "zz-nowhere-7").meta.region_name == "zz-nowhere-7"


def test_a_well_formed_unknown_region_is_allowed_when_aws_endpoint_url_is_set() -> None:
    session = AwsSession(
        regions=("zz-nowhere-7",), environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    )
    assert session.regions() == ("zz-nowhere-7",)


def test_a_well_formed_unknown_region_is_allowed_with_an_ec2_endpoint_of_its_own() -> None:
    # Per-service variables, as a benchmark sets them: EC2 on one server, DynamoDB on another.
    environ = {
        "AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:5000",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5001",
    }
    session = AwsSession(regions=("zz-nowhere-7",), environ=environ)
    assert session.regions() == ("zz-nowhere-7",)


def test_a_dynamodb_endpoint_alone_does_not_make_ec2_regions_free_for_all() -> None:
    environ = {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5001"}
    with pytest.raises(AwsError, match="unknown region `zz-nowhere-7`: this boto3 does not know"):
        AwsSession(regions=("zz-nowhere-7",), environ=environ).regions()


def test_a_per_service_endpoint_that_is_no_url_is_refused() -> None:
    with pytest.raises(AwsError, match="AWS_ENDPOINT_URL_EC2 'localhost:5000' is not an endpoint"):
        AwsSession(environ={"AWS_ENDPOINT_URL_EC2": "localhost:5000"})


def test_a_misspelt_region_is_rejected_even_with_a_local_endpoint() -> None:
    session = AwsSession(endpoint_url="http://127.0.0.1:5000")
    with pytest.raises(AwsError, match="did you mean `eu-west-1`"):
        session.client("ec2", "eu-wset-1")


def test_clients_are_only_made_for_known_regions() -> None:
    """Copy targets come from policy files, not --region: they are checked too."""
    with pytest.raises(AwsError, match="did you mean `ap-southeast-2`"):
        AwsSession().client("ec2", "ap-southeast-22")


# --- account id ---------------------------------------------------------------------


def test_the_account_id_is_asked_of_sts_once() -> None:
    with mock_aws():
        session = AwsSession(regions=("eu-west-1",))
        calls = count_calls(session)
        assert session.account_id() == "123456789012"
        assert session.account_id() == "123456789012"
    assert calls == Counter({"sts:GetCallerIdentity": 1})


# --- errors: each is one line that says what failed and what to do ----------------------


def test_missing_credentials_are_a_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # no instance-metadata lookup: it would leave this machine
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = AwsSession(regions=("us-east-1",))
    with pytest.raises(AwsError) as caught:
        session.account_id()
    assert assert_one_line(caught.value) == (
        "no AWS credentials found calling sts:GetCallerIdentity in us-east-1: "
        "set AWS_PROFILE, run `aws configure`, or pass --profile"
    )


def test_half_set_credentials_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AwsError) as caught:
        read_snapshots(AwsSession().client("ec2", "us-east-1"), "us-east-1")
    message = assert_one_line(caught.value)
    assert message.startswith("incomplete AWS credentials in env (missing ")
    assert "calling ec2 in us-east-1" in message


def test_an_unknown_profile_is_a_readable_error() -> None:
    session = AwsSession(profile="no-such-profile")
    with pytest.raises(AwsError) as caught:
        session.client("ec2", "us-east-1")
    assert assert_one_line(caught.value).startswith("AWS profile `no-such-profile` not found")


def test_an_unreachable_endpoint_is_a_readable_error_and_fails_fast() -> None:
    url = f"http://127.0.0.1:{unused_local_port()}"
    session = AwsSession(endpoint_url=url, connect_timeout=0.5, read_timeout=0.5, max_attempts=0)
    with pytest.raises(AwsError) as caught:
        read_snapshots(session.client("ec2", "us-east-1"), "us-east-1")
    message = assert_one_line(caught.value)
    assert message.startswith(f"could not reach the EC2 endpoint for us-east-1 ({url}/)")
    assert message.endswith("check --endpoint-url, AWS_ENDPOINT_URL and the network")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "UnauthorizedOperation",
            "access denied calling ec2:DescribeSnapshots in us-east-1: the role needs that "
            "permission (see docs/permissions-and-errors.md); AWS said: You are not authorized "
            "to perform this operation.",
        ),
        (
            "AuthFailure",
            "AWS refused the credentials calling ec2:DescribeSnapshots in us-east-1: check the "
            "access keys are current and the role may call it (see docs/permissions-and-errors.md)"
            "; AWS said: You are not authorized to perform this operation.",
        ),
        (
            "ExpiredToken",
            "the AWS credentials are invalid or expired (ExpiredToken) calling "
            "ec2:DescribeSnapshots in us-east-1: refresh them (`aws sso login`, new session "
            "token) or pick others with --profile / AWS_PROFILE",
        ),
        (
            "OptInRequired",
            "region us-east-1 is not enabled for this account (ec2:DescribeSnapshots in "
            "us-east-1 failed): enable it under Account > AWS Regions, or drop it from "
            "--region and the policies",
        ),
        (
            "RequestLimitExceeded",
            "AWS kept throttling ec2:DescribeSnapshots in us-east-1 (RequestLimitExceeded) "
            "through every retry: another tool may be using the same API quota; run again later",
        ),
        (
            "InvalidParameterValue",
            "ec2:DescribeSnapshots in us-east-1 failed: InvalidParameterValue: You are not "
            "authorized to perform this operation.",
        ),
    ],
    ids=["access-denied", "auth-failure", "expired-token", "opt-in", "throttled", "other"],
)
def test_an_aws_error_code_becomes_one_readable_line(code: str, expected: str) -> None:
    ec2 = AwsSession().client("ec2", "us-east-1")
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "describe_snapshots",
            service_error_code=code,
            service_message="You are not authorized\nto perform this operation.",
            http_status_code=403,
        )
        with pytest.raises(AwsError) as caught:
            read_snapshots(ec2, "us-east-1")
    assert assert_one_line(caught.value) == expected
    assert caught.value.__cause__ is not None


def test_translate_errors_also_works_as_a_decorator() -> None:
    ec2 = AwsSession().client("ec2", "eu-west-1")

    @translate_errors("ec2", "DescribeImages", "eu-west-1")
    def describe() -> object:
        return ec2.describe_images(Owners=["self"])

    with Stubber(ec2) as stub:
        stub.add_client_error("describe_images", service_error_code="AccessDenied")
        with pytest.raises(
            AwsError, match=r"^access denied calling ec2:DescribeImages in eu-west-1"
        ):
            describe()


def test_translate_errors_lets_other_exceptions_through() -> None:
    with pytest.raises(KeyError), translate_errors("ec2", "DescribeImages", "eu-west-1"):
        raise KeyError("a bug stays a bug")


# --- replies that are not AWS's ---------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "status", "body", "aws"),
    [
        ("query", 200, b"<GetCallerIdentityResponse><A/></GetCallerIdentityResponse>", True),
        ("ec2", 400, b'<?xml version="1.0"?>\n<Response><Errors/></Response>', True),
        ("query", 403, b"", True),
        ("json", 200, b'{"Items": []}', True),
        ("json", 503, b"<html>busy</html>", True),
        ("query", 200, b"<!DOCTYPE html><html></html>", False),
        ("query", 404, b"<html><body>Not Found</body></html>", False),
        ("ec2", 200, b"<foo/>", False),
        ("json", 200, b"<html></html>", False),
        ("json", 200, b"[1, 2]", False),
        ("json", 200, b"", False),
    ],
)
def test_a_reply_is_refused_before_parsing_unless_it_has_the_shape_of_aws(
    protocol, status, body, aws
) -> None:
    """5xx pages and empty error bodies stay botocore's to retry and read."""
    reply = {"status_code": status, "body": body, "headers": {"content-type": "text/html"}}
    if aws:
        check_reply("http://x", "sts", "GetCallerIdentity", "us-east-1", protocol, reply)
    else:
        with pytest.raises(NotAnAwsReply, match=r"^http://x did not answer like AWS STS"):
            check_reply("http://x", "sts", "GetCallerIdentity", "us-east-1", protocol, reply)


def test_a_reply_botocore_cannot_parse_is_one_line() -> None:
    with pytest.raises(AwsError) as caught, translate_errors("ec2", "DescribeVolumes", "eu-west-1"):
        raise ResponseParserError("Unable to parse response (syntax error: line 1)\n  <x")

    message = assert_one_line(caught.value)
    assert message.startswith(
        "ec2:DescribeVolumes in eu-west-1 failed: the reply could not be read"
    )
