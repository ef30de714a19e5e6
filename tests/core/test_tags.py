"""The tags written on new snapshots."""

from __future__ import annotations

import json

import pytest

from smartvault.core import tags
from smartvault.core.model import RecoveryPointId
from smartvault.core.model import Retention
from smartvault.core.model import RetentionRule
from smartvault.core.model import Snapshot
from smartvault.core.model import SnapshotSettings
from smartvault.core.model import Volume
from smartvault.core.model import VolumeAttachment
from smartvault.core.model import read_recovery_point
from smartvault.core.planner.creates import devices_to_snapshot
from smartvault.core.planner.creates import snapshot_tags
from smartvault.core.tags import TAGS_PER_RESOURCE_MAX
from smartvault.core.tags import aws_reserved
from smartvault.core.tags import smartvault_reserved
from tests.factories import make_instance
from tests.factories import make_policy
from tests.factories import tag_filter
from tests.factories import utc

SLOT = utc(2026, 11, 28, 3)


def tags_for(policy=None, resource=None):
    policy = policy or make_policy("prod-nightly")
    resource = resource or make_instance("i-0abc", volumes=2)
    return snapshot_tags(policy, resource, SLOT)


def test_an_instance_snapshot_carries_every_smartvault_tag() -> None:
    result = tags_for()
    assert result.tags == {
        "CreatedBy": "SmartVault",
        "InstanceId": "i-0abc",
        "smartvault:policy": "prod-nightly",
        "smartvault:recovery-point": "prod-nightly/i-0abc/20261128T0300Z",
        "smartvault:slot": "2026-11-28T03:00:00Z",
        "smartvault:resource-tags": "{}",
        "smartvault:devices": '{"vol-0abc0":"/dev/xvda","vol-0abc1":"/dev/xvdb"}',
        "Name": "i-0abc prod-nightly 2026-11-28T03:00Z",
    }
    assert result.full_values == {}
    assert result.problems == ()


def test_a_volume_snapshot_has_no_instance_id_and_no_devices() -> None:
    volume = Volume("vol-9", "us-east-1", tags={"backup": "true", "Name": "data"})
    result = tags_for(make_policy("vols", resource="volume"), volume)
    assert "InstanceId" not in result.tags
    assert "smartvault:devices" not in result.tags
    assert result.tags["Name"] == "data vols 2026-11-28T03:00Z"


def test_resource_tags_records_only_the_tags_that_choose_retention() -> None:
    policy = make_policy(
        retention_by_tag=(RetentionRule(tag_filter(tier="gold"), Retention(keep_last=5)),),
        retention_tag="backup-retention",
    )
    instance = make_instance(
        tags={"backup": "true", "tier": "gold", "backup-retention": "30d", "Team": "x"}
    )
    recorded = json.loads(tags_for(policy, instance).tags["smartvault:resource-tags"])
    assert recorded == {"backup-retention": "30d", "tier": "gold"}


def test_copy_tags_true_copies_every_tag_but_aws_ones() -> None:
    policy = make_policy(snapshot=SnapshotSettings(copy_tags=True))
    instance = make_instance(
        tags={"backup": "true", "Team": "a", "aws:cloudformation:x": "y", "AWS:Other": "z"}
    )
    tags = tags_for(policy, instance).tags
    assert tags["Team"] == "a"
    assert tags["backup"] == "true"
    assert "aws:cloudformation:x" not in tags
    assert "AWS:Other" not in tags  # reserved in any case: EC2 would refuse the create


def test_copy_tags_list_copies_only_the_named_tags_present() -> None:
    policy = make_policy(snapshot=SnapshotSettings(copy_tags=("Team", "Missing")))
    instance = make_instance(tags={"backup": "true", "Team": "a", "Other": "b"})
    tags = tags_for(policy, instance).tags
    assert tags["Team"] == "a"
    assert "Missing" not in tags
    assert "Other" not in tags


def test_snapshot_tags_are_filled_in_and_beat_copied_tags() -> None:
    policy = make_policy(
        "p1",
        snapshot=SnapshotSettings(
            copy_tags=("Team",),
            tags={"Team": "backup-{policy}", "Source": "{resource_id}@{slot} {other}"},
        ),
    )
    instance = make_instance("i-7", tags={"backup": "true", "Team": "web"})
    tags = tags_for(policy, instance).tags
    assert tags["Team"] == "backup-p1"
    assert tags["Source"] == "i-7@2026-11-28T03:00:00Z {other}"


def test_a_copied_name_replaces_the_default_name_and_snapshot_tags_beat_both() -> None:
    instance = make_instance(tags={"backup": "true", "Name": "web-1"})
    copied = make_policy(snapshot=SnapshotSettings(copy_tags=("Name",)))
    assert tags_for(copied, instance).tags["Name"] == "web-1"
    explicit = make_policy(
        snapshot=SnapshotSettings(copy_tags=("Name",), tags={"Name": "{resource_id} nightly"})
    )
    assert tags_for(explicit, instance).tags["Name"] == "i-0000000000000001 nightly"


