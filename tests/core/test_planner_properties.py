"""Invariants of the planner over random accounts and policies (hypothesis).

These are the promises people's backups rest on: SmartVault touches only its own
snapshots, never deletes what a rule keeps, what an AMI uses, what is pending, or
what belongs to a disabled or unknown policy; restore-tests each lineage's newest
completed point only when its last verification is older than ``verify.every``; and
the same account gives the same plan.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck
from hypothesis import assume
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.core import retention
from smartvault.core.model import CopyRule
from smartvault.core.model import DeleteAction
from smartvault.core.model import Duration
from smartvault.core.model import Image
from smartvault.core.model import Inventory
from smartvault.core.model import Plan
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import RetentionRule
from smartvault.core.model import Safety
from smartvault.core.model import Schedule
from smartvault.core.model import Snapshot
from smartvault.core.model import Verify
from smartvault.core.model import VerifyAction
from smartvault.core.model import recovery_point_id
from smartvault.core.planner import plan
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_RESOURCE_TAGS
from smartvault.core.tags import TAG_SLOT
from smartvault.core.tags import TAG_SOURCE
from smartvault.core.tags import TAG_VERIFIED
from smartvault.core.times import iso_utc
from smartvault.core.times import parse_iso_utc
from tests.factories import make_instance
from tests.factories import make_policy
from tests.factories import tag_filter
from tests.factories import utc

AT = utc(2026, 11, 28, 17)
EAST, WEST = "us-east-1", "us-west-2"
RESOURCES = ("i-1", "i-2", "i-gone")
SCHEDULES = (
    Schedule("rate(1 day)"),
    Schedule("cron(0 3 * * ? *)", "Europe/Berlin"),
    Schedule("rate(6 hours)"),
    Schedule("cron(30 1 ? * 2 *)", "America/New_York"),
)
AGES = (None, Duration.parse("36h"), Duration.parse("7d"), Duration.parse("30d"))
VERIFIES = (None, None, Verify(Duration.parse("1d")), Verify(Duration.parse("7d")))

retentions = st.builds(
    Retention,
    keep_last=st.integers(1, 4),
    max_age=st.sampled_from(AGES),
    hourly=st.integers(0, 3),
    daily=st.integers(0, 5),
    weekly=st.integers(0, 3),
    monthly=st.integers(0, 3),
    yearly=st.integers(0, 1),
)


@st.composite
def policies(draw: st.DrawFn, name: str) -> Policy:
    by_tag = draw(
        st.lists(
            st.builds(
                RetentionRule,
                st.sampled_from([tag_filter(tier="gold"), tag_filter(tier="bronze")]),
                retentions,
            ),
            max_size=2,
        )
    )
    copies = draw(st.sampled_from([(), (CopyRule(WEST, draw(retentions)),)]))
    return make_policy(
        name,
        enabled=draw(st.booleans()) or draw(st.booleans()),
        schedule=draw(st.sampled_from(SCHEDULES)),
        regions=draw(st.sampled_from([(), (EAST,)])),
        retention=draw(retentions),
        retention_by_tag=tuple(by_tag),
        retention_tag=draw(st.sampled_from([None, "keep"])),
        archive_after=draw(st.sampled_from([None, Duration.parse("10d")])),
        copies=copies,
        verify=draw(st.sampled_from(VERIFIES)),
        safety=draw(safeties),
    )


#: the deletion circuit breaker: the default, turned off, tight, and capped
safeties = st.sampled_from(
    [
        Safety(),
        Safety(max_delete_fraction=1),
        Safety(max_delete_fraction=0.25),
        Safety(max_delete_fraction=1, max_deletes=1),
        Safety(max_delete_fraction=0.5, max_deletes=3),
    ]
)


resource_tags = st.fixed_dictionaries(
    {},
    optional={
        "backup": st.sampled_from(["true", "false"]),
        "tier": st.sampled_from(["gold", "bronze", "silver"]),
        "keep": st.sampled_from(["2d", "20d", "oops", ""]),
    },
)


snapshot_states = st.sampled_from(["completed"] * 6 + ["pending", "error", "recoverable"])
tiers = st.sampled_from(["standard", "standard", "archive"])
# smartvault:verified on a snapshot: none, minutes before AT (negative: after it), or unreadable
verified_tags = st.sampled_from([None, None, None, 60, 2 * 1440, 10 * 1440, -60, "yes"])
# smartvault:hold on a snapshot: mostly none, sometimes a reason, sometimes an empty value
hold_tags = st.sampled_from([None] * 6 + ["INC-1", ""])
point_volumes = st.lists(
    st.tuples(snapshot_states, tiers, st.integers(0, 2), verified_tags, hold_tags),
    min_size=1,
    max_size=2,
)
# A series of recovery points of one resource, drawn as plain values (a composite per
# point is ten times slower): long lineages, so the calendar rules have work to do.
series_specs = st.tuples(
    st.sampled_from(["p0", "p0", "p1", "ghost"]),
    st.sampled_from(RESOURCES),
    st.sampled_from(["managed", "managed", "managed", "copy", "unmanaged", "half"]),
    st.sampled_from([WEST, WEST, EAST]),  # where a copy lives
    st.integers(-120, 60 * 24 * 60),  # minutes before AT of the newest (negative: clock skew)
    st.sampled_from([0, 50, 360, 1440, 1500, 7 * 1440]),  # minutes between points
    st.lists(point_volumes, min_size=1, max_size=15),
    resource_tags,
)


def snapshots_of(number: int, spec: tuple) -> list[Snapshot]:  # type: ignore[type-arg]
    """The snapshots of one series: managed (maybe copies) or unmanaged."""
    policy, resource, kind, copy_region, newest, step, points, recorded = spec
    snapshots = []
    for n, volumes in enumerate(points):
        created = AT - timedelta(minutes=newest + n * step)
        slot = (created - timedelta(seconds=n)).replace(second=0, microsecond=0)
        tags = {
            TAG_CREATED_BY: CREATED_BY_VALUE,
            TAG_POLICY: policy,
            TAG_RECOVERY_POINT: recovery_point_id(policy, resource, slot),
            TAG_SLOT: iso_utc(slot),
            TAG_INSTANCE_ID: resource,
            TAG_RESOURCE_TAGS: json.dumps(recorded),
        }
        if kind == "unmanaged":
            tags = {TAG_POLICY: policy, TAG_RECOVERY_POINT: tags[TAG_RECOVERY_POINT]}
        elif kind == "half":  # CreatedBy alone is not enough
            tags = {TAG_CREATED_BY: CREATED_BY_VALUE, TAG_RECOVERY_POINT: tags[TAG_RECOVERY_POINT]}
        region = EAST
        if kind == "copy":
            region = copy_region
            tags[TAG_SOURCE] = f"{EAST}/snap-src{number}-{n}"
        snapshots.extend(
            Snapshot(
                snapshot_id=f"snap-{number:02d}{n:02d}{i}",
                region=region,
                volume_id=f"vol-{resource}-{i}",
                state=state,
                start_time=created + timedelta(seconds=jitter),
                tags=_with_hold(_with_verified(tags, verified), hold),
                storage_tier=tier,
            )
            for i, (state, tier, jitter, verified, hold) in enumerate(volumes)
        )
    return snapshots


def _with_verified(tags: dict[str, str], verified: int | str | None) -> dict[str, str]:
    if verified is None:
        return tags
    value = verified if isinstance(verified, str) else iso_utc(AT - timedelta(minutes=verified))
    return {**tags, TAG_VERIFIED: value}


def _with_hold(tags: dict[str, str], hold: str | None) -> dict[str, str]:
    return tags if hold is None else {**tags, TAG_HOLD: hold}


def _held(snapshots: list[Snapshot]) -> bool:
    """Held, written out again: any snapshot of the point carries a non-empty hold."""
    return any(s.tags.get(TAG_HOLD) for s in snapshots)


@dataclass(frozen=True)
class Case:
    policies: PolicySet
    inventory: Inventory


@st.composite
def cases(draw: st.DrawFn) -> Case:
    names = ["p0", *draw(st.lists(st.sampled_from(["p1", "p2"]), max_size=2, unique=True))]
    loaded = PolicySet(tuple(draw(policies(n)) for n in names))
    instances = [
        make_instance(
            rid,
            tags=draw(resource_tags),
            volumes=draw(st.integers(0, 2)),
            state=draw(st.sampled_from(["running", "stopped", "terminated"])),
        )
        for rid in RESOURCES[:-1]
        if draw(st.booleans())
    ]
    specs = draw(st.lists(series_specs, max_size=6))
    snaps = [s for n, spec in enumerate(specs) for s in snapshots_of(n, spec)]
    ids = [s.snapshot_id for s in snaps]
    images = [
        Image(f"ami-{i}", EAST, tuple(draw(st.lists(st.sampled_from(ids), max_size=2))))
        for i in range(draw(st.integers(0, 2) if ids else st.just(0)))
    ]
    inventory = Inventory(
        account_id="123456789012",
        regions=draw(st.sampled_from([(EAST,), (EAST, WEST)])),
        instances=tuple(instances),
        snapshots=tuple(snaps),
        images=tuple(images),
    )
    return Case(loaded, inventory)


def shuffled(inventory: Inventory, seed: int) -> Inventory:
    rng = random.Random(seed)

    def mix(items: tuple) -> tuple:  # type: ignore[type-arg]
        items_list = list(items)
        rng.shuffle(items_list)
        return tuple(items_list)

    return replace(
        inventory,
        instances=mix(inventory.instances),
        snapshots=mix(inventory.snapshots),
        images=mix(inventory.images),
    )


def touched_snapshots(p: Plan) -> set[str]:
    return {
        s
        for a in p.actions
        if a.type in ("delete", "archive", "copy", "verify")
        for s in a.snapshot_ids  # type: ignore[union-attr]
    }


def deleted(p: Plan) -> list[DeleteAction]:
    """What retention deletes: the planned deletions and those ``safety`` held back."""
    return [a for a in p.actions if isinstance(a, DeleteAction)] + [
        h.action for h in p.held_deletes
    ]


PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(case=cases())
def test_nothing_smartvault_may_not_touch_is_ever_changed(case: Case) -> None:
    """Unmanaged, AMI-used, pending, orphaned and disabled snapshots are never changed."""
    p = plan(case.policies, case.inventory, AT)
    managed = {s.snapshot_id for s in case.inventory.snapshots if s.managed}
    assert touched_snapshots(p) <= managed

    in_use = {s for image in case.inventory.images for s in image.snapshot_ids}
    pending = {s.snapshot_id for s in case.inventory.snapshots if s.state == "pending"}
    removed = {s for a in deleted(p) for s in a.snapshot_ids}
    assert not removed & in_use
    assert not removed & pending

    loaded = {policy.name for policy in case.policies.policies}
    enabled = {policy.name for policy in case.policies.policies if policy.enabled}
    assert {a.policy for a in p.actions if a.type != "create"} <= enabled
    assert {o.policy for o in p.orphans}.isdisjoint(loaded)


@PROPERTY
@given(case=cases())
def test_a_held_recovery_point_is_never_deleted_nor_archived(case: Case) -> None:
    """Any snapshot with a non-empty smartvault:hold holds its whole point: kept by its
    hold (or pending), never deleted, never archived, whatever the retention says."""
    p = plan(case.policies, case.inventory, AT)
    snapshots = {s.snapshot_id: s for s in case.inventory.snapshots}
    held_points = {
        (k.region, k.policy, k.recovery_point)
        for k in p.kept
        if _held([snapshots[s] for s in k.snapshot_ids])
    }
    if held_points:
        event("a held point is kept")
    for action in p.actions:
        if action.type in ("delete", "archive"):
            members = [snapshots[s] for s in action.snapshot_ids]  # type: ignore[union-attr]
            assert not _held(members)
            assert (action.region, action.policy, action.recovery_point) not in held_points
    for entry in p.skipped:
        assert not _held([snapshots[s] for s in entry.snapshot_ids])
    enabled = {policy.name for policy in case.policies.policies if policy.enabled}
    for k in p.kept:
        if _held([snapshots[s] for s in k.snapshot_ids]) and k.policy in enabled:
            assert k.kept_by in (("hold",), ("pending",))


@PROPERTY
@given(case=cases())
def test_every_managed_snapshot_is_accounted_for_exactly_once(case: Case) -> None:
    p = plan(case.policies, case.inventory, AT)
    listed = [
        s
        for group in (deleted(p), p.kept, p.skipped, p.orphans)
        for entry in group
        for s in entry.snapshot_ids
    ]
    expected = {
        s.snapshot_id for s in case.inventory.snapshots if s.managed and s.state != "recoverable"
    }
    assert sorted(listed) == sorted(expected)


def _lineages(p: Plan, inventory: Inventory) -> dict[tuple, list]:  # type: ignore[type-arg]
    """(region, policy, resource, is copy) -> every entry of the plan for its points."""
    by_id = {s.snapshot_id: s for s in inventory.snapshots}
    lineages: dict[tuple, list] = defaultdict(list)  # type: ignore[type-arg]
    for entry in [*deleted(p), *p.kept, *p.skipped]:
        first = by_id[entry.snapshot_ids[0]]
        is_copy = TAG_SOURCE in first.tags
        lineages[(entry.region, entry.policy, entry.resource_id, is_copy)].append(entry)
    return lineages


def _oracle_retention(
    policy: Policy, tags: dict[str, str], region: str, is_copy: bool
) -> Retention | None:
    """How a lineage's retention is chosen, written out again independently of the planner."""
    if is_copy:
        return next((r.retention for r in policy.copies if r.region == region), None)
    chosen = next(
        (r.retention for r in policy.retention_by_tag if r.match.matches_all(tags)),
        policy.retention,
    )
    if policy.retention_tag and policy.retention_tag in tags:
        with contextlib.suppress(ValueError):
            chosen = replace(chosen, max_age=Duration.parse(tags[policy.retention_tag]))
    return chosen


