"""Reading the account: what is read, with how few calls, and what is never read."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from smartvault.aws.inventory import read_instances
from smartvault.aws.inventory import read_inventory
from smartvault.aws.inventory import read_snapshots
from smartvault.aws.queries import ResourceQuery
from smartvault.aws.queries import instance_queries
from smartvault.aws.queries import regions_to_read
from smartvault.aws.queries import volume_queries
from smartvault.aws.session import AwsSession
from smartvault.core.model import CopyRule
from smartvault.core.model import PolicySet
from smartvault.core.model import Selector
from smartvault.errors import AwsError
from tests.factories import REGION
from tests.factories import make_policy
from tests.factories import tag_filter
from tests.moto_helpers import count_calls

MANAGED_TAGS = {"CreatedBy": "SmartVault", "smartvault:policy": "nightly"}


def tag_spec(resource_type: str, tags: dict[str, str]) -> list[Any]:
    return [
        {"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    ]


def setup_client(region: str = REGION) -> Any:
    """A client for arranging moto's state; separate from the session under test."""
    return boto3.client("ec2", region_name=region)


def launch(ec2: Any, count: int, tags: dict[str, str]) -> list[str]:
    reply = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=count,
        MaxCount=count,
        TagSpecifications=tag_spec("instance", tags) if tags else [],
    )
    return [i["InstanceId"] for i in reply["Instances"]]


def make_volume(ec2: Any, tags: dict[str, str], region: str = REGION) -> str:
    extra = {"TagSpecifications": tag_spec("volume", tags)} if tags else {}
    reply = ec2.create_volume(Size=4, AvailabilityZone=f"{region}a", **extra)
    return str(reply["VolumeId"])


def make_snapshots(ec2: Any, volume_id: str, count: int, tags: dict[str, str]) -> list[str]:
    extra = {"TagSpecifications": tag_spec("snapshot", tags)} if tags else {}
    return [
        ec2.create_snapshot(VolumeId=volume_id, Description=f"test {i}", **extra)["SnapshotId"]
        for i in range(count)
    ]


def policies(*items: Any) -> PolicySet:
    return PolicySet(policies=tuple(items))


# --- which regions are read ----------------------------------------------------------


def test_copy_target_regions_are_read_too_and_sorted() -> None:
    policy = make_policy(copies=(CopyRule(region="us-west-2"), CopyRule(region="eu-west-1")))
    assert regions_to_read(policies(policy), ["us-east-1"]) == (
        "eu-west-1",
        "us-east-1",
        "us-west-2",
    )


def test_copy_targets_of_a_policy_working_elsewhere_are_not_read() -> None:
    policy = make_policy(regions=("eu-central-1",), copies=(CopyRule(region="eu-west-1"),))
    assert regions_to_read(policies(policy), ["us-east-1"]) == ("us-east-1",)


# --- queries (pure) ---------------------------------------------------------------------


def test_identical_selectors_make_one_instance_query() -> None:
    selector = Selector(tags=tag_filter(backup="true"))
    queries = instance_queries([selector, Selector(tags=tag_filter(backup="true"))])
    assert queries == (ResourceQuery(filters=(("tag:backup", ("true",)),)),)


def test_instances_are_asked_for_in_every_state_and_states_never_split_a_query() -> None:
    """The plan counts the instances instance_states excludes: they must be read, at no
    extra call."""
    queries = instance_queries(
        [
            Selector(tags=tag_filter(backup="true"), instance_states=("running",)),
            Selector(tags=tag_filter(backup="true"), instance_states=("stopping", "stopped")),
            Selector(tags=tag_filter(backup="true", env="prod")),
        ]
    )
    assert sorted(q.filters for q in queries) == [
        (("tag:backup", ("true",)),),
        (("tag:backup", ("true",)), ("tag:env", ("prod",))),
    ]


def test_different_selectors_make_separate_queries() -> None:
    queries = volume_queries(
        [Selector(tags=tag_filter(backup="true")), Selector(tags=tag_filter(env="prod"))]
    )
    assert sorted(q.filters for q in queries) == [
        (("tag:backup", ("true",)),),
        (("tag:env", ("prod",)),),
    ]


