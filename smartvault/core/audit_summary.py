"""What the audit report page shows, computed from audit records: pure, no clock, no AWS.

``summarise(records, generated_at=..., since=..., policies=...)`` returns an
:class:`AuditSummary`: recovery points created and deleted per UTC day (succeeded
``create`` and ``delete`` records: one record is one recovery point), per-policy totals,
each policy's RPO status, and the records that need a person (failed ones, and ones still
``pending`` an hour after they were written: the run that wrote them crashed or was cut
off before it could close them).

The RPO status here is read from the audit log alone, per policy: "met" when the
policy's newest succeeded ``create`` is younger than two schedule periods at
``generated_at`` (the threshold of the RPO alarm, DESIGN §8), "missed" when it is older
or there is none in the window, "unknown" without the policy files (no schedule to
compare with) or when the schedule cannot give a period (disabled, unreadable, not yet
fired twice). It is a policy-wide answer: one resource that stopped being backed up
while the others still are does not show here. ``smartvault coverage`` reads the account
and answers per resource.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Literal

from smartvault.core import schedules
from smartvault.core.coverage import format_age
from smartvault.core.model import AuditRecord
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet

RpoStatus = Literal["met", "missed", "unknown"]

#: a ``pending`` record older than this is a run that never came back to close it
STALE_PENDING = timedelta(hours=1)


@dataclass(frozen=True)
class DayCount:
    day: date
    created: int
    deleted: int


@dataclass(frozen=True)
class PolicyTotals:
    policy: str
    records: int
    created: int
    deleted: int
    failed: int
    #: newest succeeded ``create`` in the records, or None
    newest_created: datetime | None
    rpo: RpoStatus
    #: one line saying why, for a person
    rpo_reason: str


@dataclass(frozen=True)
class AuditSummary:
    generated_at: datetime
    since: datetime
    days: tuple[DayCount, ...]
    policies: tuple[PolicyTotals, ...]
    #: failed records and stale pending ones, newest first
    attention: tuple[AuditRecord, ...]
    total: int


def needs_attention(record: AuditRecord, generated_at: datetime) -> bool:
    """Failed, or pending for longer than :data:`STALE_PENDING`."""
    if record.outcome == "failed":
        return True
    return record.outcome == "pending" and generated_at - record.timestamp > STALE_PENDING


def summarise(
    records: Iterable[AuditRecord],
    *,
    generated_at: datetime,
    since: timedelta,
    policies: PolicySet | None = None,
) -> AuditSummary:
    """The summary of ``records`` over the ``since`` before ``generated_at`` (aware).

    Records outside that window are still counted in the totals (the caller queried
    them); the per-day chart spans every UTC day of the window, days without records
    included, and any day a record falls on outside it.
    """
    rows = list(records)
    start = generated_at - since
    created: dict[date, int] = {}
    deleted: dict[date, int] = {}
    per_policy: dict[str, list[AuditRecord]] = {}
    for r in rows:
        per_policy.setdefault(r.policy, []).append(r)
        if r.outcome != "succeeded":
            continue
        day = r.timestamp.date()
        if r.action == "create":
            created[day] = created.get(day, 0) + 1
        elif r.action == "delete":
            deleted[day] = deleted.get(day, 0) + 1
    first = min([start.date(), *created, *deleted])
    last = max([generated_at.date(), *created, *deleted])
    days = tuple(
        DayCount(d, created.get(d, 0), deleted.get(d, 0))
        for d in (first + timedelta(days=n) for n in range((last - first).days + 1))
    )
    known = {p.name: p for p in policies.policies} if policies is not None else {}
    names = sorted(set(per_policy) | set(known))
    totals = tuple(
        _totals(name, per_policy.get(name, []), known.get(name), policies is not None, generated_at)
        for name in names
    )
    attention = sorted(
        (r for r in rows if needs_attention(r, generated_at)),
        key=lambda r: r.timestamp,
        reverse=True,
    )
    return AuditSummary(
        generated_at=generated_at,
        since=start,
        days=days,
        policies=totals,
        attention=tuple(attention),
        total=len(rows),
    )


def _totals(
    name: str,
    rows: list[AuditRecord],
    policy: Policy | None,
    have_policies: bool,
    generated_at: datetime,
) -> PolicyTotals:
    creates = [r for r in rows if r.action == "create" and r.outcome == "succeeded"]
    newest = max((r.timestamp for r in creates), default=None)
    rpo, reason = _rpo(policy, have_policies, newest, generated_at)
    return PolicyTotals(
        policy=name,
        records=len(rows),
        created=len(creates),
        deleted=sum(1 for r in rows if r.action == "delete" and r.outcome == "succeeded"),
        failed=sum(1 for r in rows if r.outcome == "failed"),
        newest_created=newest,
        rpo=rpo,
        rpo_reason=reason,
    )


def _rpo(
    policy: Policy | None, have_policies: bool, newest: datetime | None, generated_at: datetime
) -> tuple[RpoStatus, str]:
    if policy is None:
        if have_policies:
            return "unknown", "no policy file defines this policy now"
        return "unknown", "no policy files given: no schedule to compare with"
    if not policy.enabled:
        return "unknown", "the policy is disabled"
    period = schedule_period(policy, generated_at)
    if period is None:
        return "unknown", f"the schedule {policy.schedule.expression} gives no period yet"
    limit = 2 * period
    if newest is None:
        return "missed", "no succeeded create in these records"
    age = generated_at - newest
    if age < limit:
        return "met", f"newest create is {format_age(age)} old: within 2 x {format_age(period)}"
    return "missed", f"newest create is {format_age(age)} old: older than 2 x {format_age(period)}"


def schedule_period(policy: Policy, at: datetime) -> timedelta | None:
    """The gap between the policy's slot at ``at`` and the firing before it (what the
    planner and coverage call the period), or None when the schedule cannot say."""
    try:
        trigger = schedules.parse(policy.schedule.expression, policy.schedule.timezone)
    except schedules.ScheduleError:
        return None
    slot = trigger.slot(at)
    previous = None if slot is None else trigger.previous(slot)
    return None if slot is None or previous is None else slot - previous
