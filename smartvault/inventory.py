"""Read what exists in the account into an :class:`~smartvault.core.model.Inventory`.

Planning is pure, so everything the planner needs is read here, up front, with
as few calls as the data allows (each Describe* page is one call against the
account's shared EC2 request quota):

* instances and volumes only where a policy of that resource type applies, with
  the policies' selectors as server-side filters (one query per distinct selector,
  1,000 results a page);
* SmartVault's own snapshots (``CreatedBy=SmartVault``) in every region read,
  including copy targets: never anyone else's;
* the account's AMIs, because a snapshot an AMI uses must never be deleted.

Server-side filters only narrow the result; every resource is matched again
against its full selector here (and again by the planner), so an imprecise
filter can never select more than the policy says.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING

from smartvault.aws import translate_errors
from smartvault.core.model import BlockDevice
from smartvault.core.model import Image
from smartvault.core.model import Instance
from smartvault.core.model import Inventory
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import Selector
from smartvault.core.model import Snapshot
from smartvault.core.model import TagCondition
from smartvault.core.model import Volume
from smartvault.core.model import VolumeAttachment
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_SOURCE

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef
    from mypy_boto3_ec2.type_defs import ImageTypeDef
    from mypy_boto3_ec2.type_defs import InstanceTypeDef
    from mypy_boto3_ec2.type_defs import SnapshotTypeDef
    from mypy_boto3_ec2.type_defs import TagTypeDef
    from mypy_boto3_ec2.type_defs import VolumeTypeDef

    from smartvault.aws import AwsSession

#: The most a Describe* page may hold; fewer pages means fewer calls against the quota.
PAGE_SIZE = 1000
#: EC2 rejects a filter with more values (FilterLimitExceeded).
FILTER_VALUES_MAX = 200

#: Only SmartVault's own snapshots are ever read.
MANAGED_SNAPSHOT_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (f"tag:{TAG_CREATED_BY}", (CREATED_BY_VALUE,)),
)

#: A server-side filter: (name, values). Values are already escaped for EC2.
Filter = tuple[str, tuple[str, ...]]


# --- which regions, which queries (pure) -------------------------------------


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
    """One query per distinct tag selector; selectors differing only in states share one.

    The shared query asks for the union of their instance states; the full selectors
    are applied to the results afterwards.
    """
    states_by_tags: dict[tuple[TagCondition, ...], set[str]] = {}
    for selector in selectors:
        conditions = _tag_conditions(selector)
        if conditions is not None:
            states_by_tags.setdefault(conditions, set()).update(selector.instance_states)
    return tuple(
        ResourceQuery(
            filters=(*_tag_filters(conditions), ("instance-state-name", tuple(sorted(states))))
        )
        for conditions, states in sorted(states_by_tags.items(), key=lambda item: repr(item[0]))
        if states
    )


def volume_queries(selectors: Iterable[Selector]) -> tuple[ResourceQuery, ...]:
    """One query per distinct tag selector (``instance_states`` does not apply to volumes)."""
    distinct = {c for c in (_tag_conditions(s) for s in selectors) if c is not None}
    return tuple(
        ResourceQuery(filters=_tag_filters(conditions)) for conditions in sorted(distinct, key=repr)
    )


# --- reading one kind of thing in one region ---------------------------------


def _tags(raw: Iterable[TagTypeDef] | None) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in raw or () if "Key" in tag}


def _utc(moment: datetime) -> datetime:
    # botocore returns aware datetimes; a simulator may not. EC2 times are UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _instance(raw: InstanceTypeDef, region: str) -> Instance:
    return Instance(
        instance_id=raw["InstanceId"],
        region=region,
        state=raw.get("State", {}).get("Name", ""),
        tags=_tags(raw.get("Tags")),
        availability_zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
        root_device_name=raw.get("RootDeviceName", ""),
        block_devices=tuple(
            BlockDevice(device_name=mapping.get("DeviceName", ""), volume_id=volume_id)
            for mapping in raw.get("BlockDeviceMappings", [])
            # instance-store devices have no EBS volume to snapshot
            if (volume_id := mapping.get("Ebs", {}).get("VolumeId"))
        ),
    )


def read_instances(
    ec2: EC2Client, region: str, selectors: Sequence[Selector]
) -> tuple[Instance, ...]:
    """Instances in ``region`` that at least one of ``selectors`` selects, sorted by id.

    One paginated DescribeInstances per distinct selector (and per 200 values of a
    filter); results are merged by instance id.
    """
    found: dict[str, Instance] = {}
    for query in instance_queries(selectors):
        for instance in _describe_instances(ec2, region, query.filter_sets()):
            found[instance.instance_id] = instance
    return tuple(
        found[key]
        for key in sorted(found)
        if any(
            s.matches(found[key].tags) and found[key].state in s.instance_states for s in selectors
        )
    )


def _describe_instances(
    ec2: EC2Client, region: str, filter_sets: Iterable[list[FilterTypeDef]]
) -> Iterator[Instance]:
    """Every instance each filter set returns: one paginated call per filter set."""
    paginator = ec2.get_paginator("describe_instances")
    for filters in filter_sets:
        with translate_errors("ec2", "DescribeInstances", region):
            for page in paginator.paginate(
                Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}
            ):
                for reservation in page.get("Reservations", []):
                    for raw in reservation.get("Instances", []):
                        yield _instance(raw, region)


def _describe_volumes(
    ec2: EC2Client, region: str, filter_sets: Iterable[list[FilterTypeDef]]
) -> Iterator[Volume]:
    """Every volume each filter set returns: one paginated call per filter set."""
    paginator = ec2.get_paginator("describe_volumes")
    for filters in filter_sets:
        with translate_errors("ec2", "DescribeVolumes", region):
            for page in paginator.paginate(
                Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}
            ):
                for raw in page.get("Volumes", []):
                    yield _volume(raw, region)


def _id_filters(name: str, ids: Sequence[str]) -> Iterator[list[FilterTypeDef]]:
    """``<kind>-id`` filters of at most 200 ids each (EC2's filter limit).

    A filter rather than ``InstanceIds``/``VolumeIds``: an id that no longer exists is
    then simply absent, instead of failing the whole call.
    """
    for start in range(0, len(ids), FILTER_VALUES_MAX):
        yield [{"Name": name, "Values": list(ids[start : start + FILTER_VALUES_MAX])}]


def _lineage_resources(
    snapshots: Iterable[Snapshot], policies: PolicySet, resource: str
) -> set[str]:
    """Resource ids of the lineages of loaded ``resource`` policies (copies excluded)."""
    kinds = {p.name for p in policies.policies if p.resource == resource}
    found: set[str] = set()
    for snapshot in snapshots:
        if snapshot.policy not in kinds or TAG_SOURCE in snapshot.tags:
            continue
        # Only parsed, not checked against the snapshot's other tags: reading a few more
        # resources than needed is harmless, and the planner decides what is malformed.
        rp = RecoveryPointId.parse(snapshot.recovery_point or "")
        if rp is not None and rp.policy == snapshot.policy:
            found.add(rp.resource_id)
    return found


def _volume(raw: VolumeTypeDef, region: str) -> Volume:
    return Volume(
        volume_id=raw["VolumeId"],
        region=region,
        availability_zone=raw.get("AvailabilityZone", ""),
        size_gib=raw.get("Size", 0),
        volume_type=raw.get("VolumeType", ""),
        state=raw.get("State", ""),
        tags=_tags(raw.get("Tags")),
        attachments=tuple(
            VolumeAttachment(instance_id=a["InstanceId"], device=a.get("Device", ""))
            for a in raw.get("Attachments", [])
            if "InstanceId" in a
        ),
    )


def read_volumes(ec2: EC2Client, region: str, selectors: Sequence[Selector]) -> tuple[Volume, ...]:
    """Volumes in ``region`` that at least one of ``selectors`` selects, sorted by id."""
    found: dict[str, Volume] = {}
    for query in volume_queries(selectors):
        for volume in _describe_volumes(ec2, region, query.filter_sets()):
            found[volume.volume_id] = volume
    return tuple(
        found[key] for key in sorted(found) if any(s.matches(found[key].tags) for s in selectors)
    )


def snapshot_from_api(raw: SnapshotTypeDef, region: str) -> Snapshot:
    """A snapshot as DescribeSnapshots gives it, as a model record."""
    return Snapshot(
        snapshot_id=raw["SnapshotId"],
        region=region,
        volume_id=raw.get("VolumeId", ""),
        state=raw.get("State", ""),
        start_time=_utc(raw["StartTime"]),
        tags=_tags(raw.get("Tags")),
        volume_size_gib=raw.get("VolumeSize", 0),
        storage_tier=raw.get("StorageTier", "standard"),
        description=raw.get("Description", ""),
        restore_expiry=_utc(raw["RestoreExpiryTime"]) if "RestoreExpiryTime" in raw else None,
    )


def read_snapshots(ec2: EC2Client, region: str) -> tuple[Snapshot, ...]:
    """SmartVault's snapshots in ``region`` (owned by this account, ``CreatedBy=SmartVault``).

    Snapshots without that tag are never returned, even by a server that ignores filters.
    """
    query = ResourceQuery(filters=MANAGED_SNAPSHOT_FILTERS)
    found: dict[str, Snapshot] = {}
    paginator = ec2.get_paginator("describe_snapshots")
    for filters in query.filter_sets():
        with translate_errors("ec2", "DescribeSnapshots", region):
            for page in paginator.paginate(
                OwnerIds=["self"], Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}
            ):
                for raw in page.get("Snapshots", []):
                    snapshot = snapshot_from_api(raw, region)
                    if snapshot.tags.get(TAG_CREATED_BY) == CREATED_BY_VALUE:
                        found[snapshot.snapshot_id] = snapshot
    return tuple(found[key] for key in sorted(found))


def _image(raw: ImageTypeDef, region: str) -> Image:
    return Image(
        image_id=raw["ImageId"],
        region=region,
        name=raw.get("Name", ""),
        snapshot_ids=tuple(
            snapshot_id
            for mapping in raw.get("BlockDeviceMappings", [])
            if (snapshot_id := mapping.get("Ebs", {}).get("SnapshotId"))
        ),
    )


def read_images(ec2: EC2Client, region: str) -> tuple[Image, ...]:
    """Every AMI this account owns in ``region``, with the snapshots it uses.

    Disabled and deprecated AMIs are included: they still hold their snapshots.
    """
    found: dict[str, Image] = {}
    paginator = ec2.get_paginator("describe_images")
    with translate_errors("ec2", "DescribeImages", region):
        for page in paginator.paginate(
            Owners=["self"],
            IncludeDeprecated=True,
            IncludeDisabled=True,
            PaginationConfig={"PageSize": PAGE_SIZE},
        ):
            for raw in page.get("Images", []):
                image = _image(raw, region)
                found[image.image_id] = image
    return tuple(found[key] for key in sorted(found))


# --- the whole account ----------------------------------------------------------


def _selectors(policies: Iterable[Policy], region: str, resource: str) -> tuple[Selector, ...]:
    # Disabled policies count too: the planner lists their resources' recovery points.
    return tuple(
        p.selector for p in policies if p.resource == resource and p.applies_to_region(region)
    )


def read_inventory(
    session: AwsSession, policies: PolicySet, regions: Sequence[str] | None = None
) -> Inventory:
    """Read everything the planner needs from the account.

    ``regions`` are the regions to work in (default: ``session.regions()``). Instances
    and volumes are read there, where a policy of that resource type applies; managed
    snapshots and AMIs are read there and in every copy target region
    (:func:`regions_to_read`). ``Inventory.regions`` lists every region read.
    """
    working = tuple(session.regions() if regions is None else regions)
    all_regions = regions_to_read(policies, working)
    # Fail on a misspelt copy target before any call, not after reading other regions.
    for region in all_regions:
        session.check_region(region)
    # First, and once: it is the cheapest call that proves the credentials work.
    account_id = session.account_id(working[0] if working else None)
    instances: list[Instance] = []
    volumes: list[Volume] = []
    snapshots: list[Snapshot] = []
    images: list[Image] = []
    for region in all_regions:
        ec2 = session.client("ec2", region)
        region_snapshots = read_snapshots(ec2, region)
        if region in working:
            region_instances: list[Instance] = []
            region_volumes: list[Volume] = []
            instance_selectors = _selectors(policies.policies, region, "instance")
            if instance_selectors:
                region_instances.extend(read_instances(ec2, region, instance_selectors))
            volume_selectors = _selectors(policies.policies, region, "volume")
            if volume_selectors:
                region_volumes.extend(read_volumes(ec2, region, volume_selectors))
            # A resource that no longer matches its selector (a tag removed, a state
            # not selected) still exists: its retention follows its CURRENT tags, so
            # read it too. Only resources with recovery points and not read yet.
            missing = _lineage_resources(region_snapshots, policies, "instance") - {
                i.instance_id for i in region_instances
            }
            region_instances.extend(
                _describe_instances(ec2, region, _id_filters("instance-id", sorted(missing)))
            )
            missing = _lineage_resources(region_snapshots, policies, "volume") - {
                v.volume_id for v in region_volumes
            }
            region_volumes.extend(
                _describe_volumes(ec2, region, _id_filters("volume-id", sorted(missing)))
            )
            instances.extend(sorted(region_instances, key=lambda i: i.instance_id))
            volumes.extend(sorted(region_volumes, key=lambda v: v.volume_id))
        snapshots.extend(region_snapshots)
        images.extend(read_images(ec2, region))
    return Inventory(
        account_id=account_id,
        regions=all_regions,
        instances=tuple(instances),
        volumes=tuple(volumes),
        snapshots=tuple(snapshots),
        images=tuple(images),
    )