def test_any_value_keys_use_tag_key_once_then_a_wildcard() -> None:
    """`tag-key` ORs its values, so a second required key must not be added to it."""
    (query,) = volume_queries([Selector(tags=tag_filter(owner="*", team="*", env=["b", "a"]))])
    assert query.filters == (
        ("tag:env", ("a", "b")),
        ("tag-key", ("owner",)),
        ("tag:team", ("*",)),
    )


def test_wildcard_characters_in_a_tag_value_are_matched_literally() -> None:
    (query,) = volume_queries([Selector(tags=tag_filter(name="web*?\\"))])
    assert query.filters == (("tag:name", ("web\\*\\?\\\\",)),)


def test_a_filter_with_450_values_is_sent_as_three_calls_of_at_most_200() -> None:
    values = [f"v{i:03}" for i in range(450)]
    (query,) = volume_queries([Selector(tags=tag_filter(env=values))])
    calls = list(query.filter_sets())
    assert [len(filters[0]["Values"]) for filters in calls] == [200, 200, 50]
    assert sorted(v for filters in calls for v in filters[0]["Values"]) == values


# --- a whole account under moto --------------------------------------------------------


def test_a_known_fleet_is_read_with_one_call_per_kind(aws: None) -> None:
    ec2 = setup_client()
    instance_ids = launch(ec2, 30, {"backup": "true", "Name": "web"})
    launch(ec2, 4, {"backup": "false"})
    volume_ids = [make_volume(ec2, {"backup-volume": "yes"}) for _ in range(5)]
    make_volume(ec2, {"backup-volume": "no"})
    ec2.attach_volume(VolumeId=volume_ids[0], InstanceId=instance_ids[0], Device="/dev/sdf")
    managed = make_snapshots(ec2, volume_ids[1], 60, MANAGED_TAGS)
    make_snapshots(ec2, volume_ids[1], 5, {})
    make_snapshots(ec2, volume_ids[1], 5, {"CreatedBy": "someone-else"})
    image_id = ec2.create_image(InstanceId=instance_ids[1], Name="golden")["ImageId"]

    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)
    inventory = read_inventory(
        session,
        policies(
            make_policy("nightly"),
            make_policy(
                "volumes",
                resource="volume",
                selector=Selector(tags=tag_filter(**{"backup-volume": "yes"})),
            ),
        ),
    )

    assert calls == Counter(
        {
            "sts:GetCallerIdentity": 1,
            "ec2:DescribeInstances": 1,
            "ec2:DescribeVolumes": 1,
            "ec2:DescribeSnapshots": 1,
            "ec2:DescribeImages": 1,
        }
    )
    assert inventory.account_id == "123456789012"
    assert inventory.regions == (REGION,)
    assert sorted(i.instance_id for i in inventory.instances) == sorted(instance_ids)
    assert sorted(v.volume_id for v in inventory.volumes) == sorted(volume_ids)
    assert sorted(s.snapshot_id for s in inventory.snapshots) == sorted(managed)
    assert [i.image_id for i in inventory.images] == [image_id]


def test_instances_carry_state_zone_tags_and_their_block_devices(aws: None) -> None:
    ec2 = setup_client()
    (instance_id,) = launch(ec2, 1, {"backup": "true", "Team": "db"})
    volume_id = make_volume(ec2, {})
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")

    (instance,) = read_instances(
        AwsSession().client("ec2", REGION), REGION, [Selector(tags=tag_filter(backup="true"))]
    )

    assert instance.instance_id == instance_id
    assert instance.region == REGION
    assert instance.state == "running"
    assert instance.tags == {"backup": "true", "Team": "db"}
    assert instance.availability_zone == f"{REGION}a"
    assert instance.root_device_name == "/dev/sda1"
    assert ("/dev/sdf", volume_id) in [(d.device_name, d.volume_id) for d in instance.block_devices]
    assert all(d.volume_id.startswith("vol-") for d in instance.block_devices)


def test_volumes_carry_their_attachments(aws: None) -> None:
    ec2 = setup_client()
    (instance_id,) = launch(ec2, 1, {})
    volume_id = make_volume(ec2, {"backup": "true"})
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdg")

    inventory = read_inventory(
        AwsSession(regions=(REGION,)),
        policies(make_policy(resource="volume")),
    )

    (volume,) = inventory.volumes
    assert (volume.volume_id, volume.size_gib, volume.state) == (volume_id, 4, "in-use")
    assert volume.tags == {"backup": "true"}
    assert [(a.instance_id, a.device) for a in volume.attachments] == [(instance_id, "/dev/sdg")]
    assert inventory.instances == ()


