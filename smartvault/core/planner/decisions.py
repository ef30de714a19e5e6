"""What happens to each recovery point of a lineage: kept, deleted, skipped or archived.

Pure. A lineage is judged by one retention: its copy rule's for copies; for the
resource's own points the policy's, as chosen by the resource's current tags, or by the
tags recorded on its newest point once it is gone (:func:`choose_retention`). When those
cannot be read whole, every completed point is kept. Completed points no rule keeps are
deleted, failed ones too, unless an AMI uses one of their snapshots (then they are
skipped); points not yet completed are kept as they are, and archiving follows the kept.

A held recovery point (a person's ``smartvault:hold``) is kept by its hold and nothing
else: it is taken out of the retention evaluation before it starts, so it uses no
``keep_last`` place and no calendar bucket, and the other points are judged as if it were
not there; retention never archives it. A held failed point is kept too: a person's hold
wins over the rule that deletes failed points (they may want to look at it). A held point
not yet completed stays ``pending`` until it completes.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from smartvault.core import retention as ret
from smartvault.core.model import DEFAULT_RETENTION
from smartvault.core.model import Action
from smartvault.core.model import ArchiveAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Duration
from smartvault.core.model import Inventory
from smartvault.core.model import Kept
from smartvault.core.model import Policy
from smartvault.core.model import Retention
from smartvault.core.model import Skipped
from smartvault.core.model import TagFilter
from smartvault.core.planner.lineages import RecoveryPoint
from smartvault.core.planner.selection import PolicyState
from smartvault.core.planner.warnings import Warnings
from smartvault.core.tags import RESOURCE_TAGS_CUT
from smartvault.core.tags import TAG_NAME
from smartvault.core.times import iso_utc

#: ``kept_by`` for points of a disabled policy, points not yet completed, and copies
#: whose copy rule was removed from the policy
KEPT_DISABLED = "disabled"
KEPT_PENDING = "pending"
KEPT_NO_COPY_RULE = "no_copy_rule"
#: ``kept_by`` of a held recovery point (``smartvault:hold``): the only reason it is kept
KEPT_HOLD = "hold"

#: Keeps every completed point (as keep_last); used when no retention can be chosen safely.
KEEP_ALL = Retention(keep_last=2**31)


# --- the retention a lineage is judged by -------------------------------------------


def _describe_match(match: TagFilter) -> str:
    return ", ".join(f"{c.key}={'|'.join(c.values) or '*'}" for c in match.conditions)


def choose_retention(
    policy: Policy,
    tags: Mapping[str, str],
    resource_id: str,
    region: str,
    warnings: Warnings,
) -> tuple[Retention, str]:
    """The first matching retention_by_tag, else retention; then a valid retention_tag.

    Also the words that name the choice in a reason ('' for the policy's own retention).
    """
    chosen, label, _ = chosen_retention(policy, tags, resource_id, region, warnings)
    return chosen, label


def retention_rule(policy: Policy) -> str:
    """``default`` for a policy without a ``retention`` block, else ``retention``."""
    # Identity, not equality: a written block equal to the default is still the rule the
    # operator wrote. The policy loader gives a policy without one this very object.
    return "default" if policy.retention is DEFAULT_RETENTION else "retention"


def copy_rule_name(number: int) -> str:
    """``copies[0]``: the copy rule (counted from 0) whose retention a copy follows."""
    return f"copies[{number}]"


def chosen_retention(
    policy: Policy,
    tags: Mapping[str, str],
    resource_id: str,
    region: str,
    warnings: Warnings,
) -> tuple[Retention, str, str]:
    """:func:`choose_retention`, and which rule chose it as the plan names it:
    ``default``, ``retention`` or ``retention_by_tag[N]`` (N from 0), followed by
    ``+retention_tag`` when a valid ``retention_tag`` value replaced its ``max_age``."""
    chosen, label, rule_name = policy.retention, "", retention_rule(policy)
    for number, rule in enumerate(policy.retention_by_tag):
        if rule.match.matches_all(tags):
            chosen, label = (
                rule.retention,
                f"retention_by_tag {number + 1}: {_describe_match(rule.match)}",
            )
            rule_name = f"retention_by_tag[{number}]"
            break
    if policy.retention_tag and (value := tags.get(policy.retention_tag)) is not None:
        try:
            max_age = Duration.parse(value)
        except ValueError:
            # Never widen deletion on a typo: keep the rule's own max_age.
            kept_age = chosen.max_age or "none"
            warnings.add(
                f"tag {policy.retention_tag}={value!r} is not a duration like 30d: "
                f"using max_age {kept_age}",
                policy=policy.name,
                resource_id=resource_id,
                region=region,
            )
        else:
            chosen = replace(chosen, max_age=max_age)
            tag_label = f"max_age from tag {policy.retention_tag}"
            label = f"{label}; {tag_label}" if label else tag_label
            rule_name += "+retention_tag"
    return chosen, label, rule_name


def resource_name(tags: Mapping[str, str] | None) -> str | None:
    """The ``Name`` tag in ``tags``; None when there is none (or it is empty)."""
    if tags is None:
        return None
    return tags.get(TAG_NAME) or None


def recorded_tags(points: list[RecoveryPoint]) -> dict[str, str] | None:
    """The resource tags recorded on the newest recovery point that has them.

    ``{}`` when none was recorded; None when they cannot be trusted to choose a
    retention: unreadable, or cut to fit 256 characters.
    """
    text = next((p.recorded_tags for p in points if p.recorded_tags is not None), None)
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return None
    return None if RESOURCE_TAGS_CUT in value else value


# --- AMIs and staleness ----------------------------------------------------------


def images_by_snapshot(inventory: Inventory) -> dict[str, tuple[str, ...]]:
    users: dict[str, set[str]] = defaultdict(set)
    for image in inventory.images:
        for snapshot_id in image.snapshot_ids:
            users[snapshot_id].add(image.image_id)
    return {snapshot_id: tuple(sorted(ids)) for snapshot_id, ids in users.items()}


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def warn_if_stale(
    state: PolicyState,
    points: list[RecoveryPoint],
    at: datetime,
    resource_id: str,
    region: str,
    warnings: Warnings,
) -> None:
    """Warn when a selected resource's newest completed point is two schedule periods old."""
    if state.period is None:
        return
    newest = next((p for p in points if not p.failed and not p.pending), None)
    if newest is None:
        failed = sum(1 for p in points if p.failed)
        if failed:
            warnings.add(
                f"backups are failing: none has completed, {failed} failed",
                policy=state.policy.name,
                resource_id=resource_id,
                region=region,
            )
        return
    try:
        stale_before = at - 2 * state.period
    except OverflowError:
        return  # two periods reach back past year 1: nothing can be older
    if newest.created_at < stale_before:
        warnings.add(
            "backups are failing: the newest completed recovery point is from "
            f"{iso_utc(newest.created_at)}, more than two schedule periods "
            f"({_human(state.period)} each) ago",
            policy=state.policy.name,
            resource_id=resource_id,
            region=region,
        )


# --- the decisions ------------------------------------------------------------------


@dataclass
class Decided:
    actions: list[Action]
    kept: list[Kept]
    skipped: list[Skipped]


@dataclass(frozen=True, slots=True)
class Lineage:
    """What every entry of one lineage says about it: its resource's name and its rule."""

    #: the resource's ``Name`` tag (current tags, else those recorded at creation)
    name: str | None
    #: the retention rule it follows (:func:`chosen_retention`, ``copies[N]``), or None
    rule: str | None


def keep(point: RecoveryPoint, kept_by: tuple[str, ...], lineage: Lineage) -> Kept:
    """``point`` kept by ``kept_by``; a held one is kept by its hold whatever else keeps
    it (a disabled policy, a removed copy rule), unless it is still pending: then it
    stays ``pending`` until it completes."""
    if point.held and kept_by != (KEPT_PENDING,):
        kept_by = (KEPT_HOLD,)
    return Kept(
        point.region,
        point.policy,
        point.resource_id,
        point.id,
        point.snapshot_ids,
        point.created_at,
        kept_by,
        point.verified,
        lineage.name,
        lineage.rule,
    )


def _skipped(point: RecoveryPoint, reason: str, lineage: Lineage) -> Skipped:
    return Skipped(
        point.region,
        point.policy,
        point.resource_id,
        point.id,
        point.snapshot_ids,
        reason,
        lineage.name,
        lineage.rule,
    )


def _delete(point: RecoveryPoint, reason: str, lineage: Lineage) -> DeleteAction:
    return DeleteAction(
        point.region,
        point.policy,
        point.resource_id,
        point.id,
        point.snapshot_ids,
        point.created_at,
        reason,
        lineage.name,
        lineage.rule,
    )


def _images(point: RecoveryPoint, in_use_by: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The AMIs using any snapshot of the point, sorted."""
    return tuple(sorted({i for s in point.snapshot_ids for i in in_use_by.get(s, ())}))


# A plan has few distinct retentions and many deletions; bounded, so a warm Lambda
# that plans again and again does not grow.
@functools.lru_cache(maxsize=1024)
def _not_kept_reason(retention: Retention, label: str) -> str:
    return ret.explain_not_kept(retention) + (f" ({label})" if label else "")


def decide(
    points: list[RecoveryPoint],
    policy: Policy,
    retention: Retention,
    label: str,
    at: datetime,
    tz: ZoneInfo,
    in_use_by: Mapping[str, tuple[str, ...]],
    is_copy: bool,
    lineage: Lineage,
) -> Decided:
    """Keep, delete, skip or archive each recovery point of one lineage (newest first).

    A held point (``smartvault:hold``), failed or completed, is kept by its hold alone and
    never archived; the retention is evaluated over the other completed points only.
    """
    decided = Decided([], [], [])
    completed = [p for p in points if not p.failed and not p.pending]
    # Held points count toward nothing else: no keep_last place, no calendar bucket.
    judged = [p for p in completed if not p.held] if any(p.held for p in completed) else completed
    verdicts = ret.evaluate_ordered(judged, retention, at, tz)
    newest_id = completed[0].id if completed else None
    archive_before = None
    if not is_copy and policy.archive_after is not None:
        # OverflowError: archive.after reaches back past year 1, so nothing is old enough
        with contextlib.suppress(OverflowError):
            archive_before = at - policy.archive_after.delta
    for point in points:
        if point.held and (point.failed or not point.pending):
            decided.kept.append(keep(point, (KEPT_HOLD,), lineage))
            continue
        images = _images(point, in_use_by) if in_use_by else ()
        if point.failed:
            verb = "is" if len(point.error_ids) == 1 else "are"
            errors = f"{', '.join(point.error_ids)} {verb} in state error"
            if point.pending:
                # Deleting now would leave the pending snapshots to finish as a
                # recovery point that looks whole; wait for them, then delete all.
                decided.skipped.append(
                    _skipped(
                        point,
                        f"failed: {errors}; deleted once {', '.join(point.pending_ids)} "
                        "finish pending",
                        lineage,
                    )
                )
            elif images:
                decided.skipped.append(
                    _skipped(point, f"in use by AMI {', '.join(images)}", lineage)
                )
            else:
                # Error snapshots last: a run stopped half-way leaves a point that still
                # reads as failed, not a few completed snapshots that look whole.
                healthy = tuple(s for s in point.snapshot_ids if s not in point.error_ids)
                decided.actions.append(
                    replace(
                        _delete(point, f"failed: {errors}", lineage),
                        snapshot_ids=healthy + point.error_ids,
                    )
                )
            continue
        if point.pending:
            decided.kept.append(keep(point, (KEPT_PENDING,), lineage))
            continue
        kept_by = verdicts[point.id]
        if not kept_by:
            if images:
                decided.skipped.append(
                    _skipped(point, f"in use by AMI {', '.join(images)}", lineage)
                )
            else:
                decided.actions.append(_delete(point, _not_kept_reason(retention, label), lineage))
            continue
        decided.kept.append(keep(point, kept_by, lineage))
        if (
            archive_before is not None
            and point.id != newest_id
            and point.created_at < archive_before
            and point.standard_ids
            and not images
        ):
            decided.actions.append(
                ArchiveAction(
                    point.region,
                    point.policy,
                    point.resource_id,
                    point.id,
                    point.standard_ids,
                    point.created_at,
                    f"older than archive after {policy.archive_after}; "
                    f"kept by {', '.join(kept_by)}",
                    lineage.name,
                    lineage.rule,
                )
            )
    return decided
