"""``Engine.plan_compared``: both policy sets planned over ONE read of the account.

Counted with the boto calls the session's clients make: a comparison costs what a plain
plan costs, plus one Describe call per region for each selector only REF's policies have.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import boto3
import pytest

from smartvault.core.model import PolicySet
from smartvault.engine import Engine
from smartvault.formats.policy import parse_policies
from smartvault.settings import Settings
from tests.cli import POLICY
from tests.factories import REGION
from tests.moto_helpers import count_calls
from tests.moto_helpers import launch

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
NARROWED = POLICY.replace('tags: {backup: "true"}', 'tags: {backup: "true", tier: gold}')
SHORTER = POLICY.replace("keep_last: 2", "keep_last: 1")
WITH_COPIES = POLICY + "    copies:\n      - region: us-west-2\n"


def policies(text: str) -> PolicySet:
    parsed, problems = parse_policies(text, "p.yaml")
    assert problems == []
    return PolicySet(policies=tuple(parsed))


def engine() -> Engine:
    return Engine(Settings(regions=(REGION,)), clock=lambda: NOW)


@pytest.fixture
def ec2(aws):
    client = boto3.client("ec2", region_name=REGION)
    launch(client, 2, tags={"backup": "true", "tier": "gold"})
    launch(client, 1, tags={"backup": "true", "Name": "web-3"})
    launch(client, 1, tags={"other": "x"})
    return client


def calls_of_a_plain_plan(text: str) -> dict[str, int]:
    eng = engine()
    calls = count_calls(eng.session)
    eng.plan(policies(text))
    return dict(calls)


def calls_of_a_comparison(text: str, then: str) -> dict[str, int]:
    eng = engine()
    calls = count_calls(eng.session)
    eng.plan_compared(policies(text), policies(then))
    return dict(calls)


def test_comparing_a_retention_edit_costs_no_call_more_than_a_plain_plan(ec2):
    plain = calls_of_a_plain_plan(SHORTER)

    compared = calls_of_a_comparison(SHORTER, POLICY)

    assert compared == plain
    assert plain["ec2:DescribeInstances"] == 1
    assert plain["ec2:DescribeSnapshots"] == 1


def test_comparing_a_narrowed_selector_costs_one_describe_instances_for_the_old_selector(ec2):
    plain = calls_of_a_plain_plan(NARROWED)

    compared = calls_of_a_comparison(NARROWED, POLICY)

    assert compared == {**plain, "ec2:DescribeInstances": plain["ec2:DescribeInstances"] + 1}
    # planning both sets on their own would read the whole account twice
    both = {k: v + calls_of_a_plain_plan(POLICY)[k] for k, v in plain.items()}
    assert sum(compared.values()) < sum(both.values())


@pytest.mark.parametrize(
    ("now", "then"),
    [(NARROWED, POLICY), (POLICY, NARROWED), (SHORTER, POLICY), (POLICY, WITH_COPIES)],
    ids=["narrowed", "widened", "shorter", "ref-copies-to-another-region"],
)
def test_each_side_of_a_comparison_is_exactly_its_plain_plan(ec2, now, then):
    """Extra resources (and regions) only the other set reads change nothing in a plan."""
    new_side, old_side = engine().plan_compared(policies(now), policies(then))

    assert new_side.plan == engine().plan(policies(now))
    assert old_side.plan == engine().plan(policies(then))
    assert new_side.selected == engine()._plan_selecting(policies(now))[1]
    assert ("us-west-2" in new_side.plan.regions) == ("us-west-2" in now)
