"""The checks a run makes before it changes anything, as pure rules.

Each rule returns what is wrong, in words that say what to do, or ``None``; the engine
(:meth:`smartvault.engine.Engine.run`) calls each one once, whichever door the run
came through, and raises the error that fits. ``only_policies`` cuts a plan down to
the policies a run was asked for.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta

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
        kept=tuple(k for k in plan.kept if k.policy in wanted),
        skipped=tuple(s for s in plan.skipped if s.policy in wanted),
        warnings=tuple(w for w in plan.warnings if w.policy is None or w.policy in wanted),
    )


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


def saved_plan_mismatch(saved: Plan, fresh: Plan, differences: Sequence[str]) -> str | None:
    """Why ``saved`` is not what planning again at its ``at`` gave (``fresh``, which
    differs from it in ``differences``): another account, or other actions."""
    if fresh.account_id != saved.account_id:
        return (
            f"the saved plan is for account {saved.account_id}, but these credentials are "
            f"for account {fresh.account_id}: nothing was done"
        )
    if not differences:
        return None
    listed = "\n".join(f"  {line}" for line in differences)
    return (
        "the saved plan no longer matches the account; nothing was done. "
        f"Planning again at {iso_utc(saved.at)} gives:\n{listed}\n"
        "Run `smartvault plan --out FILE` again and review the new plan."
    )


def _hours(delta: timedelta) -> str:
    """How long ago, or ahead: minutes under two hours (never ``0.0h``), then hours, days."""
    seconds = delta.total_seconds()
    if seconds < 7200:
        return f"{max(1, round(seconds / 60))}m"
    hours = seconds / 3600
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"
