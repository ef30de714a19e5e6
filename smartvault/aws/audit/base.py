"""The connection every part of the audit table shares: client, clock, and errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import TypeVar

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from smartvault.aws.errors import aws_message
from smartvault.aws.errors import error_code
from smartvault.core.audit_table import DEFAULT_AUDIT_TTL_DAYS
from smartvault.errors import AuditError
from smartvault.errors import AuditTableMissing

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]


T = TypeVar("T")
_LOG = logging.getLogger(__name__)


class _TableAccess:
    """One audit table in one region: the client, the clock, and errors in plain words.

    ``client`` is a DynamoDB client for the table's region; ``clock`` returns an aware
    datetime; ``sleep`` is only used to wait for a new table to become active.
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
    ) -> None:
        if ttl_days < 1:
            raise ValueError("ttl_days must be at least 1")
        self._client = client
        self.table_name = table_name
        self._clock = clock
        self._ttl = timedelta(days=ttl_days)
        self._sleep = sleep

    @property
    def region(self) -> str:
        return self._client.meta.region_name or "the default region"

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(what, exc) from exc

    def _error(self, what: str, exc: ClientError | BotoCoreError) -> AuditError:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        if code == "ResourceNotFoundException":
            advice = "run `smartvault audit init` (or deploy the template), then run again"
        elif code in ("AccessDeniedException", "UnrecognizedClientException"):
            advice = (
                "allow dynamodb:DescribeTable, dynamodb:PutItem, dynamodb:UpdateItem, "
                "dynamodb:GetItem, dynamodb:DeleteItem and "
                "dynamodb:Query on the table and its indexes, then run again"
            )
        elif "Throttl" in code or code == "ProvisionedThroughputExceededException":
            advice = "the table is being throttled; run again in a few minutes"
        else:
            advice = "check the table, the region and your credentials, then run again"
        message = (
            f"could not {what} in audit table {self.table_name} ({self.region}): "
            f"{code}: {aws_message(exc)}. {advice}"
        )
        if code == "ResourceNotFoundException":
            return AuditTableMissing(message, table=self.table_name, region=self.region)
        return AuditError(message)