@PROPERTY
@given(case=cases())
def test_a_deleted_point_is_failed_or_kept_by_no_rule(case: Case) -> None:
    p = plan(case.policies, case.inventory, AT)
    snapshots = {s.snapshot_id: s for s in case.inventory.snapshots}
    instances = {(i.region, i.instance_id): i for i in case.inventory.instances}
    for (region, name, resource_id, is_copy), entries in _lineages(p, case.inventory).items():
        policy = case.policies.get(name)
        if policy is None or not policy.enabled:
            continue
        points = {
            id(e): retention.Point(
                e.recovery_point,
                min(snapshots[s].start_time for s in e.snapshot_ids),
                min(e.snapshot_ids),
            )
            for e in entries
        }
        states = {id(e): {snapshots[s].state for s in e.snapshot_ids} for e in entries}
        # a held point counts toward no rule: the others are judged as if it were not there
        completed = [
            points[id(e)]
            for e in entries
            if states[id(e)] == {"completed"} and not _held([snapshots[s] for s in e.snapshot_ids])
        ]
        instance = instances.get((region, resource_id))
        if instance is not None:
            tags = dict(instance.tags)
        else:
            newest = min(entries, key=lambda e: retention.order_key(points[id(e)]))
            tags = json.loads(snapshots[min(newest.snapshot_ids)].tags[TAG_RESOURCE_TAGS])
        rules = _oracle_retention(policy, tags, region, is_copy)
        removed = [e for e in entries if isinstance(e, DeleteAction)]
        if rules is None:
            assert not removed  # a copy lineage without its rule keeps everything
            continue
        verdicts = retention.evaluate(completed, rules, AT, ZoneInfo(policy.schedule.timezone))
        newest_ids = {pt.id for pt in retention.newest_first(completed)[: rules.keep_last]}
        for entry in removed:
            if "error" in states[id(entry)]:
                continue
            # the keep_last newest completed points are never deleted, nor any point a rule keeps
            assert entry.recovery_point not in newest_ids
            assert verdicts[entry.recovery_point] == ()


