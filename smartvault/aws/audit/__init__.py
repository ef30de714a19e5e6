"""The audit trail in DynamoDB: one item per attempted action, and the create claims.

The table layout is fixed (docs/audit-and-apply.md; the deploy template builds the same
table):

- audit records: ``pk = "DAY#<YYYY-MM-DD>"`` (UTC day of the record's timestamp),
  ``sk = "<timestamp, ISO 8601 UTC with microseconds>Z#<run_id>#<seq>"``;
- the ``by-policy`` index: ``policy`` + ``sk``, so "what happened to policy P" is a Query;
- claims: ``pk = "CLAIM#<recovery point>"``, ``sk = "CLAIM"``, with no ``policy``
  attribute so they never show up in the index.

Every failure to read or write raises :class:`~smartvault.errors.AuditError` naming the
table, the region and what to do; no botocore exception leaves this package.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from smartvault.aws.audit.claims import Claims
from smartvault.aws.audit.records import AuditRecords
from smartvault.aws.audit.table import AuditTable
from smartvault.core.audit_table import DEFAULT_AUDIT_TTL_DAYS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class AuditLog:
    """The SmartVault audit table: ``table`` (create, check), ``records`` and ``claims``.

    ``client`` is a DynamoDB client for the table's region; ``clock`` returns an aware
    datetime; ``sleep`` waits for a new table to become active. Safe to share between threads.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], datetime],
        ttl_days: int = DEFAULT_AUDIT_TTL_DAYS,
        sleep: Callable[[float], None] = time.sleep,
        account_id: str = "",
    ) -> None:
        """``account_id``: the account the actions are in, on every record written."""
        self.table = AuditTable(client, table_name, clock=clock, sleep=sleep)
        self.records = AuditRecords(
            client, table_name, clock=clock, ttl_days=ttl_days, account_id=account_id
        )
        self.claims = Claims(client, table_name, clock=clock, ttl_days=ttl_days)
        self.table_name = table_name

    @property
    def region(self) -> str:
        return self.table.region

    def ensure_table(self) -> bool:
        """Create the table if missing (see :meth:`AuditTable.ensure_table`)."""
        return self.table.ensure_table()

    def check_writable(self) -> None:
        """Fail fast, before anything destructive, when the table is missing or unusable."""
        self.table.check_writable()
