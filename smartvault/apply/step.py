"""What every step shares: the run's services, the step interface, and the ownership check.

A step knows how to do one action type safely (claim first, pending record first, one
request per mutating call, a result for every action). The loop in :mod:`.run` knows
ordering, pools, deadlines and stopping. Adding an action type means adding a step.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic
from typing import Protocol
from typing import TypeVar

from smartvault.apply.claims import ClaimGuard
from smartvault.apply.ledger import RunLedger
from smartvault.apply.ports import Ec2
from smartvault.apply.ports import Volumes
from smartvault.apply.trail import AuditTrail
from smartvault.core.model import Action
from smartvault.core.model import ArchiveAction
from smartvault.core.model import CopyAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import Snapshot
from smartvault.core.model import VerifyAction
from smartvault.core.model import is_managed
from smartvault.core.report import ActionResult
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_HOLD_BY
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.errors import Ec2CallFailed

A = TypeVar("A", bound=Action)
P = TypeVar("P")

#: The snapshots of a region as just read, by id, or why they could not be read.
Looked = dict[str, Snapshot] | str


@dataclass(frozen=True)
class RunContext:
    """The services one run's steps share. ``clock`` and ``sleep`` are for the steps that
    wait on EC2 (restores and restore tests), never past the run's stop."""

    ec2: Ec2
    volumes: Volumes
    trail: AuditTrail
    claims: ClaimGuard
    ledger: RunLedger
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]


class Step(Protocol[A, P]):
    """One action type. The loop calls ``prepare`` once per batch (before any action of it
    starts: one look in EC2, or claims), then ``run`` for each action not yet finished,
    unless the run is stopping. ``run`` returns None for an action it did not start."""

    #: how many actions of this type may run at once (1: one after another, in plan order)
    workers: int

    def batches(self, items: Sequence[tuple[int, A]]) -> Iterator[Sequence[tuple[int, A]]]: ...

    def prepare(self, batch: Sequence[tuple[int, A]]) -> P: ...

    def run(self, index: int, action: A, prepared: P) -> ActionResult | None: ...


Touching = DeleteAction | ArchiveAction | CopyAction | VerifyAction
T = TypeVar("T", DeleteAction, ArchiveAction, CopyAction)


class LookFirstStep(Generic[T]):
    """A step on recovery points that exist: every action of the type in one batch, and
    one look in EC2 per region (by snapshot id) before any of them starts."""

    workers = 1

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx

    def batches(self, items: Sequence[tuple[int, T]]) -> Iterator[Sequence[tuple[int, T]]]:
        if items:
            yield items

    def prepare(self, batch: Sequence[tuple[int, T]]) -> Mapping[str, Looked]:
        return look_by_region(self._ctx.ec2, ((a.region, a.snapshot_ids) for _, a in batch))


def look_by_region(ec2: Ec2, wanted: Iterable[tuple[str, Sequence[str]]]) -> dict[str, Looked]:
    """The named snapshots of each region as EC2 lists them now, or why not readable."""
    ids_by_region: dict[str, set[str]] = {}
    for region, ids in wanted:
        ids_by_region.setdefault(region, set()).update(ids)
    looked: dict[str, Looked] = {}
    for region in sorted(ids_by_region):
        try:
            looked[region] = ec2.by_id(region, sorted(ids_by_region[region]))
        except Ec2CallFailed as exc:
            looked[region] = str(exc)
    return looked


def ours_or_refusal(
    trail: AuditTrail,
    action: Touching,
    looked: Looked,
    verb: str,
    done: str,
    *,
    unless_held: bool = False,
) -> Mapping[str, Snapshot] | ActionResult:
    """The snapshots as just read, or the final result when the action must not go on:
    they could not be read (``failed``), or some lost SmartVault's tags since planning
    (``skipped``: never touch a snapshot SmartVault does not own), or, with
    ``unless_held`` (deletes and archives), some carry a person's ``smartvault:hold``
    (``skipped``: a hold set after planning keeps the whole point)."""
    if isinstance(looked, str):
        return trail.final(
            action, ActionResult(action, "failed", error=f"nothing {done}: {looked}")
        )
    foreign = [
        sid for sid in action.snapshot_ids if sid in looked and not _ours(looked[sid], action)
    ]
    if foreign:
        return trail.final(
            action, ActionResult(action, "skipped", reason=_not_ours(action, foreign, verb, done))
        )
    if unless_held:
        held = [
            sid for sid in action.snapshot_ids if sid in looked and looked[sid].tags.get(TAG_HOLD)
        ]
        if held:
            return trail.final(
                action,
                ActionResult(
                    action,
                    "skipped",
                    tuple(action.snapshot_ids),
                    reason=_held(action, [looked[sid] for sid in held], done),
                ),
            )
    return looked


def _ours(snapshot: Snapshot, action: Touching) -> bool:
    tags = snapshot.tags
    return (
        is_managed(tags)
        and tags.get(TAG_POLICY) == action.policy
        and tags.get(TAG_RECOVERY_POINT) == action.recovery_point
    )


def _held(action: Touching, held: Sequence[Snapshot], done: str) -> str:
    """Why a point a person held after planning is left alone."""
    first = held[0].tags
    reason = first.get(TAG_HOLD, "")
    who = first.get(TAG_HOLD_BY)
    return (
        f"held since planning: {', '.join(s.snapshot_id for s in held)} carry "
        f"{TAG_HOLD}={reason!r}" + (f" (set by {who})" if who else "") + f"; nothing {done}. "
        f"`smartvault release {action.recovery_point}` lets the next run's retention decide"
    )


def _not_ours(action: Touching, foreign: Sequence[str], verb: str, done: str) -> str:
    """Why snapshots that lost SmartVault's tags since planning are left alone."""
    return (
        f"not SmartVault's to {verb} any more: {', '.join(foreign)} lack the tags "
        f"{TAG_CREATED_BY}={CREATED_BY_VALUE}, {TAG_POLICY}={action.policy} and "
        f"{TAG_RECOVERY_POINT}={action.recovery_point}; nothing {done}"
    )
