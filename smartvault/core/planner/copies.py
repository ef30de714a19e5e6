"""Cross-region copies of a source lineage: one copy action per copy rule, at most.

Pure. What is copied, and why only that, is in :func:`copies`. Each action names the
snapshots still missing in the target region, and the copy rule's KMS key; its
``retention`` names the copy rule (``copies[N]``), whose retention keeps the copies.
"""

from __future__ import annotations

from smartvault.core.model import CopyAction
from smartvault.core.model import CopyRule
from smartvault.core.model import Policy
from smartvault.core.planner.decisions import copy_rule_name
from smartvault.core.planner.lineages import CopySource
from smartvault.core.planner.lineages import RecoveryPoint
from smartvault.core.planner.warnings import Warnings


def copies(
    points: list[RecoveryPoint],
    policy: Policy,
    regions: set[str],
    copied: set[CopySource],
    warnings: Warnings,
    resource_name: str | None,
) -> list[CopyAction]:
    """Copy the newest completed point of a source lineage to each copy rule's region.

    Only the newest: adding a copy rule starts disaster recovery from now on, it does
    not copy the history. Only its snapshots that have no copy in the target region yet
    (no well-formed snapshot there of the same recovery point whose ``smartvault:source``
    names them): a copy that stopped half-way is completed by the next plan, a complete
    one is never copied again, and a malformed or foreign "copy" never stops a real one.
    """
    newest = next((p for p in points if not p.failed and not p.pending), None)
    if newest is None:
        return []
    actions = []
    for number, rule in enumerate(policy.copies):
        if rule.region not in regions or rule.region == newest.region:
            continue
        missing = tuple(
            s
            for s in newest.snapshot_ids
            if (rule.region, f"{newest.region}/{s}", newest.id) not in copied
        )
        if not missing:
            continue  # copied already (pending, completed, or failed and being deleted)
        if any(s not in newest.standard_ids for s in missing):
            warnings.add(
                f"newest recovery point {newest.id} is archived: not copied to {rule.region}",
                policy=policy.name,
                resource_id=newest.resource_id,
                region=newest.region,
            )
            continue
        actions.append(_copy(newest, rule, missing, resource_name, copy_rule_name(number)))
    return actions


def _copy(
    point: RecoveryPoint,
    rule: CopyRule,
    missing: tuple[str, ...],
    resource_name: str | None,
    retention: str,
) -> CopyAction:
    if len(missing) == len(point.snapshot_ids):
        reason = f"newest recovery point has no copy in {rule.region}"
    else:
        reason = (
            f"completes the copy to {rule.region}: {len(missing)} of "
            f"{len(point.snapshot_ids)} snapshots missing"
        )
    return CopyAction(
        region=point.region,
        policy=point.policy,
        resource_id=point.resource_id,
        recovery_point=point.id,
        snapshot_ids=missing,
        created_at=point.created_at,
        target_region=rule.region,
        reason=reason,
        kms_key_id=rule.kms_key_id,
        resource_name=resource_name,
        retention=retention,
    )
