"""Audit records: one item per attempted action, written first and updated once."""

from __future__ import annotations

import builtins
import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from smartvault.aws.audit.base import _TableAccess
from smartvault.aws.audit.items import day_partition
from smartvault.aws.audit.items import record_from_item
from smartvault.aws.audit.items import record_item
from smartvault.aws.errors import error_code
from smartvault.core import audit_table as schema
from smartvault.core.audit_table import DEFAULT_AUDIT_TTL_DAYS
from smartvault.core.model import AuditRecord
from smartvault.core.model import AuditRecordRef
from smartvault.core.model import Outcome
from smartvault.core.times import as_utc
from smartvault.core.times import format_timestamp
from smartvault.errors import AuditError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]


_LOG = logging.getLogger(__name__)
_MAX_SEQ = 1_000_000


class AuditRecords(_TableAccess):
    """One item per attempted action: written first, updated once, queried by day or policy."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], datetime],
        ttl_days: int = DEFAULT_AUDIT_TTL_DAYS,
        account_id: str = "",
    ) -> None:
        """``account_id``: the account the actions are in, written on every record that
        does not name one itself."""
        super().__init__(client, table_name, clock=clock, ttl_days=ttl_days)
        self._account_id = account_id
        #: numbers this process's records, so two written in one microsecond keep apart
        self._seq = itertools.count()
        self._seq_lock = threading.Lock()

    def write(self, record: AuditRecord) -> AuditRecordRef:
        """Write one audit record (never overwriting another) and return its key."""
        if self._account_id and not record.account_id:
            record = dataclasses.replace(record, account_id=self._account_id)
        for _ in range(3):
            ref = self._new_ref(record)
            item = record_item(ref, record, self._ttl)
            try:
                self._client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise self._error(f"write the {record.action} record", exc) from exc
                # A botocore retry of a write that had landed, or (vanishingly rare) the
                # same run id, time and sequence from another process: look before retrying.
                old = cast("Item", exc.response.get("Item", {}))
                if old == item:
                    return ref
                continue
            except BotoCoreError as exc:
                raise self._error(f"write the {record.action} record", exc) from exc
            return ref
        raise AuditError(
            f"could not write the {record.action} record of {record.recovery_point} to audit "
            f"table {self.table_name} in {self.region}: its key kept colliding; run again"
        )

    def update_outcome(
        self,
        ref: AuditRecordRef,
        outcome: Outcome,
        error: str = "",
        snapshot_ids: Sequence[str] | None = None,
        *,
        reason: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Set the outcome of a record written earlier (``pending`` → final).

        ``details`` are merged into the record's details; ``reason`` replaces it when given.
        """
        names = {"#o": "outcome", "#e": "error", "#u": "updated_at"}
        values: Item = {
            ":o": {"S": outcome},
            ":e": {"S": error},
            ":u": {"S": format_timestamp(self._clock())},
        }
        sets = ["#o = :o", "#e = :e", "#u = :u"]
        if snapshot_ids is not None:
            names["#s"] = "snapshot_ids"
            values[":s"] = {"L": [{"S": s} for s in snapshot_ids]}
            sets.append("#s = :s")
        if reason is not None:
            names["#r"] = "reason"
            values[":r"] = {"S": reason}
            sets.append("#r = :r")
        names_details = ""
        if details:
            names["#d"] = "details"
            for i, (key, value) in enumerate(sorted(details.items())):
                names[f"#d{i}"] = key
                values[f":d{i}"] = {"S": value}
                sets.append(f"#d.#d{i} = :d{i}")
            names_details = " (with details)"
        self._call(
            f"update an audit record{names_details} to {outcome}",
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": ref.pk}, "sk": {"S": ref.sk}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            ),
        )

    def query(
        self,
        since: datetime,
        until: datetime,
        policy: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditRecord]:
        """Records with ``since <= timestamp <= until``, newest first, never a scan.

        Without ``policy``: one Query per UTC day, newest day first. With ``policy``: one
        Query on the ``by-policy`` index (eventually consistent).
        """
        if until < since or (limit is not None and limit <= 0):
            return []
        low = format_timestamp(since)
        # "~" sorts after "#" and every digit: the last record at exactly ``until``.
        high = format_timestamp(until) + "~"
        found: builtins.list[AuditRecord] = []
        for condition in _key_conditions(since, until, policy, low, high):
            for item in self._query(**condition):
                record = record_from_item(item)
                if record is None:
                    continue
                found.append(record)
                if limit is not None and len(found) >= limit:
                    return found
        return found

    def pending_deletes(
        self, since: datetime, until: datetime
    ) -> builtins.list[tuple[AuditRecordRef, AuditRecord]]:
        """``pending`` delete records with ``since <= timestamp <= until``, oldest day last.

        One Query per UTC day (a filter on outcome and action; never a scan), so the cost
        grows with the look-back, not with the table.
        """
        low = format_timestamp(since)
        high = format_timestamp(until) + "~"
        found: builtins.list[tuple[AuditRecordRef, AuditRecord]] = []
        day = as_utc(until).date()
        while day >= as_utc(since).date():
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                FilterExpression="#o = :pending AND #a = :delete",
                ExpressionAttributeNames={"#o": "outcome", "#a": "action"},
                ExpressionAttributeValues={
                    ":pk": {"S": schema.RECORD_PARTITION_PREFIX + day.isoformat()},
                    ":low": {"S": low},
                    ":high": {"S": high},
                    ":pending": {"S": "pending"},
                    ":delete": {"S": "delete"},
                },
            ):
                record = record_from_item(item)
                if record is not None:
                    ref = AuditRecordRef(item["pk"].get("S", ""), item["sk"].get("S", ""))
                    found.append((ref, record))
            day -= timedelta(days=1)
        return found

    def close_pending(
        self,
        ref: AuditRecordRef,
        outcome: Outcome,
        *,
        error: str = "",
        details: Mapping[str, str],
    ) -> bool:
        """Give a record another run left ``pending`` its outcome, in place (its run id
        stays); False when it is no longer pending (its own run got there first).

        Conditional on ``outcome = pending``: never overwrites what a run recorded itself.
        """
        names = {"#o": "outcome", "#e": "error", "#u": "updated_at", "#d": "details"}
        values: Item = {
            ":o": {"S": outcome},
            ":e": {"S": error},
            ":u": {"S": format_timestamp(self._clock())},
            ":pending": {"S": "pending"},
        }
        sets = ["#o = :o", "#e = :e", "#u = :u"]
        for i, (key, value) in enumerate(sorted(details.items())):
            names[f"#d{i}"] = key
            values[f":d{i}"] = {"S": value}
            sets.append(f"#d.#d{i} = :d{i}")
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": ref.pk}, "sk": {"S": ref.sk}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="#o = :pending",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._error(f"close the pending record {ref.pk} {ref.sk}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"close the pending record {ref.pk} {ref.sk}", exc) from exc
        return True

    def _new_ref(self, record: AuditRecord) -> AuditRecordRef:
        with self._seq_lock:
            seq = next(self._seq) % _MAX_SEQ
        sk = f"{format_timestamp(record.timestamp)}#{record.run_id}#{seq:06d}"
        return AuditRecordRef(day_partition(record.timestamp), sk)

    def _query(self, **kwargs: Any) -> Iterator[Item]:
        """Every item of one Query, newest first, page by page as they are read."""
        pages = iter(
            self._client.get_paginator("query").paginate(
                TableName=self.table_name, ScanIndexForward=False, **kwargs
            )
        )
        while (page := self._call("read the audit log", lambda: next(pages, None))) is not None:
            yield from page.get("Items", [])


def _key_conditions(
    since: datetime, until: datetime, policy: str | None, low: str, high: str
) -> Iterator[dict[str, Any]]:
    """The Queries that cover ``since..until``: one on the ``by-policy`` index for a
    policy, else one per UTC day, newest day first (made only as they are needed)."""
    if policy is not None:
        yield {
            "IndexName": schema.POLICY_INDEX,
            "KeyConditionExpression": "#p = :p AND sk BETWEEN :low AND :high",
            "ExpressionAttributeNames": {"#p": "policy"},
            "ExpressionAttributeValues": {
                ":p": {"S": policy},
                ":low": {"S": low},
                ":high": {"S": high},
            },
        }
        return
    day = as_utc(until).date()
    first = as_utc(since).date()
    while day >= first:
        yield {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": schema.RECORD_PARTITION_PREFIX + day.isoformat()},
                ":low": {"S": low},
                ":high": {"S": high},
            },
        }
        day -= timedelta(days=1)
