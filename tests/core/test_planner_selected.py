"""What the plan says about each policy's selection, and about each line's resource and rule.

The counts of selected and excluded resources per region, the warning when an enabled
policy selects nothing, and on every action, kept and skipped entry the resource's
``Name`` (``resource_name``) and the retention rule that chose it (``retention``).
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from smartvault.core.model import CopyRule
from smartvault.core.model import Duration
from smartvault.core.model import Image
from smartvault.core.model import Instance
from smartvault.core.model import Plan
from smartvault.core.model import Policy
from smartvault.core.model import PolicyRegion
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import RetentionRule
from smartvault.core.model import Selector
from smartvault.core.model import Snapshot
from smartvault.core.model import Verify
from smartvault.core.model import Volume
from smartvault.core.planner import plan
from smartvault.core.tags import TAG_RESOURCE_TAGS
from smartvault.core.tags import TAG_SOURCE
from tests.factories import MINIMAL_POLICY
from tests.factories import make_instance
from tests.factories import make_inventory
from tests.factories import make_policy
from tests.factories import make_recovery_point
from tests.factories import parse_one
from tests.factories import tag_filter
from tests.factories import utc
from tests.factories import with_policy_lines

AT = utc(2026, 11, 28, 17)
EAST, WEST = "us-east-1", "us-west-2"
KEEP_7D = Retention(keep_last=1, max_age=Duration.parse("7d"))


def run(*policies: Policy, at: datetime = AT, **inventory: object) -> Plan:
    return plan(PolicySet(tuple(policies)), make_inventory(**inventory), at)  # type: ignore[arg-type]


def counts(p: Plan, name: str) -> tuple[PolicyRegion, ...]:
    return next(s.regions for s in p.policies if s.name == name)


def messages(p: Plan, region: str | None = None) -> list[str]:
    return [w.message for w in p.warnings if region is None or w.region == region]


def server(n: int, region: str = EAST, state: str = "running", **tags: str) -> Instance:
    return make_instance(f"i-{n:017x}", tags={"backup": "true", **tags}, state=state, region=region)


def points(
    resource_id: str, *days: int, policy: str = "nightly", region: str = EAST, **kw: object
) -> list[Snapshot]:
    return [
        s
        for day in days
        for s in make_recovery_point(
            policy,
            resource_id,
            utc(2026, 11, day, 3),
            volume_ids=(f"vol-{resource_id[2:]}0",),
            region=region,
            **kw,  # type: ignore[arg-type]
        )
    ]


# --- selected and excluded ------------------------------------------------------------


class TestCounts:
    def test_a_mixed_fleet_is_counted_per_region_selected_and_excluded_by_tag_or_state(
        self,
    ) -> None:
        policy = make_policy(
            selector=Selector(
                tags=tag_filter(backup="true"), exclude_tags=tag_filter(**{"backup-skip": "*"})
            )
        )
        fleet = [
            server(1),
            server(2, state="stopped"),
            server(3, **{"backup-skip": "yes"}),  # excluded by tag
            server(4, state="terminated"),  # excluded by state
            server(5, state="pending"),  # excluded by state
            make_instance("i-00000000000000006", tags={"backup": "false"}),  # not matched
            server(7, region=WEST),
            server(8, region=WEST, state="stopping"),
        ]

        p = run(policy, instances=fleet, regions=(EAST, WEST))

        assert counts(p, "nightly") == (PolicyRegion(EAST, 2, 3), PolicyRegion(WEST, 1, 1))
        [slot] = p.policies
        assert (slot.selected, slot.excluded) == (3, 4)
        assert sorted(a.resource_id for a in p.actions) == [
            "i-00000000000000001",
            "i-00000000000000002",
            "i-00000000000000007",
        ]
        assert messages(p) == []

    def test_only_regions_the_policy_covers_and_whose_resources_were_read_are_listed(
        self,
    ) -> None:
        """A copy target's instances are never read: counting it would be a guess."""
        fleet = [server(1), server(2, region=WEST)]
        only_west = make_policy("west-only", regions=(WEST,))
        everywhere = make_policy(copies=(CopyRule(WEST),))

        p = run(
            everywhere,
            only_west,
            instances=fleet,
            regions=(EAST, WEST, "eu-west-1"),
            resource_regions=(EAST, WEST),
        )

        assert counts(p, "nightly") == (PolicyRegion(EAST, 1, 0), PolicyRegion(WEST, 1, 0))
        assert counts(p, "west-only") == (PolicyRegion(WEST, 1, 0),)
        assert not any("matches no" in m for m in messages(p))

    def test_a_disabled_policy_is_counted_and_never_warned_about(self) -> None:
        paused = make_policy("paused", enabled=False, selector=Selector(tags=tag_filter(env="qa")))
        fleet = [server(1), server(2, state="stopped", env="qa")]

        p = run(paused, instances=fleet)

        assert counts(p, "paused") == (PolicyRegion(EAST, 1, 0),)
        assert p.actions == ()
        empty = run(paused, instances=[])
        assert counts(empty, "paused") == (PolicyRegion(EAST, 0, 0),)
        assert messages(empty) == []

    def test_volumes_are_counted_and_one_neither_in_use_nor_available_is_neither(self) -> None:
        policy = make_policy(
            "vols",
            resource="volume",
            selector=Selector(tags=tag_filter(backup="true"), exclude_tags=tag_filter(scratch="*")),
        )
        volumes = [
            Volume("vol-1", EAST, tags={"backup": "true"}),
            Volume("vol-2", EAST, state="available", tags={"backup": "true"}),
            Volume("vol-3", EAST, tags={"backup": "true", "scratch": "1"}),
            Volume("vol-4", EAST, state="creating", tags={"backup": "true"}),
        ]

        p = run(policy, volumes=volumes)

        assert counts(p, "vols") == (PolicyRegion(EAST, 2, 1),)


