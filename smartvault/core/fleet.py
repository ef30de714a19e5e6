"""A fleet: many accounts and regions, one shard at a time. Pure: no AWS, no clock.

A **shard** is (account, region, at): the engine assumes a role in the account and reads,
plans and applies in that one region, at that time. Every round of one tick plans at the
tick's ``at``, so a shard that needs several runs (a deadline, throttling) converges on
the same plan instead of chasing slots that come meanwhile.

Here: the shard itself and where its results go in S3, and a fleet's outcome, ordered
so that what needs a look (failed shards, then those with changes) comes first. What
people and workflows write (an accounts file, a shard event) is read in
:mod:`smartvault.formats.shards`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Literal

from smartvault.core.model import Plan
from smartvault.core.times import iso_utc

#: An AWS account id: twelve digits, leading zeros included.
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
#: An IAM role name.
ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
#: The member-account role a fleet assumes, unless told otherwise.
DEFAULT_SHARD_ROLE = "SmartVaultShard"
#: Where a shard's plan and summary go in the results bucket (below: see :func:`results_prefix`).
RESULTS_ROOT = "shards/"


@dataclass(frozen=True, slots=True)
class Shard:
    """One account in one region, planned at ``at`` (aware, UTC)."""

    account: str
    region: str
    at: datetime

    @property
    def name(self) -> str:
        """``123456789012/eu-west-1``: how a person is shown the shard."""
        return f"{self.account}/{self.region}"


def results_prefix(shard: Shard, run_id: str) -> str:
    """``shards/<at>/<account>/<region>/<run id>/``: one folder per tick, then per account,
    so a tick's results list together and one account's sit side by side."""
    return f"{RESULTS_ROOT}{shard.at:%Y%m%dT%H%MZ}/{shard.account}/{shard.region}/{run_id}/"


def account_problem(account: str) -> str | None:
    if ACCOUNT_ID.match(account):
        return None
    return f"{account!r} is not an AWS account id (12 digits, leading zeros included)"


def role_name_problem(name: str) -> str | None:
    if ROLE_NAME.match(name):
        return None
    return f"{name!r} is not an IAM role name (1 to 64 letters, digits and +=,.@_-)"


def shards_of(accounts: Sequence[str], regions: Sequence[str], at: datetime) -> list[Shard]:
    """Every (account, region) at ``at``: account by account, regions in the order given."""
    return [Shard(account, region, at) for account in accounts for region in regions]


# --- a fleet's outcome -------------------------------------------------------------

Status = Literal["failed", "changes", "no changes"]


@dataclass(frozen=True)
class ShardRun:
    """What one shard's run gave: its plan (None when it could not be made), the run's
    summary (:meth:`RunReport.summary`; None for a plan only) and the error that stopped
    it or failed its actions."""

    shard: Shard
    plan: Plan | None = None
    summary: Mapping[str, Any] | None = None
    error: str = ""

    @property
    def status(self) -> Status:
        if self.error or self.plan is None:
            return "failed"
        if self.summary is not None and not self.summary.get("ok", True):
            return "failed"
        return "changes" if self.plan.has_changes else "no changes"

    @property
    def counts(self) -> dict[str, int]:
        """Actions by type, with held deletions and warnings: the fleet table's columns."""
        plan = self.plan
        if plan is None:
            return {}
        out = {t: int(plan.summary.get(t, 0)) for t in ACTION_COLUMNS}
        out["held"] = len(plan.held_deletes)
        out["warnings"] = len(plan.warnings)
        return out


#: The action types a fleet summary counts, in its columns' order.
ACTION_COLUMNS = ("create", "delete", "archive", "copy", "verify")
_STATUS_ORDER = {"failed": 0, "changes": 1, "no changes": 2}


def fleet_order(runs: Iterable[ShardRun]) -> list[ShardRun]:
    """Failed shards first, then those with changes, then the rest; by account and region
    within each."""
    return sorted(runs, key=lambda r: (_STATUS_ORDER[r.status], r.shard.account, r.shard.region))


def fleet_totals(runs: Sequence[ShardRun]) -> dict[str, int]:
    """Shards by status, and actions by type over the fleet."""
    totals = {"shards": len(runs), "failed": 0, "changes": 0, "no changes": 0}
    for column in (*ACTION_COLUMNS, "held", "warnings"):
        totals[column] = 0
    for run in runs:
        totals[run.status] += 1
        for column, n in run.counts.items():
            totals[column] += n
    return totals


def shard_result(
    shard: Shard,
    summary: Mapping[str, Any],
    *,
    plan_uri: str | None = None,
    result_uri: str | None = None,
) -> dict[str, Any]:
    """The few fields a workflow passes on for one shard (plans and full summaries go to
    S3: the state of a workflow holds at most 256 KiB, for every shard of a map together).

    ``remaining`` counts the actions the run did not start (a deadline): while it is above
    0 the workflow invokes the shard again. A dry run starts nothing and leaves nothing.
    """
    planned = summary.get("planned", {})
    return {
        "account": shard.account,
        "region": shard.region,
        "at": iso_utc(shard.at),
        "run_id": summary.get("run_id", ""),
        "complete": bool(summary.get("complete", True)),
        "remaining": int(summary.get("not_started", 0)),
        "ok": bool(summary.get("ok", True)),
        "summary": {
            **{t: int(planned.get(t, 0)) for t in ACTION_COLUMNS},
            "failed": len(summary.get("failed", ())),
            "held_deletes": int(summary.get("held_deletes", 0)),
            "warnings": len(summary.get("warnings", ())),
        },
        "plan": plan_uri,
        "result": result_uri,
    }
