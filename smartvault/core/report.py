"""What a run did, in the shapes people read: run results, summaries and notification text.

Pure: :class:`RunResult` is what applying a plan returns and :class:`RunReport` what a
whole run returns (its ``summary()`` is the Lambda's JSON answer); ``summarise`` cuts
one policy's part out of a result, ``should_notify`` and ``compose`` turn that into an
SNS subject and body, and ``notifications_due`` lists them for a run
(:mod:`smartvault.aws.sns` sends them). A notification that
cannot be sent never fails the backups: the caller logs it and audits it as a
``notify`` action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import NamedTuple

from smartvault.core.model import ACTION_TYPES
from smartvault.core.model import Action
from smartvault.core.model import AuditRecord
from smartvault.core.model import HeldBy
from smartvault.core.model import HeldDelete
from smartvault.core.model import Notify
from smartvault.core.model import Outcome
from smartvault.core.model import Plan
from smartvault.core.model import PolicySet
from smartvault.core.times import iso_utc


@dataclass(frozen=True)
class ActionResult:
    """What became of one action. ``audit_error``: the action's record is incomplete."""

    action: Action
    outcome: Outcome
    snapshot_ids: tuple[str, ...] = ()
    error: str = ""
    reason: str = ""
    audit_error: str = ""

    @property
    def needs_attention(self) -> bool:
        return self.outcome == "failed" or bool(self.audit_error)


@dataclass(frozen=True)
class RunResult:
    """Every action's result (in plan order) and the actions this run did not start."""

    run_id: str
    results: tuple[ActionResult, ...]
    stopped_early: bool = False
    not_started: tuple[Action, ...] = ()
    #: why the run stopped early: asked to stop, or the audit log could not be written
    stop_reason: str = ""
    #: what became of records earlier runs left ``pending`` (closed, or why not checked)
    notes: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        counts = {"succeeded": 0, "failed": 0, "skipped": 0}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        counts["not_started"] = len(self.not_started)
        return counts

    @property
    def failed(self) -> tuple[ActionResult, ...]:
        """Failed actions, and actions whose audit record could not be completed."""
        return tuple(r for r in self.results if r.needs_attention)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def complete(self) -> bool:
        """Every action of the plan was started: nothing is left for the next run."""
        return not self.not_started


@dataclass(frozen=True)
class NotifyResult:
    policy: str
    topic_arn: str
    sent: bool
    error: str = ""


_NO_POLICIES = PolicySet(())


