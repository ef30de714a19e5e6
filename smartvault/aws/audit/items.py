"""Audit items as DynamoDB stores them, to and from SmartVault's records."""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from smartvault.core import audit_table as schema
from smartvault.core.model import AuditAction
from smartvault.core.model import AuditRecord
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import ClaimResult
from smartvault.core.model import Outcome
from smartvault.core.times import as_utc
from smartvault.core.times import format_timestamp
from smartvault.core.times import parse_timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]


_LOG = logging.getLogger(__name__)


def day_partition(timestamp: datetime) -> str:
    """``DAY#YYYY-MM-DD`` for the UTC day of ``timestamp``."""
    return schema.RECORD_PARTITION_PREFIX + as_utc(timestamp).strftime("%Y-%m-%d")


def record_item(ref: AuditRecordRef, record: AuditRecord, ttl: timedelta) -> Item:
    item: Item = {
        "pk": {"S": ref.pk},
        "sk": {"S": ref.sk},
        "run_id": {"S": record.run_id},
        "timestamp": {"S": format_timestamp(record.timestamp)},
        "action": {"S": record.action},
        "outcome": {"S": record.outcome},
        "region": {"S": record.region},
        "resource_id": {"S": record.resource_id},
        "recovery_point": {"S": record.recovery_point},
        "snapshot_ids": {"L": [{"S": s} for s in record.snapshot_ids]},
        "reason": {"S": record.reason},
        "error": {"S": record.error},
        "actor": {"S": record.actor},
        "details": {"M": {k: {"S": v} for k, v in record.details.items()}},
        schema.TTL_ATTRIBUTE: {"N": str(epoch(record.timestamp + ttl))},
    }
    # An index key may not be an empty string; a record without a policy (a notify
    # record, say) simply stays out of the by-policy index.
    if record.policy:
        item["policy"] = {"S": record.policy}
    if record.account_id:  # older records have none
        item["account_id"] = {"S": record.account_id}
    return item


def record_from_item(item: Item) -> AuditRecord | None:
    """The record an item holds, as far as it can be read; None when it has no readable time.

    Items are normally written by :meth:`AuditLog.record`, but a person (or an old bug) may
    have written one by hand: one odd item must not make the whole log unreadable. Whatever
    could not be read is named in ``details["unreadable"]`` and logged as a warning, with
    the item's key.
    """
    problems: builtins.list[str] = []
    fields: Mapping[str, Any] = item  # untrusted: any shape DynamoDB can store

    def s(name: str) -> str:
        value = fields.get(name)
        if value is None:
            return ""
        if isinstance(value, dict) and isinstance(value.get("S"), str):
            text: str = value["S"]
            return text
        problems.append(f"{name} {_raw(value)} is not a string")
        return ""

    def strings(value: Any, name: str) -> builtins.list[str]:
        out: builtins.list[str] = []
        for entry in value:
            if isinstance(entry, dict) and isinstance(entry.get("S"), str):
                out.append(entry["S"])
            else:
                problems.append(f"{name} holds {_raw(entry)}, not a string")
        return out

    pk, sk = s("pk"), s("sk")
    raw_ids = fields.get("snapshot_ids", {"L": []})
    if isinstance(raw_ids, dict) and isinstance(raw_ids.get("L"), builtins.list):
        snapshot_ids = strings(raw_ids["L"], "snapshot_ids")
    elif isinstance(raw_ids, dict) and isinstance(raw_ids.get("SS"), builtins.list):
        snapshot_ids = sorted(raw_ids["SS"])
    else:
        problems.append(f"snapshot_ids {_raw(raw_ids)} is not a list")
        snapshot_ids = []
    details: dict[str, str] = {}
    raw_details = fields.get("details", {"M": {}})
    if isinstance(raw_details, dict) and isinstance(raw_details.get("M"), dict):
        for key, value in raw_details["M"].items():
            if isinstance(value, dict) and isinstance(value.get("S"), str):
                details[key] = value["S"]
            else:
                problems.append(f"details.{key} {_raw(value)} is not a string")
    else:
        problems.append(f"details {_raw(raw_details)} is not a map")

    text = s("timestamp")
    timestamp = _parse_or_none(text)
    if timestamp is None:
        # The sort key starts with the same time: the record still sorts where it was written.
        timestamp = _parse_or_none(sk.split("#", 1)[0])
        problems.append(
            f"timestamp {text!r} is not ISO 8601 UTC (%Y-%m-%dT%H:%M:%S.%fZ)"
            + ("; shown at the time in its key" if timestamp is not None else "")
        )
    if timestamp is None:
        _LOG.warning(
            "audit item %s %s left out of the listing: it has no readable time (%s); "
            "look at it with `aws dynamodb get-item`",
            pk,
            sk,
            "; ".join(problems),
        )
        return None
    action = s("action")
    outcome = s("outcome")
    record = AuditRecord(
        run_id=s("run_id"),
        timestamp=timestamp,
        action=cast(AuditAction, action),
        outcome=cast(Outcome, outcome),
        policy=s("policy"),
        region=s("region"),
        resource_id=s("resource_id"),
        recovery_point=s("recovery_point"),
        snapshot_ids=tuple(snapshot_ids),
        reason=s("reason"),
        error=s("error"),
        actor=s("actor"),
        account_id=s("account_id"),
        details=details,
    )
    if problems:
        _LOG.warning("audit item %s %s is malformed: %s", pk, sk, "; ".join(problems))
        record = dataclasses.replace(record, details={**details, "unreadable": "; ".join(problems)})
    return record


def _parse_or_none(text: str) -> datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def _raw(value: Any) -> str:
    """A DynamoDB attribute value as it was stored, short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def claim_from_item(recovery_point: str, item: Item) -> ClaimResult:
    state = item.get("state", {}).get("S", "")
    return ClaimResult(
        status="done" if state == "done" else "held",
        recovery_point=recovery_point,
        run_id=item.get("run_id", {}).get("S", ""),
        lease_until=datetime.fromtimestamp(int(item.get("lease_until", {}).get("N", "0")), tz=UTC),
        snapshot_ids=tuple(v.get("S", "") for v in item.get("snapshot_ids", {}).get("L", [])),
        version=int(item.get("version", {}).get("N", "1")),
    )


def epoch(moment: datetime) -> int:
    return int(as_utc(moment).timestamp())