class TestNothingSelected:
    def test_a_selector_that_matches_nothing_is_a_warning_naming_it_with_the_values_seen(
        self,
    ) -> None:
        """The instances read for another policy show which values the key does have."""
        typo = make_policy("prod", selector=Selector(tags=tag_filter(env="Prod")))
        other = make_policy("any-env", selector=Selector(tags=tag_filter(env="*")))
        fleet = [
            make_instance("i-00000000000000001", tags={"env": "prod"}),
            make_instance("i-00000000000000002", tags={"env": "production"}),
            make_instance("i-00000000000000003", tags={"env": "prod", "Name": "web"}),
        ]

        p = run(typo, other, instances=fleet)

        [warning] = [w for w in p.warnings if w.policy == "prod"]
        assert warning.message == (
            "selector.tags {env: Prod} matches no instance in us-east-1: nothing is backed up "
            "there (of the instances read in us-east-1, 3 have the tag env with other values: "
            "prod, production)"
        )
        assert (warning.region, warning.resource_id) == (EAST, None)
        assert counts(p, "prod") == (PolicyRegion(EAST, 0, 0),)

    def test_without_other_instances_the_warning_names_the_selector_as_written(self) -> None:
        policy = make_policy(
            selector=Selector(tags=tag_filter(backup="true", env=["prod", "pre prod"], owner="*"))
        )

        p = run(policy, instances=[], regions=(EAST, WEST))

        assert messages(p) == [
            'selector.tags {backup: "true", env: [prod, "pre prod"], owner: "*"} matches no '
            f"instance in {region}: nothing is backed up there"
            for region in (EAST, WEST)
        ]

    def test_a_selector_whose_matches_are_all_excluded_says_by_which_rule(self) -> None:
        policy = make_policy(
            selector=Selector(
                tags=tag_filter(backup="true"),
                exclude_tags=tag_filter(**{"backup-skip": "*"}),
                instance_states=("running",),
            )
        )
        fleet = [server(1, **{"backup-skip": "x"}), server(2, state="stopped")]

        p = run(policy, instances=fleet)

        assert messages(p) == [
            'selector.tags {backup: "true"} matches 2 instances in us-east-1, but exclude_tags '
            '{backup-skip: "*"} excludes 1 and instance_states [running] excludes 1: nothing '
            "is backed up there"
        ]

    def test_a_volume_selector_says_volume_and_many_other_values_are_cut_short(self) -> None:
        policy = make_policy(
            "vols", resource="volume", selector=Selector(tags=tag_filter(tier="gold"))
        )
        reader = make_policy("all", resource="volume", selector=Selector(tags=tag_filter(tier="*")))
        volumes = [Volume(f"vol-{n}", EAST, tags={"tier": f"t{n}"}) for n in range(7)]

        p = run(policy, reader, volumes=volumes)

        assert messages(p) == [
            "selector.tags {tier: gold} matches no volume in us-east-1: nothing is backed up "
            "there (of the volumes read in us-east-1, 7 have the tag tier with other values: "
            "t0, t1, t2, t3, t4 and 2 more)"
        ]


# --- resource_name --------------------------------------------------------------------