def _verified(snapshots: list[Snapshot]) -> datetime | None:
    """When a point was verified, written out again: every snapshot readable, the oldest."""
    times = [parse_iso_utc(s.tags.get(TAG_VERIFIED, "")) for s in snapshots]
    return None if None in times else min(t for t in times if t is not None)


@PROPERTY
@given(case=cases())
def test_a_lineage_is_restore_tested_exactly_when_its_last_verification_is_too_old(
    case: Case,
) -> None:
    """At most one test per lineage, of its newest completed point, never of a point the
    plan deletes, of an archived one, or of an unmanaged or malformed snapshot."""
    p = plan(case.policies, case.inventory, AT)
    snapshots = {s.snapshot_id: s for s in case.inventory.snapshots}
    tests = [a for a in p.actions if isinstance(a, VerifyAction)]
    removed = {s for a in deleted(p) for s in a.snapshot_ids}
    by_lineage: dict[tuple, list[VerifyAction]] = defaultdict(list)  # type: ignore[type-arg]
    for test in tests:
        first = snapshots[test.snapshot_ids[0]]
        by_lineage[(test.region, test.policy, test.resource_id, TAG_SOURCE in first.tags)].append(
            test
        )
        assert not set(test.snapshot_ids) & removed
        assert all(snapshots[s].managed for s in test.snapshot_ids)

    expected_lineages = set()
    for key, entries in _lineages(p, case.inventory).items():
        region, name, _, is_copy = key
        policy = case.policies.get(name)
        if policy is None or not policy.enabled or policy.verify is None:
            continue
        if is_copy and not any(r.region == region for r in policy.copies):
            continue
        members = {id(e): [snapshots[s] for s in e.snapshot_ids] for e in entries}
        completed = [e for e in entries if all(m.state == "completed" for m in members[id(e)])]
        if not completed:
            continue
        completed.sort(
            key=lambda e: retention.order_key(
                retention.Point(
                    e.recovery_point,
                    min(m.start_time for m in members[id(e)]),
                    min(e.snapshot_ids),
                )
            )
        )
        newest = completed[0]
        last = next(
            (v for e in completed if (v := _verified(members[id(e)])) is not None and v <= AT),
            None,
        )
        if last is not None and last >= AT - policy.verify.every.delta:
            event("verified recently enough")
            continue
        if any(m.storage_tier != "standard" for m in members[id(newest)]):
            assert any(newest.recovery_point in w.message for w in p.warnings)
            event("archived newest point warned about")
            continue
        expected_lineages.add(key)
        [test] = by_lineage[key]
        event("restore test planned")
        assert (test.recovery_point, test.snapshot_ids) == (
            newest.recovery_point,
            newest.snapshot_ids,
        )
        assert test.timeout == policy.verify.timeout
    assert set(by_lineage) == expected_lineages
    assert all(len(found) == 1 for found in by_lineage.values())


