"""Restore decisions without AWS: finding, choosing, the volume specs, every refusal."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from smartvault.core import restore as decide
from smartvault.core.model import BlockDevice
from smartvault.core.model import Instance
from smartvault.core.model import Snapshot
from smartvault.core.model import Volume
from smartvault.core.model import VolumeSpec
from smartvault.core.model import encode_volume_specs
from smartvault.core.model.restore import FoundPoint
from smartvault.core.tags import compact_json

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
INST = "i-0abc"
RP = f"nightly/{INST}/20261201T0300Z"
EAST, WEST = "us-east-1", "us-west-2"
ZONES = ("us-east-1a", "us-east-1b")
SPECS = {
    "/dev/sda1": VolumeSpec("gp2", 100, None, {"Name": "root"}),
    "/dev/sdf": VolumeSpec("gp3", 4000, 250, {"Name": "data", "aws:x": "y", "CreatedBy": "me"}),
    "/dev/sdg": VolumeSpec("st1", 500, None, {"smartvault:verify": "x", "Team": "db"}),
}
DEVICES = {"vol-root": "/dev/sda1", "vol-f": "/dev/sdf", "vol-g": "/dev/sdg"}


def snap(
    sid: str,
    volume_id: str,
    *,
    rp: str = RP,
    region: str = EAST,
    state: str = "completed",
    at: datetime = NOW - timedelta(days=1),
    specs: dict[str, VolumeSpec] | None = SPECS,
    **tags: str,
) -> Snapshot:
    policy, resource, stamp = rp.split("/")
    slot = datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    base = {
        "CreatedBy": "SmartVault",
        "smartvault:policy": policy,
        "smartvault:recovery-point": rp,
        "smartvault:slot": slot.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if resource.startswith("i-"):
        base["InstanceId"] = resource
        base["smartvault:devices"] = compact_json(DEVICES)
    if specs is not None:
        base["smartvault:volumes"] = encode_volume_specs(specs)[0]
    return Snapshot(
        sid,
        region,
        volume_id,
        state,
        at,
        tags={**base, **{k.replace("__", ":"): v for k, v in tags.items()}},
        volume_size_gib={"vol-root": 8, "vol-f": 20, "vol-g": 125}.get(volume_id, 4),
    )


def instance_point(**kwargs) -> list[Snapshot]:
    return [snap(f"snap-{v}", v, **kwargs) for v in DEVICES]


def copy_of(original: Snapshot, sid: str, region: str = WEST) -> Snapshot:
    device = DEVICES[original.volume_id]
    return Snapshot(
        sid,
        region,
        "vol-ffffffff",  # a copy's VolumeId is arbitrary
        "completed",
        original.start_time + timedelta(minutes=5),
        tags={
            **original.tags,
            "smartvault:source": f"{EAST}/{original.snapshot_id}",
            "smartvault:device": device,
        },
        volume_size_gib=original.volume_size_gib,
    )


def one(points: list[FoundPoint], region: str = EAST) -> FoundPoint:
    (point,) = [p for p in points if p.region == region]
    return point


def stopped(zone: str = "us-east-1a", *devices: BlockDevice, state: str = "stopped") -> Instance:
    return Instance(
        "i-target",
        EAST,
        state,
        availability_zone=zone,
        root_device_name="/dev/xvda",
        block_devices=(BlockDevice("/dev/xvda", "vol-troot"), *devices),
    )


def plan(point: FoundPoint, instance: Instance | None = None, **target) -> decide.RestorePlan:
    return decide.plan_restore(
        point,
        now=NOW,
        zones=ZONES,
        originals=target.pop("originals", {}),
        instance=instance,
        target=decide.Target(**target),
    )


class TestFinding:
    def test_an_original_and_its_copy_are_two_points_newest_first_original_before_copy(self):
        older = instance_point(rp=f"nightly/{INST}/20261130T0300Z", at=NOW - timedelta(days=2))
        newer = instance_point()
        copies = [copy_of(s, f"snap-c{i}") for i, s in enumerate(newer)]

        points = decide.find_points([*older, *copies, *newer], resource_type="instance")

        assert [(p.recovery_point, p.region, p.is_copy) for p in points] == [
            (RP, WEST, True),  # the copy started five minutes later
            (RP, EAST, False),
            (f"nightly/{INST}/20261130T0300Z", EAST, False),
        ]
        assert points[0].sources == tuple(f"{EAST}/snap-{v}" for v in DEVICES)  # by copy id

    def test_malformed_and_foreign_snapshots_are_never_offered(self):
        good = instance_point()
        wrong_instance = snap("snap-x", "vol-x", InstanceId="i-other")
        not_ours = snap("snap-y", "vol-y", CreatedBy="someone")
        bad_slot = snap("snap-z", "vol-z", smartvault__slot="2020-01-01T00:00:00Z")

        points = decide.find_points(
            [*good, wrong_instance, not_ours, bad_slot], resource_type="instance", resource_id=INST
        )

        assert [p.snapshot_ids for p in points] == [("snap-vol-f", "snap-vol-g", "snap-vol-root")]

    def test_state_verified_held_and_tier_come_from_every_snapshot(self):
        points = decide.find_points(
            [
                snap("snap-1", "vol-f", smartvault__verified="2026-12-01T05:00:00Z"),
                snap("snap-2", "vol-g", state="pending", smartvault__hold="legal"),
            ]
        )
        (point,) = points
        assert (point.state, point.verified, point.held) == ("pending", "", "legal")
        failed = decide.find_points(
            [snap("snap-1", "vol-f"), snap("snap-2", "vol-g", state="error")]
        )
        assert failed[0].state == "failed"

    def test_verified_is_read_as_the_planner_reads_it(self):
        # the oldest readable time of all its snapshots; a value that is no time is no proof
        (both,) = decide.find_points(
            [
                snap("snap-1", "vol-f", smartvault__verified="2026-12-01T05:00:00Z"),
                snap("snap-2", "vol-g", smartvault__verified="2026-11-30T05:00:00+00:00"),
            ]
        )
        assert both.verified == "2026-11-30T05:00:00Z"
        (garbage,) = decide.find_points(
            [
                snap("snap-1", "vol-f", smartvault__verified="2026-12-01T05:00:00Z"),
                snap("snap-2", "vol-g", smartvault__verified="yes"),
            ]
        )
        assert garbage.verified == ""

    def test_tier_text_says_archive_and_temporary_restores(self):
        (point,) = decide.find_points([snap("snap-1", "vol-f")])
        archived = FoundPoint(
            **{**point.__dict__, "snapshots": (_tier(point.snapshots[0], "archive", None),)}
        )
        thawed = FoundPoint(
            **{
                **point.__dict__,
                "snapshots": (_tier(point.snapshots[0], "standard", NOW + timedelta(days=2)),),
            }
        )
        assert decide.tier_text(point, NOW) == "standard"
        assert decide.tier_text(archived, NOW) == "archive"
        assert decide.archived(archived, NOW) == ("snap-1",)
        assert decide.tier_text(thawed, NOW) == "archive, restored until 2026-12-04T03:00:00Z"
        assert decide.archived(thawed, NOW) == ()


def _tier(snapshot: Snapshot, tier: str, expiry: datetime | None) -> Snapshot:
    from dataclasses import replace

    return replace(snapshot, storage_tier=tier, restore_expiry=expiry)


class TestChoosing:
    def points(self, *, with_original: bool = True, copy_regions=(WEST,)) -> list[FoundPoint]:
        original = instance_point()
        copies = [
            copy_of(s, f"snap-{region}-{i}", region)
            for region in copy_regions
            for i, s in enumerate(original)
        ]
        return decide.find_points([*(original if with_original else []), *copies])

    def test_by_id_the_original_unless_a_region_is_named(self):
        points = self.points()
        assert decide.choose_by_id(points, RP, region=None, searched=[EAST]).region == EAST
        assert decide.choose_by_id(points, RP, region=WEST, searched=[EAST]).region == WEST

    def test_only_copies_in_one_region_is_that_copy_in_two_is_a_refusal(self):
        one_copy = self.points(with_original=False)
        two = self.points(with_original=False, copy_regions=(WEST, "eu-west-1"))
        assert decide.choose_by_id(one_copy, RP, region=None, searched=[]).region == WEST
        with pytest.raises(decide.Refused, match="only as copies, in eu-west-1, us-west-2"):
            decide.choose_by_id(two, RP, region=None, searched=[])

    def test_a_region_without_it_and_an_unknown_id_are_refused_with_what_to_do(self):
        points = self.points()
        with pytest.raises(decide.Refused, match="not in eu-west-1; it is in us-east-1, us-west-2"):
            decide.choose_by_id(points, RP, region="eu-west-1", searched=[EAST])
        with pytest.raises(decide.Refused, match=f"restore --instance {INST} --list"):
            decide.choose_by_id(
                points, f"nightly/{INST}/20200101T0300Z", region=None, searched=[EAST]
            )

    def test_the_newest_completed_point_before_the_time(self):
        older = instance_point(rp=f"nightly/{INST}/20261129T0300Z", at=NOW - timedelta(days=3))
        middle = instance_point(rp=f"nightly/{INST}/20261130T0300Z", at=NOW - timedelta(days=2))
        newest_pending = [
            snap(f"snap-p{i}", v, state="pending", at=NOW - timedelta(hours=1))
            for i, v in enumerate(DEVICES)
        ]
        points = decide.find_points([*older, *middle, *newest_pending])

        chosen = decide.choose_newest(points, INST, before=NOW, region=None, searched=[EAST])
        earlier = decide.choose_newest(
            points, INST, before=NOW - timedelta(days=2), region=None, searched=[EAST]
        )

        assert chosen.recovery_point == f"nightly/{INST}/20261130T0300Z"
        assert earlier.recovery_point == f"nightly/{INST}/20261129T0300Z"
        with pytest.raises(decide.Refused, match="no completed recovery point of i-0abc before"):
            decide.choose_newest(
                points, INST, before=NOW - timedelta(days=9), region=None, searched=[]
            )

    def test_a_point_of_another_resource_is_refused(self):
        decide.check_resource(RP, INST)
        with pytest.raises(decide.Refused, match=f"is of {INST}, not i-other"):
            decide.check_resource(RP, "i-other")
        with pytest.raises(decide.Refused, match="not a recovery point id"):
            decide.check_resource("nightly/i-1", INST)


class TestVolumes:
    def test_recorded_settings_by_device_less_aws_and_smartvault_tags(self):
        point = one(decide.find_points(instance_point()))

        volumes = {v.device: v for v in plan(point).volumes}

        data = volumes["/dev/sdf"]
        assert (data.size_gib, data.volume_type, data.iops, data.throughput) == (
            20,
            "gp3",
            4000,
            250,
        )
        assert data.tags == {"Name": "data", "smartvault:restored-from": RP}
        assert data.settings_from == "recorded"
        logs = volumes["/dev/sdg"]
        assert (logs.volume_type, logs.iops, logs.throughput) == ("st1", None, None)
        assert logs.tags == {"Team": "db", "smartvault:restored-from": RP}
        assert volumes["/dev/sda1"].iops is None  # gp2 IOPS cannot be set
        assert volumes["/dev/sda1"].root

    def test_a_copy_finds_its_entry_by_its_own_device_tag(self):
        copies = [copy_of(s, f"snap-c{i}") for i, s in enumerate(instance_point())]
        point = one(decide.find_points(copies), WEST)

        volumes = {
            v.device: v for v in plan(point, originals={"vol-ffffffff": _vol("gp2")}).volumes
        }

        assert sorted(volumes) == ["/dev/sda1", "/dev/sdf", "/dev/sdg"]
        assert volumes["/dev/sdf"].volume_type == "gp3"
        assert {v.settings_from for v in volumes.values()} == {"recorded"}

    def test_without_a_record_the_original_volume_then_gp3_at_its_baseline(self):
        point = one(decide.find_points(instance_point(specs=None)))
        original = _vol("io2", iops=9000, tags={"Name": "old", "aws:a": "b"}, volume_id="vol-f")

        volumes = {v.device: v for v in plan(point, originals={"vol-f": original}).volumes}

        assert (volumes["/dev/sdf"].volume_type, volumes["/dev/sdf"].iops) == ("io2", 9000)
        assert volumes["/dev/sdf"].settings_from == "original"
        assert volumes["/dev/sdf"].tags == {"Name": "old", "smartvault:restored-from": RP}
        gone = volumes["/dev/sdg"]
        assert (gone.volume_type, gone.iops, gone.throughput) == ("gp3", None, None)
        assert gone.settings_from == "default"
        assert "baseline" in gone.settings_note

    def test_a_volume_policy_point_uses_its_volume_entry_or_the_single_one(self):
        rp = "vols/vol-f/20261201T0300Z"
        by_id = snap("snap-1", "vol-f", rp=rp, specs={"vol-f": VolumeSpec("io1", 300)})
        single = snap("snap-2", "vol-f", rp=rp, specs={"vol-old": VolumeSpec("sc1")})
        first = plan(one(decide.find_points([by_id], resource_type="volume"))).volumes[0]
        second = plan(one(decide.find_points([single], resource_type="volume"))).volumes[0]
        assert (first.volume_type, first.iops, first.device) == ("io1", 300, None)
        assert second.volume_type == "sc1"

    def test_an_encrypted_snapshot_restores_encrypted_with_its_key(self):
        from dataclasses import replace

        encrypted = [replace(s, encrypted=True, kms_key_id="arn:key/1") for s in instance_point()]
        volume = plan(one(decide.find_points(encrypted))).volumes[0]
        assert (volume.encrypted, volume.kms_key_id) == (True, "arn:key/1")

    def test_the_tags_stay_within_50(self):
        tags = decide.restored_tags({f"k{i:02}": "v" for i in range(60)} | {"Name": "n"}, RP)
        assert len(tags) == 50
        assert tags["Name"] == "n"
        assert tags["smartvault:restored-from"] == RP


def _vol(kind: str, *, iops=None, tags=None, volume_id="vol-ffffffff", zone="us-east-1b") -> Volume:
    return Volume(volume_id, EAST, zone, 20, kind, "available", tags or {}, iops=iops)


class TestZoneAndAttachment:
    point = one(decide.find_points(instance_point()))

    def test_the_zone_from_az_then_the_instance_then_the_original_then_the_first(self):
        original = {"vol-f": _vol("gp3", volume_id="vol-f", zone="us-east-1b")}
        assert plan(self.point, zone="us-east-1b").zone == "us-east-1b"
        assert plan(self.point, stopped("us-east-1b"), attach_to="i-target").zone == "us-east-1b"
        assert plan(self.point, originals=original).zone == "us-east-1b"
        first = plan(self.point)
        assert first.zone == "us-east-1a"
        assert "first available zone" in first.zone_note

    def test_a_zone_of_another_region_is_refused_naming_the_zones(self):
        with pytest.raises(decide.Refused, match="its zones are us-east-1a, us-east-1b"):
            plan(self.point, zone="us-west-2a")

    def test_each_volume_at_its_device_and_the_root_never(self):
        planned = plan(self.point, stopped(), attach_to="i-target")
        by_device = {v.device: v.attach_device for v in planned.volumes}
        assert by_device == {"/dev/sda1": None, "/dev/sdf": "/dev/sdf", "/dev/sdg": "/dev/sdg"}

    def test_the_target_root_device_name_counts_as_root(self):
        devices = {**DEVICES, "vol-f": "/dev/xvda"}
        snaps = [
            snap(f"snap-{v}", v, smartvault__devices=compact_json(devices))
            for v in ("vol-f", "vol-g")
        ]
        planned = plan(one(decide.find_points(snaps)), stopped(), attach_to="i-target")
        assert [(v.device, v.root) for v in planned.volumes] == [
            ("/dev/xvda", True),
            ("/dev/sdg", False),
        ]

    @pytest.mark.parametrize(
        ("instance", "target", "message"),
        [
            (None, {}, "is not in us-east-1"),
            (stopped("us-east-1b"), {"zone": "us-east-1a"}, "is in us-east-1b, not us-east-1a"),
            (stopped(state="running"), {}, "is running: .* pass --force"),
            (stopped(state="stopping"), {"force": True}, "is stopping: wait"),
            (stopped("us-east-1a", BlockDevice("/dev/xvdg", "vol-busy")), {}, "/dev/sdg is taken"),
        ],
        ids=["elsewhere", "other-zone", "running", "stopping", "device-taken"],
    )
    def test_refusals(self, instance, target, message):
        with pytest.raises(decide.Refused, match=message):
            plan(self.point, instance, attach_to="i-target", **target)

    def test_a_running_instance_with_force_is_attached_to(self):
        planned = plan(self.point, stopped(state="running"), attach_to="i-target", force=True)
        assert planned.attach_to == "i-target"

    def test_a_point_not_completed_is_refused(self):
        pending = one(decide.find_points([snap("snap-1", "vol-f", state="pending")]))
        with pytest.raises(decide.Refused, match="is pending"):
            plan(pending)

    def test_a_volume_without_a_device_gets_the_first_free_data_device(self):
        rp = "vols/vol-f/20261201T0300Z"
        point = one(decide.find_points([snap("snap-1", "vol-f", rp=rp)], resource_type="volume"))
        busy = stopped("us-east-1a", BlockDevice("/dev/sdf", "vol-busy"))
        (volume,) = plan(point, busy, attach_to="i-target").volumes
        assert volume.attach_device == "/dev/sdg"
        assert decide.free_device(busy, ["/dev/sdg"]) == "/dev/sdh"
