"""Read what exists in the account into an :class:`~smartvault.core.model.Inventory`.

Planning is pure, so everything the planner needs is read here, up front, with
as few calls as the data allows (each Describe* page is one call against the
account's shared EC2 request quota):

* instances and volumes only where a policy of that resource type applies, with
  the policies' ``selector.tags`` as server-side filters (one query per distinct
  selector, 1,000 results a page), in every state: the plan counts what
  ``exclude_tags`` and ``instance_states`` exclude;
* SmartVault's own snapshots (``CreatedBy=SmartVault``) in every region read,
  including copy targets: never anyone else's;
* the account's AMIs, because a snapshot an AMI uses must never be deleted.

Server-side filters only narrow the result; every resource is matched again
against its ``selector.tags`` here, and against its full selector by the planner,
so an imprecise filter can never select more than the policy says.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING

from smartvault.aws.errors import translate_errors
from smartvault.aws.queries import FILTER_VALUES_MAX
from smartvault.aws.queries import MANAGED_SNAPSHOT_FILTERS
from smartvault.aws.queries import ResourceQuery
from smartvault.aws.queries import instance_queries
from smartvault.aws.queries import regions_to_read
from smartvault.aws.queries import volume_queries
from smartvault.core.model import BlockDevice
from smartvault.core.model import Image
from smartvault.core.model import Instance
from smartvault.core.model import Inventory
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import Selector
from smartvault.core.model import Snapshot
from smartvault.core.model import Volume
from smartvault.core.model import VolumeAttachment
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_NAME
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_SOURCE

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef
    from mypy_boto3_ec2.type_defs import ImageTypeDef
    from mypy_boto3_ec2.type_defs import InstanceTypeDef
    from mypy_boto3_ec2.type_defs import SnapshotTypeDef
    from mypy_boto3_ec2.type_defs import TagTypeDef
    from mypy_boto3_ec2.type_defs import VolumeTypeDef

    from smartvault.aws.session import AwsSession

#: The most a Describe* page may hold; fewer pages means fewer calls against the quota.
PAGE_SIZE = 1000
#: Regions read side by side (each region has its own EC2 request quota).
REGIONS_AT_ONCE = 4
# --- reading one kind of thing in one region ---------------------------------


class SharedText:
    """One string object per distinct text read: ``share(text)`` is the first equal text seen.

    botocore makes a new string for every tag key and value of every item, so 100,000
    snapshots would hold 700,000 copies of the same seven keys, and of the policy name,
    the slot and the resource's tags on each. Sharing them is a third of an inventory's
    memory. One per read, dropped with it.
    """

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        return self._seen.setdefault(text, text)


def _as_read(text: str) -> str:
    return text


#: Tags whose value SmartVault makes unique to one recovery point: not worth sharing.
_OWN_VALUE = frozenset({TAG_RECOVERY_POINT, TAG_NAME})


def _tags(raw: Iterable[TagTypeDef] | None, share: Callable[[str], str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in raw or ():
        if "Key" in tag:
            key = share(tag["Key"])
            value = tag.get("Value", "")
            tags[key] = value if key in _OWN_VALUE else share(value)
    return tags


def _utc(moment: datetime) -> datetime:
    # botocore returns aware datetimes; a simulator may not. EC2 times are UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def instance_from_api(
    raw: InstanceTypeDef, region: str, share: Callable[[str], str] = _as_read
) -> Instance:
    """An instance as DescribeInstances gives it, as a model record."""
    return Instance(
        instance_id=raw["InstanceId"],
        region=region,
        state=raw.get("State", {}).get("Name", ""),
        tags=_tags(raw.get("Tags"), share),
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
    ec2: EC2Client,
    region: str,
    selectors: Sequence[Selector],
    share: Callable[[str], str] = _as_read,
) -> tuple[Instance, ...]:
    """Instances in ``region`` whose tags at least one of ``selectors``' ``tags`` match, in
    any state, sorted by id (``exclude_tags`` and ``instance_states`` are the planner's).

    One paginated DescribeInstances per distinct selector (and per 200 values of a
    filter); results are merged by instance id.
    """
    found: dict[str, Instance] = {}
    for query in instance_queries(selectors):
        for instance in _describe_instances(ec2, region, query.filter_sets(), share):
            found[instance.instance_id] = instance
    return tuple(
        found[key]
        for key in sorted(found)
        if any(s.tags.matches_all(found[key].tags) for s in selectors)
    )


def _describe_instances(
    ec2: EC2Client,
    region: str,
    filter_sets: Iterable[list[FilterTypeDef]],
    share: Callable[[str], str] = _as_read,
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
                        yield instance_from_api(raw, region, share)


def _describe_volumes(
    ec2: EC2Client,
    region: str,
    filter_sets: Iterable[list[FilterTypeDef]],
    share: Callable[[str], str] = _as_read,
) -> Iterator[Volume]:
    """Every volume each filter set returns: one paginated call per filter set."""
    paginator = ec2.get_paginator("describe_volumes")
    for filters in filter_sets:
        with translate_errors("ec2", "DescribeVolumes", region):
            for page in paginator.paginate(
                Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE}
            ):
                for raw in page.get("Volumes", []):
                    yield volume_from_api(raw, region, share)


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


def volume_from_api(
    raw: VolumeTypeDef, region: str, share: Callable[[str], str] = _as_read
) -> Volume:
    """A volume as DescribeVolumes gives it, as a model record."""
    return Volume(
        volume_id=raw["VolumeId"],
        region=region,
        availability_zone=raw.get("AvailabilityZone", ""),
        size_gib=raw.get("Size", 0),
        volume_type=raw.get("VolumeType", ""),
        state=raw.get("State", ""),
        tags=_tags(raw.get("Tags"), share),
        attachments=tuple(
            VolumeAttachment(instance_id=a["InstanceId"], device=a.get("Device", ""))
            for a in raw.get("Attachments", [])
            if "InstanceId" in a
        ),
        iops=raw.get("Iops"),
        throughput=raw.get("Throughput"),
        encrypted=raw.get("Encrypted", False),
        kms_key_id=raw.get("KmsKeyId", ""),
        snapshot_id=raw.get("SnapshotId", ""),
    )


def read_volumes(
    ec2: EC2Client,
    region: str,
    selectors: Sequence[Selector],
    share: Callable[[str], str] = _as_read,
) -> tuple[Volume, ...]:
    """Volumes in ``region`` whose tags at least one of ``selectors``' ``tags`` match,
    sorted by id (``exclude_tags`` is the planner's)."""
    found: dict[str, Volume] = {}
    for query in volume_queries(selectors):
        for volume in _describe_volumes(ec2, region, query.filter_sets(), share):
            found[volume.volume_id] = volume
    return tuple(
        found[key]
        for key in sorted(found)
        if any(s.tags.matches_all(found[key].tags) for s in selectors)
    )


def snapshot_from_api(
    raw: SnapshotTypeDef, region: str, share: Callable[[str], str] = _as_read
) -> Snapshot:
    """A snapshot as DescribeSnapshots gives it, as a model record."""
    return Snapshot(
        snapshot_id=raw["SnapshotId"],
        region=region,
        volume_id=share(raw.get("VolumeId", "")),
        state=share(raw.get("State", "")),
        start_time=_utc(raw["StartTime"]),
        tags=_tags(raw.get("Tags"), share),
        volume_size_gib=raw.get("VolumeSize", 0),
        storage_tier=share(raw.get("StorageTier", "standard")),
        description=share(raw.get("Description", "")),
        restore_expiry=_utc(raw["RestoreExpiryTime"]) if "RestoreExpiryTime" in raw else None,
        encrypted=raw.get("Encrypted", False),
        kms_key_id=raw.get("KmsKeyId", ""),
    )


def read_snapshots(
    ec2: EC2Client, region: str, share: Callable[[str], str] = _as_read
) -> tuple[Snapshot, ...]:
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
                    snapshot = snapshot_from_api(raw, region, share)
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


def _regions_and_account(
    session: AwsSession, policies: PolicySet, regions: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """The working regions (default ``session.regions()``), every region to read (with
    the copy targets), and the account id."""
    working = tuple(session.regions() if regions is None else regions)
    all_regions = regions_to_read(policies, working)
    # Fail on a misspelt copy target before any call, not after reading other regions.
    for region in all_regions:
        session.check_region(region)
    # First, and once: it is the cheapest call that proves the credentials work.
    return working, all_regions, session.account_id(working[0] if working else None)


@dataclass
class _Region:
    """What was read in one region."""

    instances: list[Instance] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    snapshots: tuple[Snapshot, ...] = ()
    images: tuple[Image, ...] = ()


def _read_all(regions: Sequence[str], read: Callable[[str], _Region]) -> _Region:
    """``read(region)`` for every region, several at once, joined in the order of ``regions``.

    Regions are independent and each has its own request quota, and most of a page's
    time is AWS composing it: reading them side by side overlaps those waits. A failure
    is raised in region order, the same one whatever finishes first; the regions not
    read yet are not started.
    """
    if len(regions) <= 1:
        results = [read(region) for region in regions]
    else:
        with ThreadPoolExecutor(
            max_workers=min(REGIONS_AT_ONCE, len(regions)), thread_name_prefix="read"
        ) as pool:
            futures = [pool.submit(read, region) for region in regions]
            try:
                results = [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()
    return _Region(
        instances=[i for found in results for i in found.instances],
        volumes=[v for found in results for v in found.volumes],
        snapshots=tuple(s for found in results for s in found.snapshots),
        images=tuple(i for found in results for i in found.images),
    )


def read_inventory(
    session: AwsSession, policies: PolicySet, regions: Sequence[str] | None = None
) -> Inventory:
    """Read everything the planner needs from the account.

    ``regions`` are the regions to work in (default: ``session.regions()``). Instances
    and volumes are read there, where a policy of that resource type applies; managed
    snapshots and AMIs are read there and in every copy target region
    (:func:`regions_to_read`), up to :data:`REGIONS_AT_ONCE` regions at a time.
    ``Inventory.regions`` lists every region read, and ``Inventory.resource_regions``
    those whose instances and volumes were read.
    """
    working, all_regions, account_id = _regions_and_account(session, policies, regions)
    share = SharedText()

    def read(region: str) -> _Region:
        ec2 = session.client("ec2", region)
        found = _Region(snapshots=read_snapshots(ec2, region, share))
        if region in working:
            instance_selectors = _selectors(policies.policies, region, "instance")
            if instance_selectors:
                found.instances.extend(read_instances(ec2, region, instance_selectors, share))
            volume_selectors = _selectors(policies.policies, region, "volume")
            if volume_selectors:
                found.volumes.extend(read_volumes(ec2, region, volume_selectors, share))
            # A resource that no longer matches its selector's tags (a tag removed)
            # still exists: its retention follows its CURRENT tags, so read it too.
            # Only resources with recovery points and not read yet.
            missing = _lineage_resources(found.snapshots, policies, "instance") - {
                i.instance_id for i in found.instances
            }
            found.instances.extend(
                _describe_instances(ec2, region, _id_filters("instance-id", sorted(missing)), share)
            )
            missing = _lineage_resources(found.snapshots, policies, "volume") - {
                v.volume_id for v in found.volumes
            }
            found.volumes.extend(
                _describe_volumes(ec2, region, _id_filters("volume-id", sorted(missing)), share)
            )
            found.instances.sort(key=lambda i: i.instance_id)
            found.volumes.sort(key=lambda v: v.volume_id)
        found.images = read_images(ec2, region)
        return found

    found = _read_all(all_regions, read)
    return Inventory(
        account_id=account_id,
        regions=all_regions,
        instances=tuple(found.instances),
        volumes=tuple(found.volumes),
        snapshots=found.snapshots,
        images=found.images,
        resource_regions=tuple(r for r in all_regions if r in working),
    )


def read_everything(
    session: AwsSession, policies: PolicySet, regions: Sequence[str] | None = None
) -> Inventory:
    """Every instance and volume of the working ``regions``, unfiltered, and the managed
    snapshots there and in every copy target region: what ``smartvault coverage`` needs.

    ``regions`` default to ``session.regions()``. One account-id call, then per working
    region one paginated DescribeSnapshots, DescribeInstances and DescribeVolumes (1,000 a
    page), and per other copy target region one DescribeSnapshots. AMIs are not read:
    coverage deletes nothing. The planner can plan over the result as over
    :func:`read_inventory`'s: it matches every resource against its selector itself.
    """
    working, all_regions, account_id = _regions_and_account(session, policies, regions)
    share = SharedText()
    no_filter: list[list[FilterTypeDef]] = [[]]

    def read(region: str) -> _Region:
        ec2 = session.client("ec2", region)
        found = _Region(snapshots=read_snapshots(ec2, region, share))
        if region in working:
            by_id = {i.instance_id: i for i in _describe_instances(ec2, region, no_filter, share)}
            found.instances = [by_id[key] for key in sorted(by_id)]
            volumes = {v.volume_id: v for v in _describe_volumes(ec2, region, no_filter, share)}
            found.volumes = [volumes[key] for key in sorted(volumes)]
        return found

    found = _read_all(all_regions, read)
    return Inventory(
        account_id=account_id,
        regions=all_regions,
        instances=tuple(found.instances),
        volumes=tuple(found.volumes),
        snapshots=found.snapshots,
    )