@PROPERTY
@given(case=cases(), seed=st.integers())
def test_the_plan_is_deterministic_whatever_the_inventory_order(case: Case, seed: int) -> None:
    first = plan(case.policies, case.inventory, AT)
    assert plan(case.policies, case.inventory, AT) == first
    assert plan(case.policies, shuffled(case.inventory, seed), AT) == first


# Many random worlds delete nothing (holds, keep_last, the breaker's held deletions aside):
# they are filtered out by assume(), which is the point of the test, not a health problem.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=cases(), pick=st.integers(0, 10**6))
def test_an_ami_on_any_snapshot_of_a_deleted_point_keeps_the_whole_point(
    case: Case, pick: int
) -> None:
    # Metamorphic: random images rarely land on a point the plan deletes, so take a point
    # the plan does delete, register an AMI on one of its snapshots, and plan again.
    before = deleted(plan(case.policies, case.inventory, AT))
    assume(before)
    target = before[pick % len(before)]
    used = target.snapshot_ids[pick % len(target.snapshot_ids)]
    inventory = replace(
        case.inventory, images=(*case.inventory.images, Image("ami-pinned", EAST, (used,)))
    )

    after = plan(case.policies, inventory, AT)

    assert not {s for a in deleted(after) for s in a.snapshot_ids} & set(target.snapshot_ids)
    key = (target.region, target.policy, target.recovery_point)
    (skip,) = [s for s in after.skipped if (s.region, s.policy, s.recovery_point) == key]
    assert "ami-pinned" in skip.reason