def test_the_default_name_uses_the_resource_name_tag() -> None:
    instance = make_instance(tags={"backup": "true", "Name": "web-1"})
    assert tags_for(make_policy("p"), instance).tags["Name"] == "web-1 p 2026-11-28T03:00Z"


@pytest.mark.parametrize(
    "key", ["CreatedBy", "InstanceId", "smartvault:policy", "smartvault:recovery-point"]
)
def test_user_tags_never_override_smartvault_keys(key: str) -> None:
    policy = make_policy("p", snapshot=SnapshotSettings(copy_tags=True, tags={key: "forged"}))
    instance = make_instance("i-1", tags={"backup": "true", key: "forged-too"})
    result = tags_for(policy, instance)
    assert result.tags[key] != "forged"
    assert result.tags[key] != "forged-too"


def test_user_tags_under_the_smartvault_prefix_are_dropped_with_a_problem() -> None:
    policy = make_policy(snapshot=SnapshotSettings(tags={"smartvault:source": "x"}))
    result = tags_for(policy)
    assert "smartvault:source" not in result.tags
    assert any("smartvault:source" in p for p in result.problems)


def test_a_resource_tags_value_over_256_characters_is_cut_to_valid_json() -> None:
    keys = [f"k{i:02d}" for i in range(6)]
    policy = make_policy(
        retention_by_tag=tuple(RetentionRule(tag_filter(**{k: "*"}), Retention()) for k in keys)
    )
    instance = make_instance(tags={"backup": "true", **dict.fromkeys(keys, "v" * 60)})
    result = tags_for(policy, instance)
    written = result.tags["smartvault:resource-tags"]
    assert len(written) <= 256
    # Whole entries that fit, and a marker saying the rest was cut.
    assert json.loads(written) == {"smartvault:cut": "true", **dict.fromkeys(keys[:3], "v" * 60)}
    full = result.full_values["smartvault:resource-tags"]
    assert json.loads(full) == dict.fromkeys(keys, "v" * 60)
    assert any("smartvault:resource-tags" in p for p in result.problems)


def test_a_devices_map_over_256_characters_keeps_the_entries_that_fit() -> None:
    instance = make_instance("i-00000000000000001", volumes=12)
    result = tags_for(resource=instance)
    written = json.loads(result.tags["smartvault:devices"])
    full = json.loads(result.full_values["smartvault:devices"])
    assert len(full) == 12
    assert 0 < len(written) < 12
    assert all(full[k] == v for k, v in written.items())


def test_a_long_snapshot_tag_value_is_cut_and_its_whole_value_kept() -> None:
    policy = make_policy(snapshot=SnapshotSettings(tags={"Note": "x" * 300}))
    result = tags_for(policy)
    assert result.tags["Note"] == "x" * 256
    assert result.full_values["Note"] == "x" * 300


def test_a_key_longer_than_128_characters_is_not_written() -> None:
    policy = make_policy(snapshot=SnapshotSettings(tags={"k" * 129: "v"}))
    result = tags_for(policy)
    assert "k" * 129 not in result.tags
    assert result.problems


def test_more_than_50_tags_drops_the_lowest_priority_copied_tags() -> None:
    copied = {f"c{i:02d}": "v" for i in range(60)}
    policy = make_policy(snapshot=SnapshotSettings(copy_tags=True, tags={"Owner": "ops"}))
    instance = make_instance(tags=copied)
    result = tags_for(policy, instance)
    # one left for smartvault:volumes, which the create step adds from the volumes
    assert len(result.tags) == TAGS_PER_RESOURCE_MAX - 1
    assert result.tags["Owner"] == "ops"
    assert "Name" in result.tags
    assert "c00" in result.tags
    assert "c59" not in result.tags
    assert any("50 tags" in p and "c59" in p for p in result.problems)


def test_exclude_boot_volume_leaves_the_root_device_out() -> None:
    policy = make_policy(snapshot=SnapshotSettings(exclude_boot_volume=True))
    instance = make_instance("i-0abc", volumes=3)
    assert devices_to_snapshot(policy, instance) == {
        "vol-0abc1": "/dev/xvdb",
        "vol-0abc2": "/dev/xvdc",
    }


def test_an_attached_volume_records_its_device() -> None:
    volume = Volume("vol-1", "us-east-1", attachments=(VolumeAttachment("i-1", "/dev/sdf"),))
    assert devices_to_snapshot(make_policy(resource="volume"), volume) == {"vol-1": "/dev/sdf"}


