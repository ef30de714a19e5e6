"""How fast the planner is on large synthetic accounts. Run by hand:

    python bench/bench_planner.py            # every size
    python bench/bench_planner.py 100000     # only the sizes with that many snapshots

Time is the best of three ``plan()`` calls (time.perf_counter). Memory is what
``plan()`` itself allocates at its peak (tracemalloc, one separate call, since
tracing slows Python down), and the process's peak resident size at the end.
"""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smartvault.core.model import BlockDevice
from smartvault.core.model import CopyRule
from smartvault.core.model import Duration
from smartvault.core.model import Image
from smartvault.core.model import Instance
from smartvault.core.model import Inventory
from smartvault.core.model import Policy
from smartvault.core.model import PolicySet
from smartvault.core.model import Retention
from smartvault.core.model import RetentionRule
from smartvault.core.model import Safety
from smartvault.core.model import Schedule
from smartvault.core.model import Selector
from smartvault.core.model import Snapshot
from smartvault.core.model import TagCondition
from smartvault.core.model import TagFilter
from smartvault.core.model import recovery_point_id
from smartvault.core.planner import plan
from smartvault.core.tags import CREATED_BY_VALUE
from smartvault.core.tags import TAG_CREATED_BY
from smartvault.core.tags import TAG_INSTANCE_ID
from smartvault.core.tags import TAG_POLICY
from smartvault.core.tags import TAG_RECOVERY_POINT
from smartvault.core.tags import TAG_RESOURCE_TAGS
from smartvault.core.tags import TAG_SLOT
from smartvault.core.times import iso_utc
from smartvault.engine import collector_paused

AT = datetime(2026, 11, 28, 17, tzinfo=UTC)
EAST, WEST = "us-east-1", "us-west-2"

#: (managed snapshots, instances, volumes per instance); points per instance follow
SIZES = (
    (1_000, 100, 2),
    (10_000, 1_000, 2),
    (100_000, 2_000, 2),
    (100_000, 20_000, 1),
)


def policies() -> PolicySet:
    def match(**tags: str) -> TagFilter:
        return TagFilter(tuple(TagCondition(k, (v,)) for k, v in tags.items()))

    nightly = Policy(
        name="nightly",
        schedule=Schedule("cron(0 3 * * ? *)", "Europe/Berlin"),
        selector=Selector(tags=match(backup="true")),
        retention=Retention(
            keep_last=3, max_age=Duration.parse("7d"), daily=7, weekly=4, monthly=12
        ),
        retention_by_tag=(
            RetentionRule(
                match(tier="gold"), Retention(keep_last=3, max_age=Duration.parse("30d"))
            ),
        ),
        retention_tag="backup-retention",
        archive_after=Duration.parse("90d"),
        copies=(CopyRule(WEST, Retention(keep_last=2, max_age=Duration.parse("14d"))),),
        # The synthetic history deletes most of some lineages at once, which the breaker
        # would hold: measure the planner doing all of that work, as before it existed.
        safety=Safety(max_delete_fraction=1),
    )
    return PolicySet((nightly,))


def inventory(snapshots: int, instances: int, volumes: int) -> Inventory:
    points = snapshots // (instances * volumes)
    made: list[Snapshot] = []
    servers: list[Instance] = []
    images: list[Image] = []
    for n in range(instances):
        instance_id = f"i-{n:017x}"
        tags = {"backup": "true", "Name": f"web-{n}", "tier": "gold" if n % 5 == 0 else "std"}
        if n % 7 == 0:
            tags["backup-retention"] = "14d"
        # every tenth instance is gone: its points follow the tags recorded on them
        if n % 10 != 9:
            servers.append(
                Instance(
                    instance_id,
                    EAST,
                    "running",
                    tags,
                    f"{EAST}a",
                    "/dev/xvda",
                    tuple(
                        BlockDevice(f"/dev/xvd{chr(97 + v)}", f"vol-{n:016x}{v}")
                        for v in range(volumes)
                    ),
                )
            )
        recorded = '{"tier":"gold"}' if n % 5 == 0 else '{"tier":"std"}'
        for p in range(points):
            # daily for two weeks, then weekly: a long-lived lineage
            age = timedelta(days=p + 1) if p < 14 else timedelta(days=14 + 7 * (p - 13))
            slot = (AT - age).replace(hour=2, minute=0, second=0, microsecond=0)
            rp = recovery_point_id("nightly", instance_id, slot)
            snap_tags = {
                TAG_CREATED_BY: CREATED_BY_VALUE,
                TAG_POLICY: "nightly",
                TAG_RECOVERY_POINT: rp,
                TAG_INSTANCE_ID: instance_id,
                TAG_RESOURCE_TAGS: recorded,
                TAG_SLOT: iso_utc(slot),
            }
            for v in range(volumes):
                made.append(
                    Snapshot(
                        f"snap-{n:08x}{p:04x}{v}",
                        EAST,
                        f"vol-{n:016x}{v}",
                        "error" if (n + p) % 997 == 0 else "completed",
                        slot + timedelta(seconds=4),
                        snap_tags,
                        volume_size_gib=8,
                    )
                )
        if n % 50 == 0 and points:
            images.append(Image(f"ami-{n:017x}", EAST, (made[-1].snapshot_id,)))
    return Inventory("123456789012", (EAST, WEST), tuple(servers), (), tuple(made), tuple(images))


def measure(size: tuple[int, int, int]) -> tuple[int, float, float, int]:
    snapshots, instances, volumes = size
    inv = inventory(snapshots, instances, volumes)
    loaded = policies()
    best = float("inf")
    actions = 0
    for _ in range(3):
        start = time.perf_counter()
        with collector_paused():  # as the engine plans
            result = plan(loaded, inv, AT)
        best = min(best, time.perf_counter() - start)
        actions = len(result.actions)
    del result
    tracemalloc.start()
    plan(loaded, inv, AT)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(inv.snapshots), best, peak / 2**20, actions


def main(argv: list[str]) -> None:
    wanted = {int(a) for a in argv}
    header = ("snapshots", "instances", "vols", "actions", "best of 3", "plan peak")
    print("{:>10} {:>10} {:>5} {:>8} {:>10} {:>10}".format(*header))
    for size in SIZES:
        if wanted and size[0] not in wanted:
            continue
        count, best, peak, actions = measure(size)
        print(
            f"{count:>10,} {size[1]:>10,} {size[2]:>5} {actions:>8,} {best:>9.3f}s {peak:>8.1f}MB"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (inventories included): {rss:.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1:])