# --- malformed managed snapshots ------------------------------------------------------
#
# Tags someone else wrote: valid CreatedBy and smartvault:policy, but a recovery-point tag
# that does not agree with the snapshot's own tags (DESIGN §1). Mixed into a random world,
# they must change nothing but the warnings.

MALFORMED_KINDS = (
    "no id",
    "unparsable",
    "other policy",
    "other resource",
    "no instance id",
    "other slot",
    "no slot",
    "squatter",
    "bad copy",
)
UNPARSABLE = (
    "x",
    "p0/i-1",
    "p0//20261128T0300Z",
    "p0/i-1/2026-11-28T03:00Z",
    "p0/i-1/20261128T0300Z/x",
    "P0/i-1/20261128T0300Z",
    "p0/i-1/20261131T0300Z",
)


@st.composite
def malformed(draw: st.DrawFn, case: Case, number: int) -> Snapshot:
    """One malformed managed snapshot, aimed at the case's real recovery points."""
    real = [s for s in case.inventory.snapshots if s.managed and TAG_SLOT in s.tags]
    base_plan = plan(case.policies, case.inventory, AT)
    # the ids the plan is about to create, and ids of points that exist: what a squatter takes
    ids = sorted(
        {a.recovery_point for a in base_plan.actions if a.type == "create"}
        | {s.tags[TAG_RECOVERY_POINT] for s in real}
    )
    kind = draw(st.sampled_from(MALFORMED_KINDS))
    policy = draw(st.sampled_from(["p0", "p1", "p2", "ghost"]))
    resource = draw(st.sampled_from(RESOURCES))
    when = AT - timedelta(minutes=draw(st.integers(-60, 3 * 1440)))
    slot = when.replace(second=0, microsecond=0)
    if real and kind == "bad copy":  # a "copy" of a real snapshot, with the same id
        # aimed at what the plan copies, when it copies anything: those must still be copied
        to_copy = {s for a in base_plan.actions if a.type == "copy" for s in a.snapshot_ids}  # type: ignore[union-attr]
        source = draw(st.sampled_from([s for s in real if s.snapshot_id in to_copy] or real))
        policy, resource, stamp = source.tags[TAG_RECOVERY_POINT].split("/")
        slot = datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    elif ids and kind in ("squatter", "other slot", "no slot"):
        policy, resource, stamp = draw(st.sampled_from(ids)).split("/")
        slot = datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    other = next(r for r in RESOURCES if r != resource)
    tags = {
        TAG_CREATED_BY: CREATED_BY_VALUE,
        TAG_POLICY: policy,
        TAG_RECOVERY_POINT: recovery_point_id(policy, resource, slot),
        TAG_SLOT: iso_utc(slot),
        TAG_INSTANCE_ID: resource,
        TAG_RESOURCE_TAGS: json.dumps(draw(resource_tags)),
    }
    region = EAST
    if kind == "no id":
        del tags[TAG_RECOVERY_POINT]
    elif kind == "unparsable":
        tags[TAG_RECOVERY_POINT] = draw(st.sampled_from(UNPARSABLE))
    elif kind == "other policy":
        tags[TAG_POLICY] = next(p for p in ("p0", "p1") if p != policy)
    elif kind == "other resource":
        tags[TAG_INSTANCE_ID] = other
    elif kind == "no instance id":
        del tags[TAG_INSTANCE_ID]
        # not of the volume its id names either, so no policy type can read it as well-formed
    elif kind == "other slot":
        tags[TAG_SLOT] = iso_utc(slot + timedelta(minutes=draw(st.sampled_from([-1440, 1, 60]))))
    elif kind == "no slot":
        tags[TAG_SLOT] = draw(st.sampled_from(["", "yesterday", slot.strftime("%Y-%m-%dT%H:%M")]))
    elif kind == "squatter":  # a real id, on another instance's volume
        tags[TAG_INSTANCE_ID] = other
    else:  # a "copy" of a real snapshot that is not of the resource its id names
        region = draw(st.sampled_from([WEST, WEST, EAST]))
        tags[TAG_SOURCE] = f"{EAST}/{source.snapshot_id if real else 'snap-none'}"
        tags[TAG_INSTANCE_ID] = other
    return Snapshot(
        snapshot_id=f"snap-bad{number:03d}",
        region=region,
        volume_id=f"vol-other-{number}",
        state=draw(snapshot_states),
        start_time=when,
        tags=tags,
        storage_tier=draw(tiers),
    )


