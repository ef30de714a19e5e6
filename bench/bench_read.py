"""Reading and planning an account, side by side with the floor, in one run. Run by hand:

    python bench/bench_read.py                    # 10k and 100k managed snapshots
    python bench/bench_read.py --curve            # the scale curve: 1k, 10k, 100k, 300k
    python bench/bench_read.py --sizes 10000 --runs 5

The account is bench/fake_ec2.py (its own process, EC2's 1,000-item pages and server-side
tag filters, no throttling) with SmartVault's recovery points, daily at 03:00 UTC:

| managed snapshots | regions | instances per region | points per instance |
|---:|---:|---:|---:|
| 1,000 | 1 | 40 | 25 |
| 10,000 | 1 | 400 | 25 |
| 100,000 | 1 | 2,000 | 50 |
| 300,000 | 3 | 2,000 | 50 |

plus 5 % unmanaged snapshots per region (the tag filter must leave them out).

Each case runs, alternately, ``--runs`` times (best of them reported), each in a fresh
interpreter whose wall time includes starting Python and importing everything:

- **the floor**: the least any boto3 planner must do: paginate the tagged instances, the
  managed snapshots (``tag:CreatedBy`` filter) and the account's AMIs of every region,
  1,000 a page, keeping nothing;
- **SmartVault**: ``smartvault plan --format json`` (stdout to /dev/null) with a policy
  that keeps 30 days and at least 3 points, so large plans delete as well as keep.

Peak memory is the child's own peak resident set (``wait4``); API calls are counted by
the endpoint.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_ec2 import FakeEc2
from fake_ec2 import nightly_policy

ROOT = Path(__file__).resolve().parent.parent

POLICY = nightly_policy("{max_age: 30d, keep_last: 3}")

FLOOR = r"""
import sys
import boto3
regions = sys.argv[1].split(",")
session = boto3.session.Session()
for region in regions:
    ec2 = session.client("ec2", region_name=region)
    for name, kwargs in (
        ("describe_instances", {"Filters": [{"Name": "tag:backup", "Values": ["true"]}]}),
        ("describe_snapshots", {"OwnerIds": ["self"],
                                "Filters": [{"Name": "tag:CreatedBy", "Values": ["SmartVault"]}]}),
        ("describe_images", {"Owners": ["self"]}),
    ):
        for page in ec2.get_paginator(name).paginate(
            **kwargs, PaginationConfig={"PageSize": 1000}
        ):
            pass
"""

#: managed snapshots -> (regions, instances per region, points per instance)
SHAPES: dict[int, tuple[int, int, int]] = {
    1_000: (1, 40, 25),
    10_000: (1, 400, 25),
    100_000: (1, 2_000, 50),
    300_000: (3, 2_000, 50),
}
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    calls: int


def spec(size: int) -> tuple[dict[str, Any], list[str]]:
    regions, instances, points = SHAPES[size]
    names = list(REGIONS[:regions])
    per_region = {
        "instances": instances,
        "volumes_per_instance": 1,
        "points": points,
        "unmanaged": instances * points // 20,
        "amis": 0,
    }
    return {"policy": "nightly", "regions": dict.fromkeys(names, per_region)}, names


def measure(command: list[str], env: dict[str, str], ec2: FakeEc2) -> Run:
    ec2.reset_stats()
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[:4]} failed with exit code {child.returncode}")
    calls = sum(ec2.stats()["calls"].values())
    return Run(seconds, usage.ru_maxrss / 1024, calls)


def case(size: int, runs: int, policy_file: Path) -> tuple[Run, Run]:
    account, regions = spec(size)
    with FakeEc2.start(account, throttle=False) as ec2:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": ec2.url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": regions[0],
        }
        region_args = [arg for region in regions for arg in ("--region", region)]
        floor_cmd = [sys.executable, "-c", FLOOR, ",".join(regions)]
        plan_cmd = [
            sys.executable,
            "-m",
            "smartvault",
            *region_args,
            "plan",
            str(policy_file),
            "--format",
            "json",
        ]
        floors, plans = [], []
        for _ in range(runs):
            floors.append(measure(floor_cmd, env, ec2))
            plans.append(measure(plan_cmd, env, ec2))
    return min(floors, key=lambda r: r.seconds), min(plans, key=lambda r: r.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated")
    parser.add_argument("--curve", action="store_true", help="1k, 10k, 100k and 300k")
    parser.add_argument("--runs", type=int, default=3, help="runs of each (best reported)")
    args = parser.parse_args()
    sizes = sorted(SHAPES) if args.curve else [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-read-") as tmp:
        policy_file = Path(tmp) / "nightly.yaml"
        policy_file.write_text(POLICY)
        print(
            "| managed snapshots | floor | SmartVault plan --format json | vs floor "
            "| peak RSS (floor) | API calls (floor) |"
        )
        print("|---:|---:|---:|---:|---:|---:|")
        previous: tuple[int, Run] | None = None
        growth = []
        for size in sizes:
            floor, plan = case(size, args.runs, policy_file)
            print(
                f"| {size:,} | {floor.seconds:.2f} s | {plan.seconds:.2f} s "
                f"| {plan.seconds / floor.seconds:.2f}x | {plan.peak_mb:.0f} MB "
                f"({floor.peak_mb:.0f} MB) | {plan.calls} ({floor.calls}) |",
                flush=True,
            )
            if previous is not None:
                before_size, before = previous
                growth.append(
                    f"{before_size:,} -> {size:,} ({size / before_size:.0f}x): time "
                    f"{plan.seconds / before.seconds:.1f}x, "
                    f"memory {plan.peak_mb / before.peak_mb:.1f}x"
                )
            previous = (size, plan)
        for line in growth:
            print(line)


if __name__ == "__main__":
    main()
