"""The run's EMF metrics documents (pure: :mod:`smartvault.core.metrics`)."""

from __future__ import annotations

import json
from dataclasses import replace

from smartvault.core.metrics import METRICS
from smartvault.core.metrics import documents
from smartvault.core.metrics import newest_ages
from smartvault.core.model import Kept
from smartvault.core.model import PolicySet
from smartvault.core.model import PolicySlot
from smartvault.core.planner import plan_selecting
from smartvault.core.report import ActionResult
from smartvault.core.report import RunResult
from tests.factories import CREATE
from tests.factories import DELETE
from tests.factories import VERIFY
from tests.factories import make_instance
from tests.factories import make_inventory
from tests.factories import make_plan
from tests.factories import make_policy
from tests.factories import utc

REGIONS = ("us-east-1", "us-west-2")
POLICIES = PolicySet(
    (make_policy("prod-nightly"), make_policy("west-only", regions=("us-west-2",)))
)
SLOTS = (
    PolicySlot("prod-nightly", "p.yaml", utc(2026, 11, 28, 2)),
    PolicySlot("west-only", "p.yaml", utc(2026, 11, 28, 2)),
)


def kept(resource_id: str, day: int, *kept_by: str, region: str = "us-east-1") -> Kept:
    return Kept(
        region,
        "prod-nightly",
        resource_id,
        f"prod-nightly/{resource_id}/202611{day:02d}T0200Z",
        (f"snap-{resource_id}-{day}",),
        utc(2026, 11, day, 2),
        kept_by or ("keep_last",),
    )


class TestNewestAges:
    def test_the_oldest_of_each_selected_resources_newest_completed_point(self):
        """i-a's newest is the 27th, i-b's the 26th (its 27th is still pending): 26th wins."""
        plan = make_plan(
            at=utc(2026, 11, 28, 2),
            kept=(
                kept("i-a", 25),
                kept("i-a", 27),
                kept("i-b", 26),
                kept("i-b", 27, "pending"),
            ),
        )
        selected = {("us-east-1", "prod-nightly", "i-a"), ("us-east-1", "prod-nightly", "i-b")}

        assert newest_ages(plan, selected) == {("prod-nightly", "us-east-1"): 2 * 86400.0}

    def test_a_resource_no_longer_selected_does_not_age_the_policy(self):
        """A terminated instance's last points are kept forever; they must not page anyone."""
        plan = make_plan(at=utc(2026, 11, 28, 2), kept=(kept("i-a", 27), kept("i-gone", 1)))

        ages = newest_ages(plan, {("us-east-1", "prod-nightly", "i-a")})

        assert ages == {("prod-nightly", "us-east-1"): 86400.0}

    def test_no_completed_point_anywhere_gives_no_value(self):
        plan = make_plan(kept=(kept("i-a", 27, "pending"),))

        assert newest_ages(plan, {("us-east-1", "prod-nightly", "i-a")}) == {}


class TestDocuments:
    def result(self, *results: ActionResult, not_started=()) -> RunResult:
        return RunResult("run-1", results, stopped_early=bool(not_started), not_started=not_started)

    def docs(self, result: RunResult, **plan_overrides):
        fields = {"regions": REGIONS, "policies": SLOTS, "kept": (), **plan_overrides}
        return documents(make_plan(**fields), result, POLICIES, frozenset(), utc(2026, 11, 28, 17))

    def test_one_document_per_policy_and_region_it_covers_with_zeros(self):
        docs = self.docs(self.result())

        assert [(d["Policy"], d["Region"]) for d in docs] == [
            ("prod-nightly", "us-east-1"),
            ("prod-nightly", "us-west-2"),
            ("west-only", "us-west-2"),
        ]
        for doc in docs:
            counts = [m for m, unit in METRICS.items() if unit == "Count"]
            assert {m: doc[m] for m in counts} == dict.fromkeys(counts, 0)
            json.loads(json.dumps(doc))  # one JSON log line

    def test_the_emf_block_names_namespace_dimensions_and_each_metric_with_its_unit(self):
        plan_at = utc(2026, 11, 28, 17)
        docs = documents(
            make_plan(at=plan_at, kept=(kept("i-0abc", 27),)),
            self.result(),
            POLICIES,
            frozenset({("us-east-1", "prod-nightly", "i-0abc")}),
            plan_at,
        )

        (doc,) = docs
        assert doc["_aws"] == {
            "Timestamp": int(plan_at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "SmartVault",
                    "Dimensions": [["Policy", "Region"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit in METRICS.items()],
                }
            ],
        }
        assert doc["NewestRecoveryPointAgeSeconds"] == (15 + 24) * 3600

    def test_outcomes_are_counted_in_their_policy_and_region(self):
        west_delete = replace(DELETE, region="us-west-2")
        result = self.result(
            ActionResult(CREATE, "succeeded"),
            ActionResult(replace(CREATE, resource_id="i-2"), "failed", error="boom"),
            ActionResult(DELETE, "succeeded"),
            ActionResult(west_delete, "succeeded", audit_error="table gone"),
            ActionResult(VERIFY, "failed", error="not available after 45m"),
            not_started=(replace(CREATE, resource_id="i-3"),),
        )

        by_where = {(d["Policy"], d["Region"]): d for d in self.docs(result)}

        east = by_where[("prod-nightly", "us-east-1")]
        assert (east["RecoveryPointsCreated"], east["RecoveryPointsDeleted"]) == (1, 1)
        assert (east["ActionsFailed"], east["ActionsNotStarted"]) == (1, 1)
        west = by_where[("prod-nightly", "us-west-2")]
        # a delete whose record could not be completed needs attention: a failure
        assert (west["RecoveryPointsDeleted"], west["ActionsFailed"]) == (0, 2)
        assert west["VerificationsFailed"] == 1
        assert by_where[("west-only", "us-west-2")]["ActionsFailed"] == 0

    def test_a_disabled_policy_or_one_outside_the_run_gets_no_document(self):
        policies = PolicySet((make_policy("prod-nightly", enabled=False),))

        docs = documents(make_plan(), self.result(), policies, frozenset(), utc(2026, 11, 28))

        assert docs == []


def test_selected_resources_follow_the_policy_selector():
    inventory = make_inventory(
        instances=[
            make_instance("i-0000000000000001", tags={"backup": "true"}),
            make_instance("i-0000000000000002", tags={"backup": "no"}),
        ]
    )
    policies = PolicySet((make_policy("nightly"),))  # selects backup=true

    _, selected = plan_selecting(policies, inventory, utc(2026, 11, 28, 17))

    assert selected == {("us-east-1", "nightly", "i-0000000000000001")}