@dataclass(frozen=True)
class MixedCase:
    case: Case
    bad: tuple[Snapshot, ...]

    @property
    def mixed(self) -> Inventory:
        inventory = self.case.inventory
        return replace(inventory, snapshots=(*inventory.snapshots, *self.bad))


@st.composite
def mixed_cases(draw: st.DrawFn) -> MixedCase:
    case = draw(cases())
    if draw(st.booleans()):  # copies are rare in cases(): make p0 copy, so bad copies have a target
        p0 = replace(case.policies.policies[0], enabled=True, copies=(CopyRule(WEST, Retention()),))
        case = Case(
            PolicySet((p0, *case.policies.policies[1:])),
            replace(case.inventory, regions=(EAST, WEST)),
        )
    count = draw(st.integers(1, 6))
    return MixedCase(case, tuple(draw(malformed(case, n)) for n in range(count)))


def planned_entries(p: Plan) -> tuple:  # type: ignore[type-arg]
    return (p.actions, p.kept, p.skipped, p.orphans)


@PROPERTY
@given(world=mixed_cases())
def test_malformed_snapshots_change_nothing_but_the_warnings(world: MixedCase) -> None:
    """Same creates, deletes, archives, copies, kept, skipped and orphans with or without them."""
    without_them = plan(world.case.policies, world.case.inventory, AT)
    with_them = plan(world.case.policies, world.mixed, AT)
    assert planned_entries(with_them) == planned_entries(without_them)


@PROPERTY
@given(world=mixed_cases())
def test_malformed_snapshots_are_never_acted_on_and_always_warned_about(world: MixedCase) -> None:
    p = plan(world.case.policies, world.mixed, AT)
    bad = {s.snapshot_id for s in world.bad}
    listed = {
        s for group in planned_entries(p) for e in group for s in getattr(e, "snapshot_ids", ())
    }
    assert not listed & bad
    warned = " ".join(w.message for w in p.warnings)
    for snapshot in world.bad:
        if snapshot.state != "recoverable":  # the Recycle Bin is deleted already
            assert snapshot.snapshot_id in warned
