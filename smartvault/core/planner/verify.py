"""Restore tests: at most one ``verify`` action per lineage, for its newest completed point.

Pure. A lineage of an enabled policy with ``verify`` — the resource's own points, and
each cross-region copy lineage in its region (proving that the disaster-recovery copy
restores is the point of testing it) — is due for a test when its newest verified
recovery point was verified longer ago than ``verify.every`` at ``at``, or when none is
verified. The test is of the newest completed point the plan keeps: never a failed or
pending one, never one the plan deletes. A point in the archive tier is not tested
(a test would first need an archive restore, which takes hours): the plan warns instead.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from smartvault.core.model import Verify
from smartvault.core.model import VerifyAction
from smartvault.core.planner.decisions import Lineage
from smartvault.core.planner.lineages import RecoveryPoint
from smartvault.core.planner.warnings import Warnings
from smartvault.core.times import iso_utc


def verification(
    points: list[RecoveryPoint],
    verify: Verify,
    at: datetime,
    kept: Collection[str],
    warnings: Warnings,
    lineage: Lineage,
) -> VerifyAction | None:
    """The restore test one lineage (``points``, newest first) is due for by ``verify``, if any.

    ``kept`` holds the ids of the lineage's points that the plan keeps; ``lineage`` names
    its resource and retention rule on the action. A point counts as
    verified only by a time at or before ``at``: a plan made for an earlier ``at`` sees
    the lineage as it was then, and a far-future value someone wrote never postpones a test.
    """
    completed = [p for p in points if not p.failed and not p.pending]
    target = next((p for p in completed if p.id in kept), None)
    if target is None:
        return None
    last = _last_verified(completed, at)
    if last is None:
        reason = "no verified recovery point yet"
    else:
        point, verified = last
        # OverflowError: `every` reaches back past year 1, so no test can be that old
        try:
            due = verified < at - verify.every.delta
        except OverflowError:
            due = False
        if not due:
            return None
        reason = (
            f"newest verified recovery point {point.id} was verified {iso_utc(verified)}, "
            f"more than every {verify.every} ago"
        )
    if len(target.standard_ids) != len(target.snapshot_ids):
        warnings.add(
            f"newest completed recovery point {target.id} is in the archive tier: it is not "
            "restore-tested, since a test would first need an archive restore that takes "
            "hours; the next recovery point is tested once it completes",
            policy=target.policy,
            resource_id=target.resource_id,
            region=target.region,
        )
        return None
    return VerifyAction(
        region=target.region,
        policy=target.policy,
        resource_id=target.resource_id,
        recovery_point=target.id,
        snapshot_ids=target.snapshot_ids,
        created_at=target.created_at,
        reason=reason,
        resource_name=lineage.name,
        retention=lineage.rule,
        timeout=verify.timeout,
    )


def _last_verified(
    completed: list[RecoveryPoint], at: datetime
) -> tuple[RecoveryPoint, datetime] | None:
    """The newest completed point verified at or before ``at``, and when."""
    for point in completed:
        if point.verified is not None and point.verified <= at:
            return point, point.verified
    return None
