"""The one claim guard: each decision on its own, with in-memory claims and records."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import timedelta

import pytest

from smartvault.apply.claims import ClaimGuard
from smartvault.apply.claims import Verdict
from smartvault.apply.ledger import RunLedger
from smartvault.apply.trail import AuditTrail
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import ClaimResult
from smartvault.core.report import ActionResult
from tests.factories import CREATE
from tests.factories import Clock
from tests.factories import utc

NOW = utc(2026, 11, 28, 3, 5)
LEASE = timedelta(minutes=15)
RP = CREATE.recovery_point


@dataclass
class MemoryClaims:
    """Claims as the audit table keeps them, minus DynamoDB."""

    held: dict[str, ClaimResult] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)
    #: what ``renew`` answers: None when the claim is no longer this run's
    renew_answer: ClaimResult | None = None

    def acquire(self, claim_id, run_id, lease):
        current = self.held.get(claim_id)
        if current is not None and current.run_id != run_id:
            # another run's live claim reads as held; a done one as done
            return replace(current, status="held") if current.status == "claimed" else current
        self.held[claim_id] = ClaimResult("claimed", claim_id, run_id, NOW + lease)
        return self.held[claim_id]

    def renew(self, claim, run_id, lease):
        return self.renew_answer

    def take_over(self, done, run_id, lease):
        return ClaimResult("claimed", done.recovery_point, run_id, NOW + lease, version=2)

    def complete(self, claim_id, run_id, snapshot_ids):
        self.held[claim_id] = ClaimResult("done", claim_id, run_id, NOW, tuple(snapshot_ids))

    def release(self, claim_id, run_id=None, *, only_done=False):
        self.released.append(claim_id)
        self.held.pop(claim_id, None)
        return True


@dataclass
class MemoryRecords:
    written: list = field(default_factory=list)
    updated: list = field(default_factory=list)

    def write(self, record):
        self.written.append(record)
        return AuditRecordRef("DAY#2026-11-28", f"sk-{len(self.written)}")

    def update_outcome(self, ref, outcome, **fields):
        self.updated.append((ref, outcome))

    def pending_deletes(self, since, until):
        return []

    def close_pending(self, ref, outcome, *, error="", details):
        return True


def guard(claims: MemoryClaims, clock: Clock) -> tuple[ClaimGuard, MemoryRecords]:
    records = MemoryRecords()
    trail = AuditTrail(records, RunLedger("run-1"), actor="tester", clock=clock)
    return ClaimGuard(claims, trail, run_id="run-1", lease=LEASE, clock=clock), records


def pending(clock: Clock):
    """The record a create writes before its call."""
    trail = AuditTrail(MemoryRecords(), RunLedger("run-1"), actor="tester", clock=clock)
    return trail.record_of(CREATE, "pending")


def claim(status, run_id="run-2", until=NOW + LEASE) -> ClaimResult:
    return ClaimResult(status, RP, run_id, until)


@pytest.mark.parametrize(
    ("found_claim", "found", "expected"),
    [
        (claim("claimed", "run-1"), False, Verdict.PROCEED),
        (claim("held"), False, Verdict.HELD),
        (claim("done"), True, Verdict.DONE),
        (claim("done"), False, Verdict.RECENT),
        (claim("done", until=NOW - timedelta(seconds=1)), False, Verdict.TAKE_OVER),
    ],
    ids=["ours", "another run's live lease", "done and there", "done moments ago", "done, gone"],
)
def test_each_claim_gets_its_one_decision(found_claim, found, expected):
    checker, _ = guard(MemoryClaims(), Clock(NOW))
    assert checker.verdict(found_claim, found=found) is expected


def test_a_claim_more_than_half_used_is_renewed_before_the_call():
    claims = MemoryClaims(renew_answer=claim("claimed", "run-1", NOW + 2 * LEASE))
    clock = Clock(NOW)
    checker, records = guard(claims, clock)
    taken = checker.acquire(RP)
    clock.advance(minutes=8)  # more than half of 15
    _ref, renewed, taken_over = checker.start(CREATE, taken, pending(clock), "not created")
    assert renewed.lease_until == NOW + 2 * LEASE
    assert taken_over is False
    assert [r.outcome for r in records.written] == ["pending"]


def test_a_claim_lost_while_waiting_is_taken_again_and_the_caller_told_to_look_again():
    claims = MemoryClaims(renew_answer=None)  # our lease lapsed, the claim is free
    clock = Clock(NOW)
    checker, _records = guard(claims, clock)
    taken = checker.acquire(RP)
    claims.held.clear()
    clock.advance(minutes=16)
    _ref, renewed, taken_over = checker.start(CREATE, taken, pending(clock), "x")
    assert renewed.status == "claimed"
    assert taken_over is True


def test_a_claim_passed_to_another_run_skips_the_action_and_is_not_handed_back():
    claims = MemoryClaims(renew_answer=None)
    clock = Clock(NOW)
    checker, records = guard(claims, clock)
    taken = checker.acquire(RP)
    claims.held[RP] = claim("claimed", "run-2", NOW + 2 * LEASE)  # run-2 took it meanwhile
    clock.advance(minutes=16)
    result = checker.start(CREATE, taken, pending(clock), "not created")
    assert isinstance(result, ActionResult)
    assert result.outcome == "skipped"
    assert result.reason == "its claim passed to run run-2 while this run waited"
    assert records.updated == [(AuditRecordRef("DAY#2026-11-28", "sk-1"), "skipped")]
    checker.release_held()
    assert claims.released == []  # run-2's claim is never released by run-1


def test_at_the_end_only_claims_still_held_are_handed_back():
    claims = MemoryClaims()
    checker, _ = guard(claims, Clock(NOW))
    checker.acquire("a")
    checker.acquire("b")
    checker.acquire("c")
    checker.complete("a", ("snap-1",))
    checker.keep("b")  # an unknown outcome: kept for its lease
    checker.release_held()
    assert claims.released == ["c"]
