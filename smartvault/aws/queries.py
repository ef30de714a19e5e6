"""Which regions to read and which server-side filters to send: pure, no AWS call.

Server-side filters only narrow the result: every resource is matched again against its
full selector by the inventory and the planner, so an imprecise filter can never select
more than the policy says. EC2 takes at most 200 values per filter, so longer lists are
split into several queries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smartvault.core.model import PolicySet
from smartvault.core.model import Selector
from smartvault.core.model import TagCondition
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef

#: EC2 rejects a filter with more values (FilterLimitExceeded).
FILTER_VALUES_MAX = 200

#: Only SmartVault's own snapshots are ever read.
MANAGED_SNAPSHOT_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (f"tag:{TAG_CREATED_BY}", (CREATED_BY_VALUE,)),
)

#: A server-side filter: (name, values). Values are already escaped for EC2.
Filter = tuple[str, tuple[str, ...]]


def regions_to_read(policies: PolicySet, regions: Sequence[str]) -> tuple[str, ...]:
    """The regions to read: ``regions`` plus every copy target of a policy working there.

    Copies live in their target region and follow their own retention there, so the
    target must be read even when nobody asked to work in it. Sorted, no duplicates.
    """
    wanted = set(regions)
    for policy in policies.policies:
        if any(policy.applies_to_region(region) for region in regions):
            wanted.update(copy.region for copy in policy.copies)
    return tuple(sorted(wanted))


@dataclass(frozen=True)
class ResourceQuery:
    """One server-side query: every filter must match (EC2 ANDs the filters of a call)."""

    filters: tuple[Filter, ...]

    def filter_sets(self) -> Iterator[list[FilterTypeDef]]:
        """The filter lists to send, one per call: a filter over 200 values is split.

        The union of the calls' results is exactly the query's result, because each
        filter is an OR over its values and the chunks of one filter cover them all.
        """
        per_filter = [
            [
                (name, values[i : i + FILTER_VALUES_MAX])
                for i in range(0, len(values), FILTER_VALUES_MAX)
            ]
            for name, values in self.filters
        ]
        for combination in itertools.product(*per_filter):
            yield [{"Name": name, "Values": list(values)} for name, values in combination]


def _escape(value: str) -> str:
    # EC2 filter values treat * and ? as wildcards; escape them so a literal tag value
    # written in a policy matches only itself.
    return value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _tag_conditions(selector: Selector) -> tuple[TagCondition, ...] | None:
    """The selector's tag conditions, one per key, sorted; ``None`` if nothing can match."""
    merged: dict[str, tuple[str, ...]] = {}
    for condition in selector.tags.conditions:
        values = tuple(sorted(set(condition.values)))
        if condition.key in merged:
            previous = merged[condition.key]
            # Two conditions on one key must both hold: intersect (empty means "any").
            if previous and values:
                values = tuple(sorted(set(previous) & set(values)))
                if not values:
                    return None
            values = values or previous
        merged[condition.key] = values
    return tuple(TagCondition(key, merged[key]) for key in sorted(merged))


def _tag_filters(conditions: Iterable[TagCondition]) -> tuple[Filter, ...]:
    filters: list[Filter] = []
    any_value_keys: list[str] = []
    for condition in conditions:
        if condition.values:
            filters.append((f"tag:{condition.key}", tuple(_escape(v) for v in condition.values)))
        else:
            any_value_keys.append(condition.key)
    if any_value_keys:
        # `tag-key` ORs its values, so it can carry one required key; further keys that
        # may hold any value use the `tag:<key>` filter with the `*` wildcard instead.
        filters.append(("tag-key", (any_value_keys[0],)))
        filters.extend((f"tag:{key}", ("*",)) for key in any_value_keys[1:])
    return tuple(filters)


def instance_queries(selectors: Iterable[Selector]) -> tuple[ResourceQuery, ...]:
    """One query per distinct ``selector.tags``, in every instance state.

    No ``instance-state-name`` filter: the plan counts the instances a selector's tags
    match that its ``instance_states`` exclude, so they must be read. Leaving it out costs
    no call (selectors differing only in states shared one query already); it only adds
    the tagged instances in other states to the pages. ``instance_states`` and
    ``exclude_tags`` are applied by the planner.
    """
    return _queries(selectors)


def volume_queries(selectors: Iterable[Selector]) -> tuple[ResourceQuery, ...]:
    """One query per distinct ``selector.tags`` (``instance_states`` does not apply to volumes)."""
    return _queries(selectors)


def _queries(selectors: Iterable[Selector]) -> tuple[ResourceQuery, ...]:
    distinct = {c for c in (_tag_conditions(s) for s in selectors) if c is not None}
    return tuple(
        ResourceQuery(filters=_tag_filters(conditions)) for conditions in sorted(distinct, key=repr)
    )
