"""The audit trail in DynamoDB: one item per attempted action, and the create claims.

The table layout is fixed (docs/audit-and-apply.md; the deploy template builds the same
table from :data:`TABLE_DEFINITION`):

- audit records: ``pk = "DAY#<YYYY-MM-DD>"`` (UTC day of the record's timestamp),
  ``sk = "<timestamp, ISO 8601 UTC with microseconds>Z#<run_id>#<seq>"``;
- the ``by-policy`` index: ``policy`` + ``sk``, so "what happened to policy P" is a Query;
- claims: ``pk = "CLAIM#<recovery point>"``, ``sk = "CLAIM"``, with no ``policy``
  attribute so they never show up in the index.

Every failure to read or write raises :class:`~smartvault.errors.AuditError` naming the
table, the region and what to do; no botocore exception leaves this module.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import Final
from typing import Literal
from typing import TypeVar
from typing import cast

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from smartvault.core.audit_table import DEFAULT_AUDIT_TTL_DAYS
from smartvault.core.model import AuditAction
from smartvault.core.model import AuditRecord
from smartvault.core.model import Outcome
from smartvault.core.times import as_utc
from smartvault.core.times import format_timestamp
from smartvault.core.times import parse_timestamp
from smartvault.errors import AuditError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]

T = TypeVar("T")
_LOG = logging.getLogger(__name__)

POLICY_INDEX: Final = "by-policy"
TTL_ATTRIBUTE: Final = "expires_at"
CLAIM_SK: Final = "CLAIM"

#: The table as CreateTable wants it; the deploy template renders the same data.
TABLE_DEFINITION: Final[Mapping[str, Any]] = {
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "policy", "AttributeType": "S"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": POLICY_INDEX,
            "KeySchema": [
                {"AttributeName": "policy", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
    "SSESpecification": {"Enabled": True},
    "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
}

_EXPECTED_KEYS = {("pk", "HASH", "S"), ("sk", "RANGE", "S")}
_BATCH_SIZE = 25  # BatchWriteItem's limit
_BATCH_ATTEMPTS = 8
_TABLE_WAIT_SECONDS = 300
_MAX_SEQ = 1_000_000


@dataclass(frozen=True)
class AuditRecordRef:
    """The key of one audit record, to update its outcome later."""

    pk: str
    sk: str


ClaimStatus = Literal["claimed", "held", "done"]


@dataclass(frozen=True)
class ClaimResult:
    """What :meth:`AuditLog.claim` found.

    ``claimed``: this run now holds the recovery point until ``lease_until``.
    ``held``: another run (``run_id``) holds a live lease. ``done``: run ``run_id``
    completed it with ``snapshot_ids``. ``version`` guards a take-over.
    """

    status: ClaimStatus
    recovery_point: str
    run_id: str
    lease_until: datetime
    snapshot_ids: tuple[str, ...] = ()
    version: int = 0


def day_partition(timestamp: datetime) -> str:
    """``DAY#YYYY-MM-DD`` for the UTC day of ``timestamp``."""
    return "DAY#" + as_utc(timestamp).strftime("%Y-%m-%d")


