"""Closing the delete records a killed run left ``pending``, from EC2 as it is now.

A run killed between its DeleteSnapshot calls and the record's update leaves the record
``pending`` for good: the next plan no longer names snapshots that are gone. Records older
than :data:`PENDING_DELETE_GRACE` (no live run is still on them), up to
:data:`PENDING_DELETE_LOOKBACK` back, are looked up: when none of their snapshots exists
any more, ``succeeded`` ("found gone"); when some do, ``failed`` (the plan deletes them
again if retention still says so). Only ever a conditional update of the original record;
any failure is a note, never a reason to stop the backups.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Final

from smartvault.apply.ports import Ec2
from smartvault.apply.ports import Records
from smartvault.core.model import AuditRecord
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import Outcome
from smartvault.core.model import Snapshot
from smartvault.core.times import iso_utc
from smartvault.errors import AuditError
from smartvault.errors import Ec2CallFailed

#: A ``pending`` delete record older than this belongs to no live run: a run writes it just
#: before its DeleteSnapshot calls and updates it right after them (throttling retried for
#: at most 5 minutes of backoff per snapshot), and a Lambda lives 15 minutes.
PENDING_DELETE_GRACE: Final = timedelta(hours=1)
#: How far back apply looks for them: one DynamoDB Query per UTC day.
PENDING_DELETE_LOOKBACK: Final = timedelta(days=7)


def close_abandoned_deletes(
    records: Records, ec2: Ec2, run_id: str, now: datetime
) -> tuple[str, ...]:
    """Close what earlier runs left pending; one note per record closed or left."""
    try:
        pending = records.pending_deletes(now - PENDING_DELETE_LOOKBACK, now - PENDING_DELETE_GRACE)
    except AuditError as exc:
        return (f"delete records left pending by earlier runs were not checked: {exc}",)
    notes: list[str] = []
    by_region: dict[str, list[tuple[AuditRecordRef, AuditRecord]]] = {}
    for ref, record in pending:
        if record.snapshot_ids:
            by_region.setdefault(record.region, []).append((ref, record))
    for region, entries in sorted(by_region.items()):
        ids = sorted({sid for _, r in entries for sid in r.snapshot_ids})
        try:
            existing = ec2.by_id(region, ids)
        except Ec2CallFailed as exc:
            notes.append(
                f"{len(entries)} delete records left pending in {region} were not checked: {exc}"
            )
            continue
        for ref, record in entries:
            notes.append(_close(records, ref, record, existing, run_id, now))
    return tuple(n for n in notes if n)


def _close(
    records: Records,
    ref: AuditRecordRef,
    record: AuditRecord,
    existing: Mapping[str, Snapshot],
    run_id: str,
    now: datetime,
) -> str:
    left = [sid for sid in record.snapshot_ids if sid in existing]
    gone = [sid for sid in record.snapshot_ids if sid not in existing]
    when = iso_utc(now)
    details = {"resolved_by": run_id, "found_gone": ",".join(gone)}
    if left:
        outcome: Outcome = "failed"
        error = (
            f"the delete did not finish: run {record.run_id} stopped during it; found at "
            f"{when} by run {run_id} that {', '.join(left)} still exist (planned "
            "again while retention says so)"
        )
        details["still_exist"] = ",".join(left)
    else:
        outcome, error = "succeeded", ""
        details["resolution"] = (
            f"found gone at {when} by run {run_id}: the delete had landed, but run "
            f"{record.run_id} stopped before recording it"
        )
    try:
        closed = records.close_pending(ref, outcome, error=error, details=details)
    except AuditError as exc:
        return f"pending delete record {ref.pk} {ref.sk} left pending: {exc}"
    if not closed:
        return ""  # its own run recorded it in the meantime
    return f"pending delete record {ref.pk} {ref.sk} of run {record.run_id} closed: {outcome}"