def test_instances_excluded_by_tag_or_state_are_read_and_untagged_ones_are_not(
    aws: None,
) -> None:
    """exclude_tags and instance_states are the planner's: it counts what they exclude."""
    ec2 = setup_client()
    (kept,) = launch(ec2, 1, {"backup": "true"})
    (skipped,) = launch(ec2, 1, {"backup": "true", "backup-skip": "yes"})
    (stopped,) = launch(ec2, 1, {"backup": "true"})
    ec2.stop_instances(InstanceIds=[stopped])
    (terminated,) = launch(ec2, 1, {"backup": "true"})
    ec2.terminate_instances(InstanceIds=[terminated])
    launch(ec2, 1, {"backup": "false"})
    selector = Selector(
        tags=tag_filter(backup="true"),
        exclude_tags=tag_filter(**{"backup-skip": "*"}),
        instance_states=("running",),
    )
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)

    found = read_instances(session.client("ec2", REGION), REGION, [selector])

    assert {i.instance_id: i.state for i in found} == {
        kept: "running",
        skipped: "running",
        stopped: "stopped",
        terminated: "terminated",
    }
    assert calls == Counter({"ec2:DescribeInstances": 1})


def test_two_selectors_make_two_calls_and_an_instance_both_select_appears_once(aws: None) -> None:
    ec2 = setup_client()
    (both,) = launch(ec2, 1, {"backup": "true", "env": "prod"})
    (only_env,) = launch(ec2, 1, {"env": "prod"})
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)

    found = read_instances(
        session.client("ec2", REGION),
        REGION,
        [Selector(tags=tag_filter(backup="true")), Selector(tags=tag_filter(env="prod"))],
    )

    assert sorted(i.instance_id for i in found) == sorted([both, only_env])
    assert calls["ec2:DescribeInstances"] == 2


def test_disabled_policies_still_read_their_instances(aws: None) -> None:
    (instance_id,) = launch(setup_client(), 1, {"backup": "true"})
    inventory = read_inventory(AwsSession(regions=(REGION,)), policies(make_policy(enabled=False)))
    assert [i.instance_id for i in inventory.instances] == [instance_id]


def test_a_selector_with_450_values_makes_three_calls_and_finds_every_instance(
    aws: None,
) -> None:
    ec2 = setup_client()
    wanted = [launch(ec2, 1, {"app": value})[0] for value in ("v000", "v250", "v449")]
    launch(ec2, 1, {"app": "other"})
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)
    selector = Selector(tags=tag_filter(app=[f"v{i:03}" for i in range(450)]))

    found = read_instances(session.client("ec2", REGION), REGION, [selector])

    assert sorted(i.instance_id for i in found) == sorted(wanted)
    assert calls == Counter({"ec2:DescribeInstances": 3})


def test_unmanaged_snapshots_are_never_in_the_inventory(aws: None) -> None:
    ec2 = setup_client()
    volume_id = make_volume(ec2, {})
    (managed,) = make_snapshots(ec2, volume_id, 1, MANAGED_TAGS)
    make_snapshots(ec2, volume_id, 2, {})
    make_snapshots(ec2, volume_id, 1, {"CreatedBy": "AWSBackup", "smartvault:policy": "x"})

    inventory = read_inventory(AwsSession(regions=(REGION,)), policies())

    assert [s.snapshot_id for s in inventory.snapshots] == [managed]


def test_snapshots_carry_state_aware_utc_time_tags_size_and_description(aws: None) -> None:
    ec2 = setup_client()
    volume_id = make_volume(ec2, {})
    (snapshot_id,) = make_snapshots(ec2, volume_id, 1, MANAGED_TAGS)

    (snapshot,) = read_snapshots(AwsSession().client("ec2", REGION), REGION)

    assert snapshot.snapshot_id == snapshot_id
    assert snapshot.volume_id == volume_id
    assert snapshot.state == "completed"
    assert snapshot.start_time.tzinfo is UTC
    assert abs(snapshot.start_time - datetime.now(UTC)) < timedelta(minutes=5)
    assert snapshot.tags == MANAGED_TAGS
    assert snapshot.managed
    assert snapshot.volume_size_gib == 4
    assert snapshot.storage_tier == "standard"
    assert snapshot.description == "test 0"


