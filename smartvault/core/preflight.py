"""The checks a run makes before it changes anything, as pure rules.

Each rule returns what is wrong, in words that say what to do, or ``None``; the engine
(:meth:`smartvault.engine.Engine.run`) calls each one once, whichever door the run
came through, and raises the error that fits. ``only_policies`` cuts a plan down to
the policies a run was asked for.
"""

from __future__ import annotations

import dataclasses
import difflib
import posixpath
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta

from smartvault.core.model import AuditRecord
from smartvault.core.model import CopyAction
from smartvault.core.model import Plan
from smartvault.core.model import PolicySet
from smartvault.core.times import iso_utc

#: how far a saved plan's ``at`` may lie ahead of this machine's clock (the reviewer's
#: machine and this one may disagree a little); beyond it the plan is refused
PLAN_CLOCK_SKEW = timedelta(minutes=5)


def unknown_policies(
    names: Sequence[str], policies: PolicySet, paths: Sequence[str], named_in: str
) -> str | None:
    """Which of ``names`` no loaded policy has (with the closest known name, if any)."""
    missing = [n for n in names if policies.get(n) is None]
    if not missing:
        return None
    known = [p.name for p in policies.policies]
    hints = [
        f"{name} (did you mean {close[0]}?)" if close else name
        for name in missing
        for close in [difflib.get_close_matches(name, known, n=1)]
    ]
    return (
        f"no policy named {', '.join(hints)} in {', '.join(paths)}: fix {named_in} "
        f"(known: {', '.join(known)})"
    )


def only_policies(plan: Plan, names: Sequence[str]) -> Plan:
    """The part of ``plan`` that belongs to ``names`` (planned with every policy loaded,
    so other policies' snapshots are not mistaken for orphans)."""
    wanted = set(names)
    return dataclasses.replace(
        plan,
        policies=tuple(p for p in plan.policies if p.name in wanted),
        actions=tuple(a for a in plan.actions if a.policy in wanted),
        held_deletes=tuple(h for h in plan.held_deletes if h.action.policy in wanted),
        kept=tuple(k for k in plan.kept if k.policy in wanted),
        skipped=tuple(s for s in plan.skipped if s.policy in wanted),
        warnings=tuple(w for w in plan.warnings if w.policy is None or w.policy in wanted),
    )


#: how far behind the clock a run may be asked to act (:func:`run_at_problem`)
MAX_RUN_AGE = timedelta(hours=24)


def saved_plan_out_of_time(saved: Plan, now: datetime, max_age: timedelta) -> str | None:
    """Why ``saved`` may not be applied at ``now`` whatever the account holds.

    Its age is measured from ``at``, the time re-planning uses, never from
    ``generated_at``, which nothing checks. A plan evaluated ahead of the clock
    (``plan --at`` a later day) would delete what the policies keep today and stamp a
    recovery point with a slot that has not come: it can be read, never applied.
    """
    ahead = saved.at - now
    if ahead > PLAN_CLOCK_SKEW:
        return (
            f"the saved plan is evaluated at {iso_utc(saved.at)}, {_hours(ahead)} in the "
            f"future (this machine's clock says {iso_utc(now)}): `plan --at` is for looking "
            "ahead, never for acting ahead; nothing was done. Run `smartvault plan --out "
            "FILE` without --at, review it and apply that"
        )
    age = now - saved.at
    if age > max_age:
        return (
            f"the saved plan is evaluated at {iso_utc(saved.at)}, {_hours(age)} ago, more "
            f"than --max-plan-age {_as_given(max_age)}; nothing was done. Run `smartvault "
            "plan --out FILE` again and review it"
        )
    return None


def run_at_problem(at: datetime, now: datetime, max_age: timedelta = MAX_RUN_AGE) -> str | None:
    """Why a run may not plan and apply at ``at`` (a fleet's shard, whose rounds all plan at
    their tick's time), or None: never ahead of the clock, as for a saved plan, and never
    more than ``max_age`` behind it, when the work of that time is long overtaken by the
    slots since."""
    ahead = at - now
    if ahead > PLAN_CLOCK_SKEW:
        return (
            f"the run is asked to act at {iso_utc(at)}, {_hours(ahead)} in the future (the "
            f"clock says {iso_utc(now)}): a run never acts ahead; give a time that has come"
        )
    if now - at > max_age:
        return (
            f"the run is asked to act at {iso_utc(at)}, {_hours(now - at)} ago, more than "
            f"{_hours(max_age)}: the slots since have overtaken it; start a new run (a "
            "fleet's next tick does)"
        )
    return None


