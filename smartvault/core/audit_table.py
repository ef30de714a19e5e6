"""The audit table's definition: the one place its shape is written down.

Pure data, no boto3: ``smartvault audit init`` creates the table from it and the
deployment template (:mod:`smartvault.deploy.template`) renders the same table, so the
two cannot drift apart. The key schemas, attribute definitions and projection are
written as both DynamoDB's CreateTable and CloudFormation spell them; the rest are the
values each wraps in its own way. Never mutated. The layout (docs/audit-and-apply.md):

- the key: ``pk`` (string, HASH) and ``sk`` (string, RANGE). An audit record has
  ``pk = "DAY#<YYYY-MM-DD>"`` and ``sk = "<timestamp>#<run_id>#<seq>"``; a claim has
  ``pk = "CLAIM#<recovery point>"`` and ``sk = "CLAIM"``;
- the ``by-policy`` index: ``policy`` (HASH) and ``sk`` (RANGE), every attribute
  projected, so "what happened to policy P" is a Query; claims carry no ``policy``, so
  they stay out of it;
- items expire by the TTL attribute ``expires_at`` (epoch seconds): records after
  :data:`DEFAULT_AUDIT_TTL_DAYS` days unless configured otherwise;
- billed on demand, with point-in-time recovery and server-side encryption on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

PARTITION_KEY: Final = "pk"
SORT_KEY: Final = "sk"
#: the ``by-policy`` index's partition key; an item without it is not in the index
POLICY_ATTRIBUTE: Final = "policy"
POLICY_INDEX: Final = "by-policy"
#: epoch seconds after which DynamoDB deletes the item
TTL_ATTRIBUTE: Final = "expires_at"
#: days an audit record is kept before DynamoDB's TTL removes it
DEFAULT_AUDIT_TTL_DAYS: Final = 400

#: ``pk`` prefixes: audit records by UTC day, claims by recovery point
RECORD_PARTITION_PREFIX: Final = "DAY#"
CLAIM_PARTITION_PREFIX: Final = "CLAIM#"
CLAIM_SORT_KEY: Final = "CLAIM"

BILLING_MODE: Final = "PAY_PER_REQUEST"
POINT_IN_TIME_RECOVERY: Final = True
SSE_ENABLED: Final = True

KEY_SCHEMA: Final[tuple[Mapping[str, str], ...]] = (
    {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
)
#: only the attributes some key uses; every other attribute is schemaless
ATTRIBUTE_DEFINITIONS: Final[tuple[Mapping[str, str], ...]] = (
    {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
    {"AttributeName": SORT_KEY, "AttributeType": "S"},
    {"AttributeName": POLICY_ATTRIBUTE, "AttributeType": "S"},
)
POLICY_INDEX_KEY_SCHEMA: Final[tuple[Mapping[str, str], ...]] = (
    {"AttributeName": POLICY_ATTRIBUTE, "KeyType": "HASH"},
    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
)
#: every attribute: ``audit list --policy`` reads whole records from the index
POLICY_INDEX_PROJECTION: Final[Mapping[str, str]] = {"ProjectionType": "ALL"}
GLOBAL_SECONDARY_INDEXES: Final[tuple[Mapping[str, object], ...]] = (
    {
        "IndexName": POLICY_INDEX,
        "KeySchema": POLICY_INDEX_KEY_SCHEMA,
        "Projection": POLICY_INDEX_PROJECTION,
    },
)