def test_archived_snapshots_and_non_utc_times_are_read_as_aws_sends_them() -> None:
    """Tiers and restore periods as EC2 reports them; botocore may hand back any UTC offset."""
    ec2 = AwsSession().client("ec2", REGION)
    archived, restored = _snapshot_page(0, 2)
    archived["StorageTier"] = "archive"
    archived["StartTime"] = datetime(2026, 11, 28, 4, 0, 4, tzinfo=timezone(timedelta(hours=2)))
    restored["RestoreExpiryTime"] = datetime(2026, 12, 5, 1, tzinfo=timezone(timedelta(hours=1)))
    with Stubber(ec2) as stub:
        stub.add_response("describe_snapshots", {"Snapshots": [archived, restored]})
        first, second = read_snapshots(ec2, REGION)

    assert first.storage_tier == "archive"
    assert first.start_time == datetime(2026, 11, 28, 2, 0, 4, tzinfo=UTC)
    assert first.start_time.tzinfo is UTC
    assert first.restore_expiry is None
    assert second.restore_expiry == datetime(2026, 12, 5, 0, tzinfo=UTC)


def test_the_snapshots_an_ami_uses_are_read(aws: None) -> None:
    ec2 = setup_client()
    (instance_id,) = launch(ec2, 1, {})
    image_id = ec2.create_image(InstanceId=instance_id, Name="golden")["ImageId"]
    described = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    expected = [m["Ebs"]["SnapshotId"] for m in described["BlockDeviceMappings"] if "Ebs" in m]

    inventory = read_inventory(AwsSession(regions=(REGION,)), policies())

    (image,) = inventory.images
    assert (image.image_id, image.name, image.region) == (image_id, "golden", REGION)
    assert list(image.snapshot_ids) == expected
    assert expected


def test_regions_without_a_policy_still_have_their_snapshots_and_amis_read(aws: None) -> None:
    west = setup_client("eu-west-1")
    launch(west, 2, {"backup": "true"})
    (snapshot_id,) = make_snapshots(west, make_volume(west, {}, "eu-west-1"), 1, MANAGED_TAGS)
    session = AwsSession(regions=(REGION, "eu-west-1"))
    calls = count_calls(session)

    inventory = read_inventory(session, policies(make_policy(regions=(REGION,))))

    assert inventory.regions == ("eu-west-1", REGION)
    assert inventory.instances == ()
    assert [(s.snapshot_id, s.region) for s in inventory.snapshots] == [(snapshot_id, "eu-west-1")]
    assert calls == Counter(
        {
            "sts:GetCallerIdentity": 1,
            "ec2:DescribeInstances": 1,  # us-east-1 only
            "ec2:DescribeSnapshots": 2,
            "ec2:DescribeImages": 2,
        }
    )


def test_copy_target_regions_have_snapshots_read_but_not_instances(aws: None) -> None:
    target = setup_client("us-west-2")
    launch(target, 1, {"backup": "true"})
    (copy_id,) = make_snapshots(target, make_volume(target, {}, "us-west-2"), 1, MANAGED_TAGS)
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)

    inventory = read_inventory(
        session, policies(make_policy(copies=(CopyRule(region="us-west-2"),)))
    )

    assert inventory.regions == (REGION, "us-west-2")
    # so the plan never counts, nor warns about, resources it did not read
    assert inventory.resource_regions == (REGION,)
    assert inventory.instances == ()
    assert [s.snapshot_id for s in inventory.snapshots] == [copy_id]
    assert calls["ec2:DescribeInstances"] == 1
    assert calls["ec2:DescribeSnapshots"] == 2


# --- pagination as AWS does it (moto ignores MaxResults on DescribeSnapshots) -------------


