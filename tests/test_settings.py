"""Settings from flags and from the environment, and the rules their values follow."""

from __future__ import annotations

import pytest

from smartvault.errors import ConfigError
from smartvault.settings import deadline_margin_seconds
from smartvault.settings import endpoint_url_problem
from smartvault.settings import settings_from_env
from smartvault.settings import table_name_problem


@pytest.mark.parametrize(
    "value",
    [
        "us-east-1,us-west-2",
        " us-east-1 , us-west-2 ",
        "us-east-1 us-west-2",
        "us-east-1,,us-west-2,",
    ],
)
def test_smartvault_regions_may_be_separated_by_commas_and_spaces(value):
    settings = settings_from_env({"SMARTVAULT_REGIONS": value, "AWS_REGION": "eu-west-1"})

    assert settings.regions == ("us-east-1", "us-west-2")
    assert settings.audit_region == "eu-west-1"


def test_a_fractional_deadline_margin_is_seconds():
    assert deadline_margin_seconds({"SMARTVAULT_DEADLINE_MARGIN": "12.5"}) == 12.5
    assert deadline_margin_seconds({}) == 30.0


@pytest.mark.parametrize("name", ["abc", "smartvault-audit", "a.b_c-D9", "x" * 255])
def test_a_dynamodb_table_name_passes(name):
    assert table_name_problem(name) is None


@pytest.mark.parametrize("name", ["ab", "my table", "x" * 256, "audit/log"])
def test_a_name_dynamodb_refuses_says_what_a_table_name_is(name):
    assert table_name_problem(name) == "3 to 255 letters, digits, _ . or -"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:5000", None),
        ("https://example.com", None),
        ("ftp://127.0.0.1:21", "an endpoint is an http:// or https:// URL with a host"),
        ("http://127.0.0.1:99999", "its port must be a number from 1 to 65535"),
        ("http://127.0.0.1:", "its port must be a number from 1 to 65535"),
        ("http://127.0.0.1 :5000", "it must not contain spaces"),
    ],
)
def test_an_endpoint_url_is_http_with_a_host_and_a_port(url, problem):
    found = endpoint_url_problem(url)

    assert found == problem or (problem is not None and found.startswith(problem))


def test_a_malformed_audit_table_in_the_environment_is_refused_like_the_flag():
    with pytest.raises(ConfigError) as refused:
        settings_from_env({"SMARTVAULT_AUDIT_TABLE": "my table"})

    assert str(refused.value) == (
        "SMARTVAULT_AUDIT_TABLE='my table' is not a DynamoDB table name: 3 to 255 letters, "
        "digits, _ . or -; set it to e.g. smartvault-audit, or remove it"
    )