def _as_given(span: timedelta) -> str:
    """A limit as the person wrote it (``30m``), when the flag kept that (``as_written``),
    else in its largest whole unit of minutes, hours or days."""
    written = getattr(span, "as_written", None)
    if isinstance(written, str):
        return written
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def saved_plan_mismatch(
    saved: Plan,
    fresh: Plan,
    differences: Sequence[str],
    records: Sequence[AuditRecord] = (),
) -> str | None:
    """Why ``saved`` is not what planning again at its ``at`` gave (``fresh``, which
    differs from it in ``differences``), naming the cause where it is known: another
    account, a run that already applied it (``records``: the audit records since its
    ``at``), other policy files or policies, or else the account (or the policies' text)."""
    if fresh.account_id != saved.account_id:
        return (
            f"the saved plan is for account {saved.account_id}, but these credentials are "
            f"for account {fresh.account_id}: nothing was done"
        )
    if not differences:
        return None
    listed = "\n".join(f"  {line}" for line in differences)
    again = (
        f"Planning again at {iso_utc(saved.at)} gives:\n{listed}\n"
        "Run `smartvault plan --out FILE` again and review the new plan."
    )
    applied = _applied_by(saved, records)
    if applied:
        return f"{applied}; nothing was done. {again}"
    files_then, files_now = _files(saved), _files(fresh)
    if files_then != files_now:
        return (
            "the saved plan was made from other policy files than these: "
            f"the plan's: {', '.join(files_then) or 'none'}; given now: "
            f"{', '.join(files_now) or 'none'}; nothing was done. Give `apply --plan` the "
            f"policy files the plan was made from, or {again[0].lower()}{again[1:]}"
        )
    names_then = {p.name for p in saved.policies}
    names_now = {p.name for p in fresh.policies}
    if names_then != names_now:
        only_then = ", ".join(sorted(names_then - names_now)) or "none"
        only_now = ", ".join(sorted(names_now - names_then)) or "none"
        return (
            "the policies changed since the plan was made (only in the plan: "
            f"{only_then}; only now: {only_now}); nothing was done. {again}"
        )
    return (
        "the saved plan no longer matches the account (or the policies were edited since "
        f"it was made); nothing was done. {again}"
    )


def _files(plan: Plan) -> list[str]:
    return sorted({posixpath.normpath(p.file) for p in plan.policies})


def _applied_by(saved: Plan, records: Sequence[AuditRecord]) -> str | None:
    """``already applied by run X``, when the audit records show that every action of
    ``saved`` succeeded (``partly applied`` when some did), or None."""
    done: dict[tuple[str, str, str, str], str] = {}
    for record in records:
        if record.outcome == "succeeded":
            target = record.details.get("target_region", "") if record.action == "copy" else ""
            key = (record.action, record.region, record.recovery_point, target)
            done.setdefault(key, record.run_id)
    runs: list[str] = []
    matched = 0
    for action in saved.actions:
        target = action.target_region if isinstance(action, CopyAction) else ""
        run = done.get((action.type, action.region, action.recovery_point, target))
        if run is not None:
            matched += 1
            if run not in runs:
                runs.append(run)
    if not matched:
        return None
    by = f"run{'s' if len(runs) > 1 else ''} {', '.join(runs)}"
    if matched == len(saved.actions):
        return f"the saved plan was already applied by {by}"
    return (
        f"the saved plan was partly applied by {by}: {matched} of its "
        f"{len(saved.actions)} actions succeeded"
    )


def _hours(delta: timedelta) -> str:
    """How long ago, or ahead: minutes under two hours (never ``0.0h``), then hours, days."""
    seconds = delta.total_seconds()
    if seconds < 7200:
        return f"{max(1, round(seconds / 60))}m"
    hours = seconds / 3600
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"