def _snapshot_page(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "SnapshotId": f"snap-{i:017x}",
            "VolumeId": "vol-0123456789abcdef0",
            "State": "completed",
            "StartTime": datetime(2026, 11, 28, 2, 0, 4, tzinfo=UTC),
            "VolumeSize": 8,
            "StorageTier": "standard",
            "Tags": [{"Key": k, "Value": v} for k, v in MANAGED_TAGS.items()],
        }
        for i in range(start, start + count)
    ]


def test_2500_snapshots_are_read_in_three_pages_of_at_most_1000() -> None:
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)
    ec2 = session.client("ec2", REGION)
    expected = {
        "OwnerIds": ["self"],
        "Filters": [{"Name": "tag:CreatedBy", "Values": ["SmartVault"]}],
        "MaxResults": 1000,
    }
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_snapshots",
            {"Snapshots": _snapshot_page(0, 1000), "NextToken": "page-2"},
            expected,
        )
        stub.add_response(
            "describe_snapshots",
            {"Snapshots": _snapshot_page(1000, 1000), "NextToken": "page-3"},
            {**expected, "NextToken": "page-2"},
        )
        stub.add_response(
            "describe_snapshots",
            {"Snapshots": _snapshot_page(2000, 500)},
            {**expected, "NextToken": "page-3"},
        )
        snapshots = read_snapshots(ec2, REGION)
        stub.assert_no_pending_responses()

    assert calls == Counter({"ec2:DescribeSnapshots": 3})
    assert len({s.snapshot_id for s in snapshots}) == 2500


def test_instances_are_asked_for_1000_at_a_time() -> None:
    session = AwsSession(regions=(REGION,))
    ec2 = session.client("ec2", REGION)
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_instances",
            {"Reservations": []},
            {
                "Filters": [{"Name": "tag:backup", "Values": ["true"]}],
                "MaxResults": 1000,
            },
        )
        assert read_instances(ec2, REGION, [Selector(tags=tag_filter(backup="true"))]) == ()
        stub.assert_no_pending_responses()


# --- errors -----------------------------------------------------------------------------------


def test_access_denied_while_reading_is_one_readable_line(aws: None) -> None:
    session = AwsSession(regions=(REGION,))
    ec2 = session.client("ec2", REGION)
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "describe_snapshots",
            service_error_code="UnauthorizedOperation",
            service_message="You are not authorized to perform this operation.",
        )
        with pytest.raises(AwsError) as caught:
            read_inventory(session, policies())
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "access denied calling ec2:DescribeSnapshots in us-east-1: the role needs that permission"
    )


def test_an_unknown_copy_target_region_is_a_readable_error_before_any_call(aws: None) -> None:
    policy = make_policy(copies=(CopyRule(region="us-wset-2"),))
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)
    with pytest.raises(AwsError, match=r"^unknown region `us-wset-2`; did you mean `us-west-2`\?$"):
        read_inventory(session, policies(policy))
    assert calls == Counter()


def test_explicit_regions_need_no_default_region(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    inventory = read_inventory(AwsSession(), policies(), ["eu-west-1"])
    assert (inventory.account_id, inventory.regions) == ("123456789012", ("eu-west-1",))


def _volume_of(ec2: Any, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"])


def test_a_resource_that_no_longer_matches_is_read_for_its_current_tags(aws: None) -> None:
    """Its retention follows its current tags, not those recorded at creation."""
    ec2 = setup_client()
    (kept,) = launch(ec2, 1, {"backup": "true", "tier": "gold"})
    (untagged,) = launch(ec2, 1, {"backup": "false", "tier": "bronze"})
    for instance_id in (kept, untagged):
        make_snapshots(
            ec2,
            _volume_of(ec2, instance_id),
            1,
            {**MANAGED_TAGS, "smartvault:recovery-point": f"nightly/{instance_id}/20261128T0300Z"},
        )
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)

    inventory = read_inventory(session, policies(make_policy()))

    by_id = {i.instance_id: i for i in inventory.instances}
    assert set(by_id) == {kept, untagged}
    assert by_id[untagged].tags["tier"] == "bronze"
    # One query for the selector, one by id for the lineage it no longer selects.
    assert calls["ec2:DescribeInstances"] == 2


def test_a_vanished_resource_costs_one_lookup_and_is_simply_absent(aws: None) -> None:
    ec2 = setup_client()
    (instance_id,) = launch(ec2, 1, {"backup": "true"})
    volume = _volume_of(ec2, instance_id)
    rp = "nightly/i-0000000000000dead/20261128T0300Z"
    make_snapshots(ec2, volume, 1, {**MANAGED_TAGS, "smartvault:recovery-point": rp})
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)

    inventory = read_inventory(session, policies(make_policy()))

    assert [i.instance_id for i in inventory.instances] == [instance_id]
    assert calls["ec2:DescribeInstances"] == 2


