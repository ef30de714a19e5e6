"""The audit table's one definition is a table DynamoDB accepts."""

from __future__ import annotations

from smartvault.core import audit_table


def test_every_key_attribute_is_defined_as_a_string_and_no_other_attribute_is() -> None:
    """CreateTable refuses attribute definitions that no key or index key uses."""
    keys = {
        k["AttributeName"] for k in (*audit_table.KEY_SCHEMA, *audit_table.POLICY_INDEX_KEY_SCHEMA)
    }
    defined = {a["AttributeName"]: a["AttributeType"] for a in audit_table.ATTRIBUTE_DEFINITIONS}
    assert defined == dict.fromkeys(keys, "S")


def test_the_table_and_its_index_share_the_sort_key_so_both_read_in_time_order() -> None:
    (index,) = audit_table.GLOBAL_SECONDARY_INDEXES
    assert index["IndexName"] == audit_table.POLICY_INDEX == "by-policy"
    assert [k["KeyType"] for k in audit_table.KEY_SCHEMA] == ["HASH", "RANGE"]
    assert audit_table.KEY_SCHEMA[1] == audit_table.POLICY_INDEX_KEY_SCHEMA[1]
    assert audit_table.POLICY_INDEX_KEY_SCHEMA[0]["AttributeName"] == "policy"