def names(p: Plan) -> dict[tuple[str, str], str | None]:
    """(type or kept/skipped, recovery point) -> resource_name."""
    found: dict[tuple[str, str], str | None] = {}
    for action in p.actions:
        found[(action.type, action.recovery_point)] = action.resource_name
    for k in p.kept:
        found[("kept", k.recovery_point)] = k.resource_name
    for s in p.skipped:
        found[("skipped", s.recovery_point)] = s.resource_name
    return found


class TestResourceName:
    def test_the_name_comes_from_the_current_tags_on_every_line(self) -> None:
        instance = server(1, Name="web-1")
        snaps = points(instance.instance_id, 1, 26, 27)  # the 1st is past max_age 7d
        used = snaps[0].snapshot_id
        p = run(
            make_policy(copies=(CopyRule(WEST),), verify=Verify(Duration.parse("7d"))),
            instances=[instance],
            snapshots=snaps,
            regions=(EAST, WEST),
        )
        p_ami = run(
            make_policy(),
            instances=[instance],
            snapshots=snaps,
            images=[Image("ami-1", EAST, (used,))],
        )

        assert {a.type for a in p.actions} == {"create", "delete", "copy", "verify"}
        assert set(names(p).values()) == {"web-1"}
        assert [s.resource_name for s in p_ami.skipped] == ["web-1"]

    def test_a_gone_resource_is_named_by_the_tags_recorded_at_creation(self) -> None:
        recorded = json.dumps({"Name": "db-1", "tier": "gold"})
        snaps = points("i-0000000000000dead", 26, extra_tags={TAG_RESOURCE_TAGS: recorded})

        p = run(make_policy(), snapshots=snaps)

        [kept] = p.kept
        assert kept.resource_name == "db-1"

    def test_the_name_is_null_when_unknown_and_never_guessed_from_the_snapshot_name(
        self,
    ) -> None:
        """The snapshot's own Name is `<name> <policy> <slot>`: not the resource's name."""
        gone = points(
            "i-0000000000000dead",
            26,
            extra_tags={TAG_RESOURCE_TAGS: "{}", "Name": "db-1 nightly 2026-11-26T03:00Z"},
        )
        unnamed = server(2)  # exists, no Name tag; the recorded one is not used then
        recorded = json.dumps({"Name": "old-name"})
        kept_points = points(unnamed.instance_id, 26, extra_tags={TAG_RESOURCE_TAGS: recorded})

        p = run(make_policy(), instances=[unnamed], snapshots=gone + kept_points)

        assert {k.resource_id: k.resource_name for k in p.kept} == {
            "i-0000000000000dead": None,
            unnamed.instance_id: None,
        }
        [create] = p.actions
        assert create.resource_name is None

    def test_a_copy_in_its_target_region_is_named_by_its_source_resource(self) -> None:
        instance = server(1, Name="web-1")
        source = points(instance.instance_id, 27)
        copy = points(
            instance.instance_id,
            27,
            region=WEST,
            extra_tags={TAG_SOURCE: f"{EAST}/{source[0].snapshot_id}"},
            snapshot_prefix="snap-copy",
        )

        p = run(
            make_policy(copies=(CopyRule(WEST),)),
            instances=[instance],
            snapshots=source + copy,
            regions=(EAST, WEST),
            resource_regions=(EAST,),
        )

        assert {(k.region, k.resource_name) for k in p.kept} == {(EAST, "web-1"), (WEST, "web-1")}


# --- retention ------------------------------------------------------------------------


def rules(p: Plan) -> set[tuple[str, str, str | None]]:
    """(line, region, retention) of every action, kept and skipped entry."""
    found: set[tuple[str, str, str | None]] = set()
    for action in p.actions:
        found.add((action.type, action.region, action.retention))
    found.update(("kept", k.region, k.retention) for k in p.kept)
    found.update(("skipped", s.region, s.retention) for s in p.skipped)
    return found


