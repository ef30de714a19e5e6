"""Claims: the conditional writes that keep two runs from making one recovery point twice."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from smartvault.aws.audit.base import _TableAccess
from smartvault.aws.audit.items import claim_from_item
from smartvault.aws.audit.items import epoch
from smartvault.aws.errors import error_code
from smartvault.core import audit_table as schema
from smartvault.core.model import ClaimResult
from smartvault.core.times import format_timestamp
from smartvault.errors import AuditError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]


_LOG = logging.getLogger(__name__)


class Claims(_TableAccess):
    """``CLAIM#<id>`` items: who may create a recovery point (or copy one) right now."""

    def acquire(self, recovery_point: str, run_id: str, lease: timedelta) -> ClaimResult:
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
                        ":now": {"N": str(epoch(now))},
                        ":me": {"S": run_id},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise self._error(f"claim recovery point {recovery_point}", exc) from exc
                old: Item | None = cast("Item", exc.response.get("Item", {}))
                if not old:
                    old = self._get_claim(recovery_point)
                if old is None:
                    continue  # released in between: try again
                return claim_from_item(recovery_point, old)
            except BotoCoreError as exc:
                raise self._error(f"claim recovery point {recovery_point}", exc) from exc
            return ClaimResult("claimed", recovery_point, run_id, lease_until, version=1)
        raise AuditError(
            f"could not claim recovery point {recovery_point} in audit table "
            f"{self.table_name} ({self.region}): its claim kept changing; run again"
        )

    def renew(self, claim: ClaimResult, run_id: str, lease: timedelta) -> ClaimResult | None:
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
                Key={
                    "pk": {"S": schema.CLAIM_PARTITION_PREFIX + claim.recovery_point},
                    "sk": {"S": schema.CLAIM_SORT_KEY},
                },
                UpdateExpression="SET lease_until = :lease",
                ConditionExpression="run_id = :me AND #st = :claimed",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={
                    ":lease": {"N": str(epoch(lease_until))},
                    ":me": {"S": run_id},
                    ":claimed": {"S": "claimed"},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise self._error(f"renew the claim on {claim.recovery_point}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"renew the claim on {claim.recovery_point}", exc) from exc
        return ClaimResult(
            "claimed", claim.recovery_point, run_id, lease_until, version=claim.version
        )

    def take_over(self, done: ClaimResult, run_id: str, lease: timedelta) -> ClaimResult:
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
                    ":lease": {"N": str(epoch(done.lease_until))},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise self._error(f"take over recovery point {done.recovery_point}", exc) from exc
            old = cast("Item", exc.response.get("Item", {}))
            if not old:
                # Released since it was read: claim it the ordinary way.
                return self.acquire(done.recovery_point, run_id, lease)
            return claim_from_item(done.recovery_point, old)
        except BotoCoreError as exc:
            raise self._error(f"take over recovery point {done.recovery_point}", exc) from exc
        return ClaimResult("claimed", done.recovery_point, run_id, lease_until, version=version)

    def complete(self, recovery_point: str, run_id: str, snapshot_ids: Sequence[str]) -> None:
        """Mark this run's claim ``done`` with the snapshots it made (or found)."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={
                    "pk": {"S": schema.CLAIM_PARTITION_PREFIX + recovery_point},
                    "sk": {"S": schema.CLAIM_SORT_KEY},
                },
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
            if error_code(exc) == "ConditionalCheckFailedException":
                raise AuditError(
                    f"the claim on {recovery_point} in audit table {self.table_name} "
                    f"({self.region}) is no longer held by run {run_id} (its lease expired and "
                    "another run took it); the snapshots are tagged with the recovery point, "
                    "so the next run will find them"
                ) from exc
            raise self._error(f"complete the claim on {recovery_point}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"complete the claim on {recovery_point}", exc) from exc

    def release(
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
                Key={
                    "pk": {"S": schema.CLAIM_PARTITION_PREFIX + recovery_point},
                    "sk": {"S": schema.CLAIM_SORT_KEY},
                },
                **kwargs,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._error(f"release the claim on {recovery_point}", exc) from exc
        except BotoCoreError as exc:
            raise self._error(f"release the claim on {recovery_point}", exc) from exc
        return True

    def get(self, recovery_point: str) -> ClaimResult | None:
        """The claim on a recovery point as it is now (a strongly consistent read), if any."""
        item = self._get_claim(recovery_point)
        return None if item is None else claim_from_item(recovery_point, item)

    def _claim_item(
        self, recovery_point: str, run_id: str, lease_until: datetime, version: int
    ) -> Item:
        now = self._clock()
        return {
            "pk": {"S": schema.CLAIM_PARTITION_PREFIX + recovery_point},
            "sk": {"S": schema.CLAIM_SORT_KEY},
            "run_id": {"S": run_id},
            "state": {"S": "claimed"},
            "lease_until": {"N": str(epoch(lease_until))},
            "snapshot_ids": {"L": []},
            "version": {"N": str(version)},
            "claimed_at": {"S": format_timestamp(now)},
            schema.TTL_ATTRIBUTE: {"N": str(epoch(now + self._ttl))},
        }

    def _get_claim(self, recovery_point: str) -> Item | None:
        response = self._call(
            f"read the claim on {recovery_point}",
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={
                    "pk": {"S": schema.CLAIM_PARTITION_PREFIX + recovery_point},
                    "sk": {"S": schema.CLAIM_SORT_KEY},
                },
                ConsistentRead=True,
            ),
        )
        item = response.get("Item")
        return item or None