def test_a_volume_that_no_longer_matches_is_read_by_id(aws: None) -> None:
    ec2 = setup_client()
    untagged = make_volume(ec2, {"backup": "false", "tier": "bronze"})
    rp = f"volumes/{untagged}/20261128T0300Z"
    make_snapshots(
        ec2,
        untagged,
        1,
        {**MANAGED_TAGS, "smartvault:policy": "volumes", "smartvault:recovery-point": rp},
    )
    session = AwsSession(regions=(REGION,))
    calls = count_calls(session)

    inventory = read_inventory(session, policies(make_policy("volumes", resource="volume")))

    assert [(v.volume_id, v.tags["tier"]) for v in inventory.volumes] == [(untagged, "bronze")]
    assert calls["ec2:DescribeVolumes"] == 2


# --- memory and concurrency -----------------------------------------------------------


def test_repeated_tag_texts_are_one_object_and_recovery_point_ids_stay_their_own(
    aws: None,
) -> None:
    ec2 = setup_client()
    volume_id = make_volume(ec2, {})
    for n in range(3):
        make_snapshots(
            ec2,
            volume_id,
            1,
            {**MANAGED_TAGS, "Team": "storage", "smartvault:recovery-point": f"nightly/v/{n}"},
        )

    snapshots = read_inventory(AwsSession(regions=(REGION,)), policies()).snapshots

    first, *others = snapshots
    for other in others:
        for key, value in other.tags.items():
            (same_key,) = (k for k in first.tags if k == key)
            assert same_key is key  # one object per key, whichever snapshot it came from
            if key != "smartvault:recovery-point":
                assert first.tags[key] is value
        assert other.tags["smartvault:recovery-point"] != first.tags["smartvault:recovery-point"]
    assert len({s.volume_id for s in snapshots}) == 1
    assert all(s.volume_id is first.volume_id for s in snapshots)


def test_regions_read_side_by_side_give_what_one_at_a_time_gives(aws: None) -> None:
    regions = ("us-east-1", "us-west-2", "eu-west-1", "ap-south-1", "eu-central-1")
    for region in regions:
        ec2 = setup_client(region)
        launch(ec2, 2, {"backup": "true"})
        make_snapshots(ec2, make_volume(ec2, {}, region), 2, MANAGED_TAGS)
    loaded = policies(make_policy(selector=Selector(tags=tag_filter(backup="true"))))

    together = read_inventory(AwsSession(regions=regions), loaded)
    alone = [read_inventory(AwsSession(regions=(region,)), loaded) for region in regions]

    assert together.regions == tuple(sorted(regions))
    by_region = {inv.regions[0]: inv for inv in alone}
    assert together.snapshots == tuple(s for r in together.regions for s in by_region[r].snapshots)
    assert together.instances == tuple(i for r in together.regions for i in by_region[r].instances)
    assert [s.region for s in together.snapshots] == sorted(s.region for s in together.snapshots)


def test_of_two_failing_regions_the_first_in_order_is_reported_whichever_fails_first(
    aws: None,
) -> None:
    session = AwsSession(regions=("eu-west-1", "us-east-1"))
    slow, quick = session.client("ec2", "eu-west-1"), session.client("ec2", "us-east-1")

    def stall(**_: Any) -> None:
        time.sleep(0.3)  # eu-west-1 fails last

    slow.meta.events.register_first("before-call.ec2.DescribeSnapshots", stall)
    with Stubber(slow) as slow_stub, Stubber(quick) as quick_stub:
        for stub, code in ((slow_stub, "UnauthorizedOperation"), (quick_stub, "AuthFailure")):
            stub.add_client_error("describe_snapshots", service_error_code=code)
        with pytest.raises(AwsError) as caught:
            read_inventory(session, policies())

    assert "in eu-west-1" in str(caught.value)