class TestRetention:
    def test_a_policy_without_a_retention_block_says_default(self) -> None:
        instance = server(1)
        p = run(make_policy(), instances=[instance], snapshots=points(instance.instance_id, 1, 27))
        assert rules(p) == {
            ("create", EAST, "default"),
            ("delete", EAST, "default"),
            ("kept", EAST, "default"),
        }

    def test_a_loaded_policy_tells_default_from_a_block_equal_to_it(self) -> None:
        """Which rule the operator wrote, not what it keeps: the loader's own objects."""
        without = parse_one(MINIMAL_POLICY)
        written = parse_one(with_policy_lines("retention: {keep_last: 1, max_age: 7d}"))
        assert without.retention == written.retention
        instance = server(1)

        assert {a.retention for a in run(without, instances=[instance]).actions} == {"default"}
        assert {a.retention for a in run(written, instances=[instance]).actions} == {"retention"}

    @pytest.mark.parametrize(
        ("tags", "expected"),
        [
            ({}, "retention"),
            ({"tier": "gold"}, "retention_by_tag[0]"),
            ({"tier": "bronze"}, "retention_by_tag[1]"),
            ({"tier": "bronze", "keep-for": "20d"}, "retention_by_tag[1]+retention_tag"),
            ({"keep-for": "20d"}, "retention+retention_tag"),
            ({"keep-for": "forever"}, "retention"),  # invalid: never replaces max_age
        ],
        ids=["retention", "first-rule", "second-rule", "rule-and-tag", "tag", "invalid-tag"],
    )
    def test_the_rule_that_chose_the_retention_is_named(
        self, tags: dict[str, str], expected: str
    ) -> None:
        policy = make_policy(
            retention=KEEP_7D,
            retention_by_tag=(
                RetentionRule(tag_filter(tier="gold"), Retention(max_age=Duration.parse("20d"))),
                RetentionRule(tag_filter(tier="bronze"), Retention(max_age=Duration.parse("3d"))),
            ),
            retention_tag="keep-for",
        )
        instance = server(1, **tags)

        p = run(policy, instances=[instance], snapshots=points(instance.instance_id, 1, 27))

        assert {r for _, _, r in rules(p)} == {expected}
        assert {line for line, _, _ in rules(p)} == {"create", "delete", "kept"}

    def test_the_default_replaced_by_the_retention_tag_says_so(self) -> None:
        instance = server(1, **{"keep-for": "30d"})
        p = run(make_policy(retention_tag="keep-for"), instances=[instance])
        assert [a.retention for a in p.actions] == ["default+retention_tag"]

    def test_copies_name_their_copy_rule_in_both_regions(self) -> None:
        instance = server(1)
        source = points(instance.instance_id, 27)
        old_copy = points(
            instance.instance_id,
            1,
            2,
            region="eu-west-1",
            extra_tags={TAG_SOURCE: f"{EAST}/snap-old"},
            snapshot_prefix="snap-copy",
        )
        policy = make_policy(
            copies=(CopyRule(WEST), CopyRule("eu-west-1", KEEP_7D)),
            verify=Verify(Duration.parse("7d")),
        )

        p = run(
            policy,
            instances=[instance],
            snapshots=source + old_copy,
            regions=(EAST, WEST, "eu-west-1"),
            resource_regions=(EAST,),
        )

        copies = {a.target_region: a.retention for a in p.actions if a.type == "copy"}  # type: ignore[union-attr]
        assert copies == {WEST: "copies[0]", "eu-west-1": "copies[1]"}
        assert ("delete", "eu-west-1", "copies[1]") in rules(p)
        assert ("verify", EAST, "default") in rules(p)

    def test_no_rule_applies_to_a_disabled_policy_a_removed_copy_rule_or_unreadable_tags(
        self,
    ) -> None:
        instance = server(1)
        disabled = points(instance.instance_id, 27, policy="paused")
        orphaned_copy = points(
            instance.instance_id,
            27,
            region=WEST,
            extra_tags={TAG_SOURCE: f"{EAST}/snap-x"},
            snapshot_prefix="snap-copy",
        )
        unreadable = points("i-0000000000000dead", 1, extra_tags={TAG_RESOURCE_TAGS: "{bad"})
        failed = points("i-0000000000000dead", 27, state="error")

        p = run(
            make_policy(),
            make_policy("paused", enabled=False),
            instances=[instance],
            snapshots=disabled + orphaned_copy + unreadable + failed,
            regions=(EAST, WEST),
            resource_regions=(EAST,),
        )

        by_point = {k.recovery_point: (k.kept_by, k.retention) for k in p.kept}
        assert by_point == {
            f"paused/{instance.instance_id}/20261127T0300Z": (("disabled",), None),
            f"nightly/{instance.instance_id}/20261127T0300Z": (("no_copy_rule",), None),
            "nightly/i-0000000000000dead/20261101T0300Z": (("keep_last",), None),
        }
        # the failed point of the lineage whose tags cannot be read is still deleted
        deletes = [(a.recovery_point, a.retention) for a in p.actions if a.type == "delete"]
        assert deletes == [("nightly/i-0000000000000dead/20261127T0300Z", None)]