class AuditLog:
    """The SmartVault audit table: records, claims and queries.

    ``client`` is a DynamoDB client for the table's region; ``clock`` returns an aware
    datetime; ``sleep`` is only used to wait for a new table and between batch retries.
    Safe to share between threads.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], datetime],
        ttl_days: int = DEFAULT_AUDIT_TTL_DAYS,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if ttl_days < 1:
            raise ValueError("ttl_days must be at least 1")
        self._client = client
        self.table_name = table_name
        self._clock = clock
        self._ttl = timedelta(days=ttl_days)
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter, not cryptography
        self._seq = itertools.count()
        self._seq_lock = threading.Lock()

    @property
    def region(self) -> str:
        return self._client.meta.region_name or "the default region"

    # --- the table --------------------------------------------------------

    def ensure_table(self) -> bool:
        """Create the table if missing, then make sure TTL and point-in-time recovery are on.

        Returns True when it created the table. Idempotent: on a table that is already
        complete it changes nothing and returns False. Raises AuditError when a table of
        that name exists with another key schema or without the ``by-policy`` index.
        """
        description = self._describe_or_none()
        created = description is None
        if description is None:
            self._call(
                "create the audit table",
                lambda: self._client.create_table(
                    TableName=self.table_name,
                    KeySchema=TABLE_DEFINITION["KeySchema"],
                    AttributeDefinitions=TABLE_DEFINITION["AttributeDefinitions"],
                    GlobalSecondaryIndexes=TABLE_DEFINITION["GlobalSecondaryIndexes"],
                    BillingMode="PAY_PER_REQUEST",
                    SSESpecification={"Enabled": True},
                ),
            )
            description = self._wait_until_active()
        self._check_schema(description)
        self._ensure_ttl()
        self._ensure_point_in_time_recovery()
        return created

    def check_writable(self) -> None:
        """Fail fast, before anything destructive, when the table is missing or unusable."""
        description = self._describe_or_none()
        if description is None:
            raise AuditError(
                f"audit table {self.table_name} not found in {self.region}: create it with "
                "`smartvault audit init` (or the deployment template), or point SmartVault at "
                "the right table (--audit-table and --region; in the Lambda, "
                "SMARTVAULT_AUDIT_TABLE and the function's region); nothing was changed"
            )
        status = description.get("TableStatus", "")
        if status not in ("ACTIVE", "UPDATING"):
            raise AuditError(
                f"audit table {self.table_name} in {self.region} is {status}, not ACTIVE: "
                "wait until it is ACTIVE, then apply again; nothing was changed"
            )
        self._check_schema(description, require_index=False)

    # --- records ------------------------------------------------------------

    def record(self, record: AuditRecord) -> AuditRecordRef:
        """Write one audit record (never overwriting another) and return its key."""
        for _ in range(3):
            ref = self._new_ref(record)
            item = self._record_item(ref, record)
            try:
                self._client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
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

    def record_many(self, records: Iterable[AuditRecord]) -> builtins.list[AuditRecordRef]:
        """Write many records with BatchWriteItem, 25 at a time.

        Unprocessed items are retried with exponential backoff; an item that still cannot
        be written raises AuditError (the items before it are written).
        """
        refs: builtins.list[AuditRecordRef] = []
        batch: builtins.list[Item] = []
        for record in records:
            ref = self._new_ref(record)
            refs.append(ref)
            batch.append(self._record_item(ref, record))
            if len(batch) == _BATCH_SIZE:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)
        return refs

    def list(
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
        if policy is not None:
            for item in self._query(
                IndexName=POLICY_INDEX,
                KeyConditionExpression="#p = :p AND sk BETWEEN :low AND :high",
                ExpressionAttributeNames={"#p": "policy"},
                ExpressionAttributeValues={
                    ":p": {"S": policy},
                    ":low": {"S": low},
                    ":high": {"S": high},
                },
            ):
                record = _record_from_item(item)
                if record is None:
                    continue
                found.append(record)
                if limit is not None and len(found) >= limit:
                    return found
            return found
        day = as_utc(until).date()
        first = as_utc(since).date()
        while day >= first:
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues={
                    ":pk": {"S": "DAY#" + day.isoformat()},
                    ":low": {"S": low},
                    ":high": {"S": high},
                },
            ):
                record = _record_from_item(item)
                if record is None:
                    continue
                found.append(record)
                if limit is not None and len(found) >= limit:
                    return found
            day -= timedelta(days=1)
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
                    ":pk": {"S": "DAY#" + day.isoformat()},
                    ":low": {"S": low},
                    ":high": {"S": high},
                    ":pending": {"S": "pending"},
                    ":delete": {"S": "delete"},
                },
            ):
                record = _record_from_item(item)
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
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._error(f"close the pending record {ref.pk} {ref.sk}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"close the pending record {ref.pk} {ref.sk}", exc) from exc
        return True

    # --- claims ------------------------------------------------------------------

    def claim(self, recovery_point: str, run_id: str, lease: timedelta) -> ClaimResult:
        """Claim a recovery point before creating it (a conditional write).

        Succeeds when nobody claimed it, when the claim's lease expired and it is not
        ``done``, or when this run already holds it (renewing the lease).
        """
        now = self._clock()
        lease_until = now + lease
        for _ in range(3):
            try:
                self._client.put_item(
                    TableName=self.table_name,
                    Item=self._claim_item(recovery_point, run_id, lease_until, version=1),
                    ConditionExpression=(
                        "attribute_not_exists(pk) OR (#st <> :done AND "
                        "(lease_until < :now OR run_id = :me))"
                    ),
                    ExpressionAttributeNames={"#st": "state"},
                    ExpressionAttributeValues={
                        ":done": {"S": "done"},
                        ":now": {"N": str(_epoch(now))},
                        ":me": {"S": run_id},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise self._error(f"claim recovery point {recovery_point}", exc) from exc
                old: Item | None = cast("Item", exc.response.get("Item", {}))
                if not old:
                    old = self._get_claim(recovery_point)
                if old is None:
                    continue  # released in between: try again
                return _claim_from_item(recovery_point, old)
            except BotoCoreError as exc:
                raise self._error(f"claim recovery point {recovery_point}", exc) from exc
            return ClaimResult("claimed", recovery_point, run_id, lease_until, version=1)
        raise AuditError(
            f"could not claim recovery point {recovery_point} in audit table "
            f"{self.table_name} ({self.region}): its claim kept changing; run again"
        )

    def renew_claim(self, claim: ClaimResult, run_id: str, lease: timedelta) -> ClaimResult | None:
        """Extend this run's own claim; None when it is no longer this run's.

        Conditional on the claim still being ``claimed`` by ``run_id``, whatever its lease
        says. Run ids are unique and only their run writes them, so a claim that still
        names this run has been nobody else's since: what this run saw in EC2 still holds.
        A claim another run took while this run's lease had lapsed (and which that run
        may have used, then died holding) is *not* renewed: :meth:`claim` would take it
        over, and the caller must look in EC2 again before creating anything.
        """
        lease_until = self._clock() + lease
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": "CLAIM#" + claim.recovery_point}, "sk": {"S": CLAIM_SK}},
                UpdateExpression="SET lease_until = :lease",
                ConditionExpression="run_id = :me AND #st = :claimed",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={
                    ":lease": {"N": str(_epoch(lease_until))},
                    ":me": {"S": run_id},
                    ":claimed": {"S": "claimed"},
                },
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise self._error(f"renew the claim on {claim.recovery_point}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"renew the claim on {claim.recovery_point}", exc) from exc
        return ClaimResult(
            "claimed", claim.recovery_point, run_id, lease_until, version=claim.version
        )

    def take_over_claim(self, done: ClaimResult, run_id: str, lease: timedelta) -> ClaimResult:
        """Take over a ``done`` claim whose snapshots are gone or failed.

        Conditional on the claim still being the very one that was read, so two runs
        can never both take it over. ``version`` alone is not enough: :meth:`claim` writes
        version 1 again, so a claim taken over, renewed and completed by another run in
        the meantime reads "done, version 1" again (ABA). Its holder and lease are compared
        too: they change with every claim. Returns the claim as it now is.
        """
        lease_until = self._clock() + lease
        version = done.version + 1
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=self._claim_item(done.recovery_point, run_id, lease_until, version),
                ConditionExpression=(
                    "#st = :done AND #v = :v AND run_id = :holder AND lease_until = :lease"
                ),
                ExpressionAttributeNames={"#st": "state", "#v": "version"},
                ExpressionAttributeValues={
                    ":done": {"S": "done"},
                    ":v": {"N": str(done.version)},
                    ":holder": {"S": done.run_id},
                    ":lease": {"N": str(_epoch(done.lease_until))},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise self._error(f"take over recovery point {done.recovery_point}", exc) from exc
            old = cast("Item", exc.response.get("Item", {}))
            if not old:
                # Released since it was read: claim it the ordinary way.
                return self.claim(done.recovery_point, run_id, lease)
            return _claim_from_item(done.recovery_point, old)
        except BotoCoreError as exc:
            raise self._error(f"take over recovery point {done.recovery_point}", exc) from exc
        return ClaimResult("claimed", done.recovery_point, run_id, lease_until, version=version)

    def complete_claim(self, recovery_point: str, run_id: str, snapshot_ids: Sequence[str]) -> None:
        """Mark this run's claim ``done`` with the snapshots it made (or found)."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": "CLAIM#" + recovery_point}, "sk": {"S": CLAIM_SK}},
                UpdateExpression="SET #st = :done, snapshot_ids = :s",
                ConditionExpression="run_id = :me",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={
                    ":done": {"S": "done"},
                    ":s": {"L": [{"S": s} for s in snapshot_ids]},
                    ":me": {"S": run_id},
                },
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise AuditError(
                    f"the claim on {recovery_point} in audit table {self.table_name} "
                    f"({self.region}) is no longer held by run {run_id} (its lease expired and "
                    "another run took it); the snapshots are tagged with the recovery point, "
                    "so the next run will find them"
                ) from exc
            raise self._error(f"complete the claim on {recovery_point}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"complete the claim on {recovery_point}", exc) from exc

    def release_claim(
        self, recovery_point: str, run_id: str | None = None, *, only_done: bool = False
    ) -> bool:
        """Delete a claim so the slot can be attempted again.

        With ``run_id``: only if that run holds it. With ``only_done``: only a ``done``
        claim (never pull a live claim from under a run that is creating). Returns False
        when the condition did not hold (nothing deleted).
        """
        conditions: builtins.list[str] = []
        names: dict[str, str] = {}
        values: Item = {}
        if run_id is not None:
            conditions.append("run_id = :me")
            values[":me"] = {"S": run_id}
        if only_done:
            conditions.append("#st = :done")
            names["#st"] = "state"
            values[":done"] = {"S": "done"}
        kwargs: dict[str, Any] = {}
        if conditions:
            kwargs["ConditionExpression"] = " AND ".join(conditions)
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": "CLAIM#" + recovery_point}, "sk": {"S": CLAIM_SK}},
                **kwargs,
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._error(f"release the claim on {recovery_point}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"release the claim on {recovery_point}", exc) from exc
        return True

    def get_claim(self, recovery_point: str) -> ClaimResult | None:
        """The claim on a recovery point as it is now (a strongly consistent read), if any."""
        item = self._get_claim(recovery_point)
        return None if item is None else _claim_from_item(recovery_point, item)

    # --- internals ------------------------------------------------------------------

    def _new_ref(self, record: AuditRecord) -> AuditRecordRef:
        with self._seq_lock:
            seq = next(self._seq) % _MAX_SEQ
        sk = f"{format_timestamp(record.timestamp)}#{record.run_id}#{seq:06d}"
        return AuditRecordRef(day_partition(record.timestamp), sk)

    def _record_item(self, ref: AuditRecordRef, record: AuditRecord) -> Item:
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
            TTL_ATTRIBUTE: {"N": str(_epoch(record.timestamp + self._ttl))},
        }
        # An index key may not be an empty string; a record without a policy (a notify
        # record, say) simply stays out of the by-policy index.
        if record.policy:
            item["policy"] = {"S": record.policy}
        return item

    def _claim_item(
        self, recovery_point: str, run_id: str, lease_until: datetime, version: int
    ) -> Item:
        now = self._clock()
        return {
            "pk": {"S": "CLAIM#" + recovery_point},
            "sk": {"S": CLAIM_SK},
            "run_id": {"S": run_id},
            "state": {"S": "claimed"},
            "lease_until": {"N": str(_epoch(lease_until))},
            "snapshot_ids": {"L": []},
            "version": {"N": str(version)},
            "claimed_at": {"S": format_timestamp(now)},
            TTL_ATTRIBUTE: {"N": str(_epoch(now + self._ttl))},
        }

    def _get_claim(self, recovery_point: str) -> Item | None:
        response = self._call(
            f"read the claim on {recovery_point}",
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": "CLAIM#" + recovery_point}, "sk": {"S": CLAIM_SK}},
                ConsistentRead=True,
            ),
        )
        item = response.get("Item")
        return item or None

    def _write_batch(self, items: builtins.list[Item]) -> None:
        pending: builtins.list[Any] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(_BATCH_ATTEMPTS):
            requests = pending
            response = self._call(
                f"write {len(requests)} audit records",
                functools.partial(
                    self._client.batch_write_item, RequestItems={self.table_name: requests}
                ),
            )
            pending = list(response.get("UnprocessedItems", {}).get(self.table_name, []))
            if not pending:
                return
            if attempt + 1 < _BATCH_ATTEMPTS:
                self._sleep(_backoff(attempt, self._rng))
        raise AuditError(
            f"{len(pending)} audit records could not be written to table {self.table_name} in "
            f"{self.region} after {_BATCH_ATTEMPTS} attempts (DynamoDB kept returning them as "
            "unprocessed): check the table's throttling metrics, then run again"
        )

    def _query(self, **kwargs: Any) -> Iterator[Item]:
        start: Item | None = None
        while True:
            page_kwargs = dict(kwargs, TableName=self.table_name, ScanIndexForward=False)
            if start is not None:
                page_kwargs["ExclusiveStartKey"] = start
            page = self._call(
                "read the audit log", functools.partial(self._client.query, **page_kwargs)
            )
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def _describe_or_none(self) -> Mapping[str, Any] | None:
        try:
            return cast(
                "Mapping[str, Any]",
                self._client.describe_table(TableName=self.table_name)["Table"],
            )
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise self._error("describe the audit table", exc) from exc
        except BotoCoreError as exc:
            raise self._error("describe the audit table", exc) from exc

    def _wait_until_active(self) -> Mapping[str, Any]:
        waited = 0.0
        delay = 1.0
        while True:
            description = self._describe_or_none()
            if description is not None and description.get("TableStatus") == "ACTIVE":
                return description
            if waited >= _TABLE_WAIT_SECONDS:
                raise AuditError(
                    f"audit table {self.table_name} in {self.region} did not become ACTIVE "
                    f"within {_TABLE_WAIT_SECONDS} s: check it in the console, then run "
                    "`smartvault audit init` again"
                )
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 10.0)

    def _check_schema(self, description: Mapping[str, Any], *, require_index: bool = True) -> None:
        types = {
            d["AttributeName"]: d["AttributeType"]
            for d in description.get("AttributeDefinitions", [])
        }
        keys = {
            (k["AttributeName"], k["KeyType"], types.get(k["AttributeName"], "?"))
            for k in description.get("KeySchema", [])
        }
        if keys != _EXPECTED_KEYS:
            found = ", ".join(f"{n} ({t}, {k})" for n, k, t in sorted(keys))
            raise AuditError(
                f"table {self.table_name} in {self.region} exists but is not a SmartVault "
                f"audit table: its key is {found}, expected pk (S, HASH) and sk (S, RANGE). "
                "Choose another name with --audit-table, or delete that table"
            )
        if not require_index:
            return
        indexes = {i["IndexName"] for i in description.get("GlobalSecondaryIndexes", [])}
        if POLICY_INDEX not in indexes:
            raise AuditError(
                f"audit table {self.table_name} in {self.region} has no {POLICY_INDEX!r} index: "
                "add it (HASH policy S, RANGE sk S, projection ALL; see "
                "docs/audit-and-apply.md) or recreate the table with `smartvault audit init`"
            )

    def _ensure_ttl(self) -> None:
        response = self._call(
            "read the audit table's TTL setting",
            lambda: self._client.describe_time_to_live(TableName=self.table_name),
        )
        ttl = response.get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if ttl.get("AttributeName") != TTL_ATTRIBUTE:
                raise AuditError(
                    f"audit table {self.table_name} in {self.region} expires items by "
                    f"{ttl.get('AttributeName')!r}, not {TTL_ATTRIBUTE!r}: records would never "
                    "expire. Disable that TTL setting, then run `smartvault audit init` again"
                )
            return
        self._call(
            "enable TTL on the audit table",
            lambda: self._client.update_time_to_live(
                TableName=self.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            ),
        )

    def _ensure_point_in_time_recovery(self) -> None:
        response = self._call(
            "read the audit table's backup settings",
            lambda: self._client.describe_continuous_backups(TableName=self.table_name),
        )
        pitr = response.get("ContinuousBackupsDescription", {}).get(
            "PointInTimeRecoveryDescription", {}
        )
        if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
            return
        self._call(
            "enable point-in-time recovery on the audit table",
            lambda: self._client.update_continuous_backups(
                TableName=self.table_name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            ),
        )

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(what, exc) from exc

    def _error(self, what: str, exc: ClientError | BotoCoreError) -> AuditError:
        code = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        if code == "ResourceNotFoundException":
            advice = "run `smartvault audit init` (or deploy the template), then run again"
        elif code in ("AccessDeniedException", "UnrecognizedClientException"):
            advice = (
                "allow dynamodb:DescribeTable, dynamodb:PutItem, dynamodb:UpdateItem, "
                "dynamodb:GetItem, dynamodb:DeleteItem, dynamodb:BatchWriteItem and "
                "dynamodb:Query on the table and its indexes, then run again"
            )
        elif "Throttl" in code or code == "ProvisionedThroughputExceededException":
            advice = "the table is being throttled; run again in a few minutes"
        else:
            advice = "check the table, the region and your credentials, then run again"
        return AuditError(
            f"could not {what} in audit table {self.table_name} ({self.region}): "
            f"{code}: {_message(exc)}. {advice}"
        )


# --- item <-> record ----------------------------------------------------------------


def _record_from_item(item: Item) -> AuditRecord | None:
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


def _claim_from_item(recovery_point: str, item: Item) -> ClaimResult:
    state = item.get("state", {}).get("S", "")
    return ClaimResult(
        status="done" if state == "done" else "held",
        recovery_point=recovery_point,
        run_id=item.get("run_id", {}).get("S", ""),
        lease_until=datetime.fromtimestamp(int(item.get("lease_until", {}).get("N", "0")), tz=UTC),
        snapshot_ids=tuple(v.get("S", "") for v in item.get("snapshot_ids", {}).get("L", [])),
        version=int(item.get("version", {}).get("N", "1")),
    )


# --- small helpers --------------------------------------------------------------------


def _epoch(moment: datetime) -> int:
    return int(as_utc(moment).timestamp())


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _message(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message") or "no message")
    return str(exc)


def _backoff(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: 0..(0.05 · 2^attempt) s, at most 5 s."""
    return rng.uniform(0, min(5.0, 0.05 * 2**attempt))