@dataclass(frozen=True)
class RunReport:
    """A plan and, unless it was a dry run, what applying it did."""

    plan: Plan
    result: RunResult | None = None
    notifications: tuple[NotifyResult, ...] = ()
    #: (region, policy, resource id) of each resource the plan's policies selected, when
    #: the run read the account itself (not for a saved plan): for the metrics
    selected: frozenset[tuple[str, str, str]] = frozenset()
    #: the policies the run loaded (the plan names them; these say what they are)
    policies: PolicySet = _NO_POLICIES

    @property
    def ok(self) -> bool:
        """No action failed, and ``safety`` held no deletion of an applied run (a held run
        is a failure: a person must look). A dry run changes nothing, and is ok."""
        return self.result is None or (self.result.ok and not self.plan.held_deletes)

    @property
    def complete(self) -> bool:
        """Every planned action was started (a dry run starts none, and is complete)."""
        return self.result is None or self.result.complete

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable account of the run (the Lambda's return value).

        ``complete`` is false when any action was not started (a deadline, a time limit,
        an audit table that could not be written); ``not_started`` then counts them and
        ``not_started_actions`` lists the first :data:`ITEMS_PER_SECTION` of them.
        """
        out: dict[str, Any] = {
            "at": iso_utc(self.plan.at),
            "account_id": self.plan.account_id,
            "regions": list(self.plan.regions),
            "policies": [p.name for p in self.plan.policies],
            "planned": self.plan.summary,
            "warnings": [w.message for w in self.plan.warnings],
            "dry_run": self.result is None,
            # Held deletions are no actions: counted beside them (a dry run's too).
            "held_deletes": len(self.plan.held_deletes),
        }
        if self.result is not None:
            out.update(
                run_id=self.result.run_id,
                outcomes=self.result.counts,
                ok=self.ok,
                complete=self.result.complete,
                not_started=len(self.result.not_started),
                not_started_actions=[
                    {
                        "type": a.type,
                        "policy": a.policy,
                        "region": a.region,
                        "recovery_point": a.recovery_point,
                    }
                    for a in self.result.not_started[:ITEMS_PER_SECTION]
                ],
                stopped_early=self.result.stopped_early,
                stop_reason=self.result.stop_reason,
                failed=[
                    {
                        "type": r.action.type,
                        "policy": r.action.policy,
                        "region": r.action.region,
                        "recovery_point": r.action.recovery_point,
                        "error": r.error or r.audit_error,
                    }
                    for r in self.result.failed
                ],
                notifications=[dataclasses.asdict(n) for n in self.notifications],
                notes=list(self.result.notes),
            )
        return out


#: SNS: a subject is under 100 characters, ASCII, no line breaks or control characters.
SUBJECT_MAX = 99
#: SNS takes messages up to 256 KiB; leave room for the subject and the envelope.
BODY_MAX_BYTES = 256 * 1024 - 4 * 1024
#: Items listed per section before "... and N more"; lowered further when a body is too big.
ITEMS_PER_SECTION = 100
ERROR_MAX_CHARS = 1000


class RecoveryPointResult(NamedTuple):
    """A recovery point created, deleted, archived or copied, and its snapshots."""

    recovery_point: str
    snapshot_ids: tuple[str, ...] = ()
    region: str = ""


class FailedItem(NamedTuple):
    """What failed (a recovery point id, or a description of the action) and why."""

    what: str
    error: str


class SkippedItem(NamedTuple):
    what: str
    reason: str


@dataclass(frozen=True)
class PolicyRunSummary:
    """What one run did for one policy; the caller maps the executor's results into it."""

    policy: str
    run_id: str
    regions: tuple[str, ...] = ()
    created: tuple[RecoveryPointResult, ...] = ()
    deleted: tuple[RecoveryPointResult, ...] = ()
    archived: tuple[RecoveryPointResult, ...] = ()
    copied: tuple[RecoveryPointResult, ...] = ()
    #: recovery points a restore test turned into available volumes
    verified: tuple[RecoveryPointResult, ...] = ()
    failed: tuple[FailedItem, ...] = ()
    skipped: tuple[SkippedItem, ...] = ()
    #: what the run did not start (``create <rp> [region]``): the next run does it
    not_started: tuple[str, ...] = ()
    dry_run: bool = False
    #: the run stopped starting actions near its deadline; the next run goes on
    stopped_early: bool = False
    #: per region, the deletions ``safety`` held and the rule that held them
    held: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No failure, no deletion held, and nothing left undone.

        A run that stopped early is not ok: what it did not reach (a backup due now,
        say) may only happen at the next scheduled run, which for a nightly policy is
        a missed night. People who asked to hear about failures want to hear that. A
        run whose deletions ``safety`` held needs a person to decide on them.
        """
        return not self.failed and not self.stopped_early and not self.not_started and not self.held


def summarise(
    policy: str, result: RunResult, regions: Sequence[str], held: Sequence[HeldDelete] = ()
) -> PolicyRunSummary:
    """What ``result`` did for one policy, in the shape notifications report it (``held``:
    the plan's held deletions, of any policy)."""
    mine = [r for r in result.results if r.action.policy == policy]
    done: dict[str, list[RecoveryPointResult]] = {t: [] for t in (*ACTION_TYPES, "verify")}
    failed: list[FailedItem] = []
    skipped: list[SkippedItem] = []
    for r in mine:
        what = _what(r.action)
        if r.outcome == "failed" or r.audit_error:
            # "restore test of <rp> failed: vol-1 not available after 30m"
            failed.append(
                FailedItem(
                    f"{what} failed" if r.action.type == "verify" else what,
                    r.error or r.audit_error,
                )
            )
        elif r.outcome == "succeeded":
            done[r.action.type].append(
                RecoveryPointResult(r.action.recovery_point, r.snapshot_ids, r.action.region)
            )
        elif r.outcome == "skipped":
            skipped.append(SkippedItem(what, r.reason))
    not_started = [a for a in result.not_started if a.policy == policy]
    return PolicyRunSummary(
        policy=policy,
        run_id=result.run_id,
        regions=tuple(regions),
        created=tuple(done["create"]),
        deleted=tuple(done["delete"]),
        archived=tuple(done["archive"]),
        copied=tuple(done["copy"]),
        verified=tuple(done["verify"]),
        failed=tuple(failed),
        skipped=tuple(skipped),
        not_started=tuple(f"{_what(a)} [{a.region}]" for a in not_started),
        stopped_early=result.stopped_early and bool(not_started),
        held=_held_lines(policy, held),
    )


def _held_lines(policy: str, held: Sequence[HeldDelete]) -> tuple[str, ...]:
    """``us-east-1: 9 deletions held (max_delete_fraction 0.5: …)``, one per region."""
    by_region: dict[str, list[HeldDelete]] = {}
    for entry in held:
        if entry.action.policy == policy:
            by_region.setdefault(entry.action.region, []).append(entry)
    return tuple(
        f"{region}: {len(entries)} deletion{'s' * (len(entries) != 1)} held "
        f"({HeldBy.headline([e.held_by for e in entries])})"
        for region, entries in sorted(by_region.items())
    )


def _what(action: Action) -> str:
    if action.type == "verify":
        return f"restore test of {action.recovery_point}"
    return f"{action.type} {action.recovery_point}"


class Notification(NamedTuple):
    """One message a policy asked for: the topic it goes to, and what it says."""

    policy: str
    topic_arn: str
    subject: str
    body: str

    def audit_record(
        self, outcome: NotifyResult, *, run_id: str, region: str, at: datetime, actor: str
    ) -> AuditRecord:
        """The ``notify`` action's audit record: sent or not, and why not."""
        return AuditRecord(
            run_id=run_id,
            timestamp=at,
            action="notify",
            outcome="succeeded" if outcome.sent else "failed",
            policy=self.policy,
            region=region,
            resource_id=self.topic_arn,
            recovery_point="",
            reason=self.subject,
            error=outcome.error,
            actor=actor,
        )


def notifications_due(plan: Plan, policies: PolicySet, result: RunResult) -> list[Notification]:
    """A message for each enabled policy of ``plan`` whose ``notify.on`` asks for this run."""
    due: list[Notification] = []
    for slot in plan.policies:
        policy = policies.get(slot.name)
        if policy is None or policy.notify is None or not policy.enabled:
            continue
        summary = summarise(policy.name, result, plan.regions, plan.held_deletes)
        if should_notify(policy.notify, summary):
            subject, body = compose(summary)
            due.append(Notification(policy.name, policy.notify.sns_topic_arn, subject, body))
    return due


def should_notify(notify: Notify, summary: PolicyRunSummary) -> bool:
    """Whether this run's outcome is one the policy's ``notify.on`` asks to hear about.

    ``always``: every run. ``failure``: a run with a failed action or one that stopped
    early (see :attr:`PolicyRunSummary.ok`). ``success``: a run that is ok, even one with
    nothing to do (it confirms the schedule ran).
    """
    on = set(notify.on)
    if "always" in on:
        return True
    if summary.ok:
        return "success" in on
    return "failure" in on


def compose(summary: PolicyRunSummary) -> tuple[str, str]:
    """``(subject, body)`` for SNS: a short ASCII subject and a plain-text report.

    The body lists what was created, deleted, archived, copied, verified by a restore
    test, what failed (with the error) and what was skipped, then the run id and the
    command that shows its audit records. Long lists are cut with a count of what was
    left out, so the body always fits in one SNS message.
    """
    subject = _subject(summary)
    for per_section, error_chars in ((ITEMS_PER_SECTION, ERROR_MAX_CHARS), (20, 300), (5, 200)):
        body = _body(summary, per_section, error_chars)
        if len(body.encode()) <= BODY_MAX_BYTES:
            return subject, body
    return subject, _cut_to_bytes(body, BODY_MAX_BYTES)


def _subject(summary: PolicyRunSummary) -> str:
    if summary.failed:
        outcome = "FAILED"
    elif summary.held:
        outcome = "DELETIONS HELD"
    elif summary.stopped_early or summary.not_started:
        outcome = "INCOMPLETE"
    else:
        outcome = "ok"
    counts = ", ".join(
        f"{len(items)} {label}"
        for label, items in (
            ("failed", summary.failed),
            ("not started", summary.not_started),
            ("created", summary.created),
            ("deleted", summary.deleted),
            ("archived", summary.archived),
            ("copied", summary.copied),
            ("verified", summary.verified),
        )
        if items
    )
    prefix = "[dry run] " if summary.dry_run else ""
    text = f"{prefix}SmartVault {summary.policy}: {outcome}"
    if counts:
        text += f" ({counts})"
    return _ascii_subject(text)


def _ascii_subject(text: str) -> str:
    """Printable ASCII on one line, under SNS's 100 characters, starting with a letter,
    digit or punctuation mark (no leading space)."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text).strip() or "SmartVault"
    if len(clean) > SUBJECT_MAX:
        clean = clean[: SUBJECT_MAX - 3].rstrip() + "..."
    return clean


def _body(summary: PolicyRunSummary, per_section: int, error_chars: int) -> str:
    incomplete = summary.stopped_early or bool(summary.not_started)
    state = (
        "FAILED"
        if summary.failed
        else "DELETIONS HELD"
        if summary.held
        else "INCOMPLETE"
        if incomplete
        else "ok"
    )
    lines = [
        f"SmartVault policy {summary.policy}: {state}",
        "",
        f"Run id:   {summary.run_id}",
        f"Regions:  {', '.join(summary.regions) or '-'}",
    ]
    if summary.dry_run:
        lines.append("Dry run:  yes, nothing was changed")
    if incomplete:
        lines += [
            "",
            f"Work remains: {len(summary.not_started)} action(s) were not started (the run "
            "stopped starting new actions near its time limit, or could not write its audit "
            "log); the next run does the rest, planning again from the account.",
        ]
    if summary.held:
        lines += [
            "",
            "Deletions held by safety: this run would have deleted more than the policy's "
            "safety rules allow, so it deleted none of them (backups were still made). "
            "Review them with `smartvault plan` (held_deletes); if they are right, a person "
            f"applies them with `smartvault apply --allow-deletes {summary.policy}`.",
        ]
    sections: Sequence[tuple[str, Sequence[str]]] = (
        ("Held by safety", list(summary.held)),
        (
            "Failed",
            [
                f"{_clip(f.what, error_chars)}: {_clip(f.error, error_chars)}"
                for f in summary.failed
            ],
        ),
        ("Not started", [_clip(n, error_chars) for n in summary.not_started]),
        ("Created", [_point(r) for r in summary.created]),
        ("Deleted", [_point(r) for r in summary.deleted]),
        ("Archived", [_point(r) for r in summary.archived]),
        ("Copied", [_point(r) for r in summary.copied]),
        ("Verified by a restore test", [_point(r) for r in summary.verified]),
        (
            "Skipped",
            [
                f"{_clip(s.what, error_chars)}: {_clip(s.reason, error_chars)}"
                for s in summary.skipped
            ],
        ),
    )
    for title, items in sections:
        if not items:
            continue
        lines += ["", f"{title} ({len(items)}):"]
        lines += [f"  - {item}" for item in items[:per_section]]
        if len(items) > per_section:
            lines.append(f"  ... and {len(items) - per_section} more (see the audit log)")
    if not any(items for _, items in sections):
        lines += ["", "Nothing to do: every resource already had its recovery point."]
    lines += [
        "",
        "This run's audit records:",
        f"  smartvault audit list --run-id {summary.run_id}",
        "and this policy's recent ones:",
        f"  smartvault audit list --since 1d --policy {summary.policy}",
    ]
    return "\n".join(lines) + "\n"


def _point(result: RecoveryPointResult) -> str:
    where = f" [{result.region}]" if result.region else ""
    snapshots = f": {', '.join(result.snapshot_ids)}" if result.snapshot_ids else ""
    return f"{result.recovery_point}{where}{snapshots}"


def _clip(text: str, limit: int) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def _cut_to_bytes(body: str, limit: int) -> str:
    marker = "\n... (cut to fit one SNS message; see the audit log)\n"
    room = limit - len(marker.encode())
    # errors="ignore" drops a multi-byte character split by the cut.
    return body.encode()[:room].decode(errors="ignore") + marker