@pytest.mark.parametrize(
    "resource",
    [make_instance("i-0abc", volumes=2), Volume("vol-0abc", "us-east-1", tags={})],
    ids=["instance", "volume"],
)
def test_the_tags_written_make_a_well_formed_recovery_point(resource) -> None:
    """What SmartVault writes is never malformed: the id agrees with every tag."""
    policy = make_policy("prod-nightly", resource="instance" if resource.tags else "volume")
    tags = snapshot_tags(policy, resource, utc(2026, 11, 28, 3, 30)).tags
    volume_id = getattr(resource, "volume_id", "vol-0abc0")
    snapshot = Snapshot("snap-1", "us-east-1", volume_id, "completed", SLOT, tags=tags)
    rp = read_recovery_point(snapshot, policy.resource)
    rid = getattr(resource, "instance_id", volume_id)
    assert rp == RecoveryPointId("prod-nightly", rid, utc(2026, 11, 28, 3, 30))
    assert str(rp) == tags["smartvault:recovery-point"] == f"prod-nightly/{rid}/20261128T0330Z"


@pytest.mark.parametrize(
    ("key", "reserved"),
    [
        ("CreatedBy", True),
        ("InstanceId", True),
        ("smartvault:policy", True),
        ("smartvault:anything", True),
        ("Name", False),
        ("createdby", False),
        ("SmartVault:policy", False),
    ],
)
def test_smartvault_reserves_its_own_keys_exactly_as_written(key: str, reserved: bool) -> None:
    assert smartvault_reserved(key) is reserved


@pytest.mark.parametrize(
    ("key", "reserved"),
    [("aws:cloudformation:stack", True), ("AWS:Other", True), ("Aws:x", True), ("aws", False)],
)
def test_aws_reserves_its_prefix_in_any_case(key: str, reserved: bool) -> None:
    assert aws_reserved(key) is reserved


class TestTagsWritten:
    """The tags SmartVault writes on the snapshots it makes and copies."""

    def test_a_create_forces_the_three_tags_its_safety_rests_on(self) -> None:
        planned = {"CreatedBy": "someone", "Team": "db", "smartvault:policy": "other"}
        assert tags.create_tags(planned, "nightly", "nightly/i-1/20261128T0300Z") == {
            "CreatedBy": "SmartVault",
            "Team": "db",
            "smartvault:policy": "nightly",
            "smartvault:recovery-point": "nightly/i-1/20261128T0300Z",
        }

    def test_a_copy_drops_aws_keys_and_names_its_source(self) -> None:
        source = {"aws:backup:source": "x", "AWS:Other": "y", "Name": "db-1", "Team": "db"}
        copied = tags.copy_tags(source, "nightly", "nightly/i-1/20261128T0300Z", "us-east-1/snap-1")
        assert copied == {
            "Name": "db-1",
            "Team": "db",
            "CreatedBy": "SmartVault",
            "smartvault:policy": "nightly",
            "smartvault:recovery-point": "nightly/i-1/20261128T0300Z",
            "smartvault:source": "us-east-1/snap-1",
        }

    def test_a_copy_of_a_source_at_the_limit_keeps_its_own_keys_within_it(self) -> None:
        source = {f"user-{n:02d}": "v" for n in range(50)}
        source["smartvault:slot"] = "2026-11-28T03:00:00Z"
        copied = tags.copy_tags(source, "nightly", "nightly/i-1/20261128T0300Z", "us-east-1/s")
        assert len(copied) == tags.TAGS_PER_RESOURCE_MAX
        assert copied["smartvault:slot"] == "2026-11-28T03:00:00Z"
        assert copied["smartvault:source"] == "us-east-1/s"
        assert "user-49" not in copied  # user tags give way, in key order from the end


class TestDeviceOfACopy:
    """A copy's VolumeId is arbitrary in AWS: its device comes from the source, at copy time."""

    DEVICES = '{"vol-1":"/dev/sdf","vol-2":"/dev/sdg"}'

    def test_the_device_of_the_source_volume_is_read_from_its_devices_tag(self) -> None:
        assert tags.device_of({tags.TAG_DEVICES: self.DEVICES}, "vol-2") == "/dev/sdg"

    @pytest.mark.parametrize(
        "source_tags",
        [
            {},
            {tags.TAG_DEVICES: DEVICES},
            {tags.TAG_DEVICES: "{not json"},
            {tags.TAG_DEVICES: "[]"},
        ],
        ids=["no devices tag", "volume not named (cut)", "not JSON", "not a map"],
    )
    def test_no_device_is_guessed(self, source_tags) -> None:
        assert tags.device_of(source_tags, "vol-9") is None

    def test_a_copy_carries_the_device_it_is_given_and_no_source_can_override_it(self) -> None:
        source = {tags.TAG_DEVICE: "/dev/evil", "Name": "db-1"}
        copied = tags.copy_tags(source, "nightly", "nightly/i-1/20261128T0300Z", "r/s", "/dev/sdf")
        assert copied[tags.TAG_DEVICE] == "/dev/sdf"
        assert tags.TAG_DEVICE not in tags.copy_tags(source, "p", "p/v/20261128T0300Z", "r/s")
