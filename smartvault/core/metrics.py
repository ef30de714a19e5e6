"""The run's CloudWatch metrics, as Embedded Metric Format documents (DESIGN §8).

Pure: :func:`documents` turns a plan, what applying it did and the resources each policy
selected into one EMF document per policy and region, which the Lambda writes as a log
line (:meth:`smartvault.logs.JsonLog.metrics`). CloudWatch Logs turns those lines into
metrics: no API call and no permission beyond writing logs. Every count is written, zeros
included, so that an alarm on it always has data points; only the age of the newest
recovery point is left out when there is no such point to measure (see
:func:`newest_ages`), which an alarm that treats missing data as breaching reports.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

from smartvault.core.model import Plan
from smartvault.core.model import PolicySet
from smartvault.core.report import RunResult

NAMESPACE = "SmartVault"
DIMENSIONS = ("Policy", "Region")

#: metric name -> unit, in the order each document lists them
METRICS: Mapping[str, str] = {
    "RecoveryPointsCreated": "Count",
    "RecoveryPointsDeleted": "Count",
    "ActionsFailed": "Count",
    "ActionsNotStarted": "Count",
    "DeletesHeld": "Count",
    "VerificationsFailed": "Count",
    "NewestRecoveryPointAgeSeconds": "Seconds",
}

#: (region, policy, resource id) of a resource a policy selects
SelectedResource = tuple[str, str, str]


def newest_ages(plan: Plan, selected: Collection[SelectedResource]) -> dict[tuple[str, str], float]:
    """``(policy, region)`` -> seconds from the plan's ``at`` back to the oldest, over the
    policy's selected resources there, of each one's newest completed recovery point.

    Read from the plan's ``kept`` entries (the newest completed point of a lineage is
    always kept: ``keep_last`` is at least 1), so it costs no API call. A resource that
    has no completed recovery point yet (new, or every create failed) has no age and is
    left out; a policy and region with no such resource at all gets no value. Resources
    a policy no longer selects (terminated, re-tagged) do not count: their kept points
    would otherwise age forever.
    """
    newest: dict[SelectedResource, datetime] = {}
    for kept in plan.kept:
        key = (kept.region, kept.policy, kept.resource_id)
        if "pending" in kept.kept_by or key not in selected:
            continue
        if key not in newest or kept.created_at > newest[key]:
            newest[key] = kept.created_at
    ages: dict[tuple[str, str], float] = {}
    for (region, policy, _), created_at in newest.items():
        age = max(0.0, (plan.at - created_at).total_seconds())
        ages[(policy, region)] = max(age, ages.get((policy, region), 0.0))
    return ages


def documents(
    plan: Plan,
    result: RunResult,
    policies: PolicySet,
    selected: Collection[SelectedResource],
    at: datetime,
) -> list[dict[str, Any]]:
    """One EMF document per enabled policy of ``plan`` and region of the run it covers.

    ``at`` is the metric's timestamp (when the run ended). Counts come from ``result``:
    actions are counted in their own ``region`` (a copy in its source region).
    ``DeletesHeld`` counts the deletions ``safety`` held, in their region (a copy
    lineage's in its target region; only where the policy applies, as every count: a
    held run also raises, which the ``Errors`` alarm sees wherever it is).
    """
    names = {slot.name for slot in plan.policies}
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for p in policies.policies:
        if p.name not in names or not p.enabled:
            continue
        for region in plan.regions:
            if p.applies_to_region(region):
                counts[(p.name, region)] = dict.fromkeys(
                    (m for m in METRICS if METRICS[m] == "Count"), 0
                )

    def add(policy: str, region: str, metric: str) -> None:
        if (policy, region) in counts:
            counts[(policy, region)][metric] += 1

    for r in result.results:
        a = r.action
        if r.needs_attention:
            add(a.policy, a.region, "ActionsFailed")
            if a.type == "verify":
                add(a.policy, a.region, "VerificationsFailed")
        elif r.outcome == "succeeded" and a.type == "create":
            add(a.policy, a.region, "RecoveryPointsCreated")
        elif r.outcome == "succeeded" and a.type == "delete":
            add(a.policy, a.region, "RecoveryPointsDeleted")
    for a in result.not_started:
        add(a.policy, a.region, "ActionsNotStarted")
    for held in plan.held_deletes:
        add(held.action.policy, held.action.region, "DeletesHeld")

    ages = newest_ages(plan, selected)
    timestamp = int(at.astimezone(UTC).timestamp() * 1000)
    docs: list[dict[str, Any]] = []
    for (policy, region), values in counts.items():
        doc_values: dict[str, float] = dict(values)
        if (policy, region) in ages:
            doc_values["NewestRecoveryPointAgeSeconds"] = round(ages[(policy, region)], 3)
        docs.append(
            {
                "_aws": {
                    "Timestamp": timestamp,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": NAMESPACE,
                            "Dimensions": [list(DIMENSIONS)],
                            "Metrics": [
                                {"Name": name, "Unit": METRICS[name]} for name in doc_values
                            ],
                        }
                    ],
                },
                "Policy": policy,
                "Region": region,
                **doc_values,
            }
        )
    return docs
