"""The audit table itself: created by ``audit init``, checked before every apply."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import Final
from typing import cast

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from smartvault.aws.audit.base import _TableAccess
from smartvault.aws.errors import error_code
from smartvault.core import audit_table as schema
from smartvault.errors import AuditError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]


_LOG = logging.getLogger(__name__)
#: The table as CreateTable wants it, from the one definition (:mod:`smartvault.core.audit_table`).
TABLE_DEFINITION: Final[Mapping[str, Any]] = {
    "KeySchema": [dict(key) for key in schema.KEY_SCHEMA],
    "AttributeDefinitions": [dict(attr) for attr in schema.ATTRIBUTE_DEFINITIONS],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": schema.POLICY_INDEX,
            "KeySchema": [dict(key) for key in schema.POLICY_INDEX_KEY_SCHEMA],
            "Projection": dict(schema.POLICY_INDEX_PROJECTION),
        }
    ],
    "BillingMode": schema.BILLING_MODE,
    "SSESpecification": {"Enabled": schema.SSE_ENABLED},
    "TimeToLiveSpecification": {"AttributeName": schema.TTL_ATTRIBUTE, "Enabled": True},
    "PointInTimeRecoverySpecification": {
        "PointInTimeRecoveryEnabled": schema.POINT_IN_TIME_RECOVERY
    },
}

_TYPES = {attr["AttributeName"]: attr["AttributeType"] for attr in schema.ATTRIBUTE_DEFINITIONS}
_EXPECTED_KEYS = {
    (key["AttributeName"], key["KeyType"], _TYPES[key["AttributeName"]])
    for key in schema.KEY_SCHEMA
}
_TABLE_WAIT_SECONDS = 300


class AuditTable(_TableAccess):
    """Creating the table (``audit init``) and checking it before anything is changed."""

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
                    BillingMode=TABLE_DEFINITION["BillingMode"],
                    SSESpecification=TABLE_DEFINITION["SSESpecification"],
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

    def _describe_or_none(self) -> Mapping[str, Any] | None:
        try:
            return cast(
                "Mapping[str, Any]",
                self._client.describe_table(TableName=self.table_name)["Table"],
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
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
        if schema.POLICY_INDEX not in indexes:
            raise AuditError(
                f"audit table {self.table_name} in {self.region} has no "
                f"{schema.POLICY_INDEX!r} index: add it (HASH policy S, RANGE sk S, projection "
                "ALL; see docs/audit-and-apply.md) or recreate the table with "
                "`smartvault audit init`"
            )

    def _ensure_ttl(self) -> None:
        response = self._call(
            "read the audit table's TTL setting",
            lambda: self._client.describe_time_to_live(TableName=self.table_name),
        )
        ttl = response.get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if ttl.get("AttributeName") != schema.TTL_ATTRIBUTE:
                raise AuditError(
                    f"audit table {self.table_name} in {self.region} expires items by "
                    f"{ttl.get('AttributeName')!r}, not {schema.TTL_ATTRIBUTE!r}: records would "
                    "never expire. Disable that TTL setting, then run `smartvault audit init` again"
                )
            return
        self._call(
            "enable TTL on the audit table",
            lambda: self._client.update_time_to_live(
                TableName=self.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": schema.TTL_ATTRIBUTE},
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
