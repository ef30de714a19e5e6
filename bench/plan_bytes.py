"""Proof that a change to the planner leaves the plan's bytes as they were. Run by hand:

    python bench/plan_bytes.py               # this working tree against its fork point from main
    python bench/plan_bytes.py --base REV    # against the code of another commit

It builds one large synthetic account (bench_planner's 100,000 snapshots of 2,000
instances, plus volumes, copies, orphans, malformed, pending, archived and failed snapshots
and policies that warn), plans it at a fixed time with the code of ``REV`` and with the code
of this working tree, each in a fresh interpreter, and compares the plan JSON. It prints the
byte count and sha256 of both and exits 1 when they differ.

The account is built once, here, and handed to both runs as a pickle of its records by
class name and fields (``smartvault.core.model`` exports the same records in both trees,
while the modules that define them, how they store their fields, the builders and the
module that writes the JSON may have changed). So everything above ``main`` imports the
standard library only; the builders are imported where they are used.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import importlib
import io
import pickle
import random
import subprocess
import sys
import tarfile
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SNAPSHOTS, INSTANCES, VOLUMES_PER_INSTANCE = 100_000, 2_000, 2
#: How many of each odd case to add; a few hundred each, so every branch is taken often.
EXTRA = 300


def build() -> tuple[Any, Any, Any]:
    """(policies, inventory, at): bench_planner's account and policy, and every odd case."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    bench = importlib.import_module("bench_planner")
    model = importlib.import_module("smartvault.core.model")
    factories = importlib.import_module("tests.factories")

    at = bench.AT
    east, west = bench.EAST, bench.WEST
    rng = random.Random(20261128)
    base = bench.inventory(SNAPSHOTS, INSTANCES, VOLUMES_PER_INSTANCE)
    nightly = bench.policies().policies[0]
    policies = model.PolicySet(
        (
            nightly,
            factories.make_policy(
                "gold-too",
                selector=model.Selector(tags=factories.tag_filter(tier="gold")),
                retention_by_tag=tuple(
                    model.RetentionRule(factories.tag_filter(**{f"r{k}": "*"}), model.Retention())
                    for k in range(8)
                ),
                retention_tag="keep-for",
                copies=(model.CopyRule(east), model.CopyRule(west, kms_key_id="alias/dr")),
                snapshot=model.SnapshotSettings(
                    copy_tags=("Name", "Team", "smartvault:x", "k" * 129),
                    tags={"Team": "{resource_id}", "smartvault:y": "no"},
                ),
            ),
            factories.make_policy(
                "vols",
                resource="volume",
                schedule=model.Schedule("rate(12 hours)"),
                selector=model.Selector(tags=factories.tag_filter(backup="vol")),
                retention=model.Retention(keep_last=2, hourly=6, daily=3, yearly=1),
                snapshot=model.SnapshotSettings(
                    copy_tags=True, tags={"Owner": "ops-{policy}", "Note": "n" * 300}
                ),
            ),
            factories.make_policy("paused", enabled=False),
            factories.make_policy(
                "once",
                schedule=model.Schedule("cron(0 0 1 1 ? 2026)"),
                selector=model.Selector(tags=factories.tag_filter(tier="std")),
                snapshot=model.SnapshotSettings(copy_tags=False),
            ),
            factories.make_policy(
                "martian", schedule=model.Schedule("cron(0 4 * * ? *)", "Mars/X")
            ),
            factories.make_policy("broken", schedule=model.Schedule("cron(nope)")),
            factories.make_policy("future", schedule=model.Schedule("cron(0 0 1 1 ? 2099)")),
            factories.make_policy("elsewhere", regions=("eu-central-1",)),
            factories.make_policy("far", copies=(model.CopyRule("ap-south-1"),)),
        )
    )

    instances = list(base.instances)
    volumes: list[Any] = []
    snapshots = list(base.snapshots)
    images = list(base.images)

    def points(policy: str, resource_id: str, count: int, **kwargs: Any) -> list[Any]:
        made = []
        for p in range(count):
            slot = (at - timedelta(hours=12 * p + rng.randrange(1, 12))).replace(
                second=0, microsecond=0
            )
            made.extend(factories.make_recovery_point(policy, resource_id, slot, **kwargs))
        return made

    for n in range(EXTRA):
        # Volumes of the volume policy: tags to copy, some gone, some with hourly points.
        volume_id = f"vol-{n:017x}"
        tags = {"backup": "vol", "Name": f"data-{n}", **{f"t{k:02d}": "v" for k in range(n % 60)}}
        if n % 6 != 5:
            volumes.append(model.Volume(volume_id, east, f"{east}a", 8, tags=tags))
        snapshots.extend(points("vols", volume_id, n % 9, volume_ids=(volume_id,)))
        # Copies of "vols" in the west: it has no copy rule there.
        if n % 10 == 0:
            snapshots.extend(
                factories.make_recovery_point(
                    "vols",
                    volume_id,
                    at - timedelta(days=2),
                    volume_ids=("vol-ffffffff",),
                    region=west,
                    extra_tags={"smartvault:source": f"{east}/snap-x{n}"},
                    snapshot_prefix=f"snap-w{n:05x}",
                )
            )
        # Instances of a second policy (selected twice when gold), odd retention tags.
        instance = factories.make_instance(
            f"i-{n + 10**6:017x}",
            tags={
                "backup": "true",
                "tier": "gold",
                "keep-for": ("forever", "30d", "2w")[n % 3],
                "Team": "t",
                **{f"r{k}": "x" * 40 for k in range(n % 8)},
            },
            volumes=n % 3 if n % 50 else 14,
        )
        instances.append(instance)
        made = points(
            "gold-too",
            instance.instance_id if n % 4 else f"i-{n + 2 * 10**6:017x}",  # gone when 0
            n % 5,
            volume_ids=instance.volume_ids or ("vol-gone",),
            state=("completed", "error", "pending", "completed")[n % 4],
            extra_tags={
                "smartvault:resource-tags": ("{bad", '{"smartvault:cut":"true"}', "[]", "{}")[n % 4]
            },
        )
        if len(made) > 1:
            # One member failed while another is pending; one started earlier than the rest.
            made[0] = dataclasses.replace(made[0], state="error")
            made[-1] = dataclasses.replace(made[-1], start_time=at - timedelta(days=3))
            if n % 7 == 0:
                images.append(model.Image(f"ami-g{n:05x}", east, (made[0].snapshot_id,)))
        snapshots.extend(made)
        # Orphans, a disabled policy's points, points in the Recycle Bin.
        snapshots.extend(points("retired", f"i-{n:017x}", 1, snapshot_prefix=f"snap-o{n:05x}"))
        snapshots.extend(points("paused", f"i-{n:017x}", 2, snapshot_prefix=f"snap-p{n:05x}"))
        snapshots.extend(points("nightly", f"i-{n:017x}", 1, state="recoverable"))
        if n % 10 == 1:
            snapshots.extend(points("once", f"i-{n:017x}", 1, snapshot_prefix=f"snap-1{n:05x}"))
        # Malformed: more groups than the plan lists one by one.
        forged = dict(factories.make_recovery_point("nightly", f"i-{n:017x}", at)[0].tags)
        forged["smartvault:recovery-point"] = ("nightly/x/1", f"other/i-{n:017x}/20261128T1700Z")[
            n % 2
        ]
        if n % 3 == 0:
            forged["smartvault:policy"] = f"bad policy {n % 70}"
        snapshots.append(
            model.Snapshot(f"snap-m{n:05x}", east, f"vol-m{n % 90}", "completed", at, forged)
        )
        if n % 25 == 0:  # alone in its group; and one no longer managed at all
            snapshots.append(
                model.Snapshot(f"snap-n{n:05x}", east, f"vol-n{n}", "error", at, forged)
            )
            unmanaged = {k: v for k, v in forged.items() if k != "CreatedBy"}
            snapshots.append(
                model.Snapshot(f"snap-u{n:05x}", east, "vol-u", "completed", at, unmanaged)
            )

    # Copies in the west of the nightly points: some whole, some half made.
    by_point: dict[str, list[Any]] = {}
    for snapshot in base.snapshots:
        by_point.setdefault(snapshot.tags["smartvault:recovery-point"], []).append(snapshot)
    for k, (_, members) in enumerate(sorted(by_point.items())):
        if k % 17:
            continue
        for member in members[: 1 + k % 2]:
            snapshots.append(
                model.Snapshot(
                    f"snap-c{k:06x}{member.snapshot_id[-1]}",
                    west,
                    "vol-ffffffff",
                    ("completed", "pending", "error")[k % 3],
                    member.start_time + timedelta(minutes=5),
                    {**member.tags, "smartvault:source": f"{east}/{member.snapshot_id}"},
                    storage_tier="archive" if k % 5 == 0 else "standard",
                )
            )
    # Archived and temporarily restored members of nightly points.
    for k, snapshot in enumerate(snapshots[: SNAPSHOTS // 2 : 41]):
        tier = {"storage_tier": "archive"} if k % 2 else {"restore_expiry": at + timedelta(days=1)}
        snapshots[k * 41] = dataclasses.replace(snapshot, **tier)
    # The engine reads regions in any order; the plan must not care, so shuffle.
    rng.shuffle(snapshots)
    inventory = model.Inventory(
        base.account_id,
        (east, west),
        tuple(instances),
        tuple(volumes),
        tuple(snapshots),
        tuple(images),
    )
    return policies, inventory, at


def plan_json(root: Path, pickled: Path) -> bytes:
    """The plan JSON of the pickled account, by the code under ``root`` (run in a child)."""
    sys.path.insert(0, str(root))
    planner = importlib.import_module("smartvault.core.planner")
    try:
        writer = importlib.import_module("smartvault.formats.plan_json")
    except ImportError:
        writer = importlib.import_module("smartvault.plan_json")
    policies, inventory, at = pickle.loads(pickled.read_bytes())
    gc.disable()  # as the engine plans; the bytes do not depend on it
    text: str = writer.dumps(planner.plan(policies, inventory, at))
    return text.encode("utf-8")


def _fork_point() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _export(rev: str, into: Path) -> Path:
    """The ``smartvault`` package of commit ``rev``, written below ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "smartvault"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _rebuild(name: str, fields: dict[str, Any]) -> Any:
    """A record of ``smartvault.core.model`` from its fields, by the child's own class."""
    cls = getattr(importlib.import_module("smartvault.core.model"), name)
    return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


class _RecordPickler(pickle.Pickler):
    """Pickles the records by the name ``smartvault.core.model`` exports and their fields:
    the modules that define them, and how they store their fields (``__slots__`` or a
    ``__dict__``), may differ between the two trees; the names and fields do not."""

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        if dataclasses.is_dataclass(obj) and cls.__module__.startswith("smartvault."):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
            return _rebuild, (cls.__name__, fields)
        return NotImplemented


def _pickled(value: Any) -> bytes:
    out = io.BytesIO()
    _RecordPickler(out, pickle.HIGHEST_PROTOCOL).dump(value)
    return out.getvalue()


def _run(root: Path, pickled: Path, out: Path) -> bytes:
    command = [sys.executable, __file__, "--child", str(root), str(pickled), str(out)]
    subprocess.run(command, check=True)
    return out.read_bytes()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--base", help="commit to compare with (default: the fork point)")
    parser.add_argument(
        "--child", nargs=3, metavar=("ROOT", "PICKLE", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        root, pickled, out = (Path(a) for a in args.child)
        out.write_bytes(plan_json(root, pickled))
        return 0

    base = args.base or _fork_point()
    with tempfile.TemporaryDirectory(prefix="plan-bytes-") as tmp:
        work = Path(tmp)
        policies, inventory, at = build()
        pickled = work / "account.pickle"
        pickled.write_bytes(_pickled((policies, inventory, at)))
        print(
            f"{len(inventory.snapshots):,} snapshots, {len(inventory.instances):,} instances, "
            f"{len(inventory.volumes):,} volumes, {len(policies.policies)} policies, at {at}"
        )
        old = _run(_export(base, work / "base"), pickled, work / "base.json")
        new = _run(ROOT, pickled, work / "new.json")
    for label, data in ((f"base {base[:12]}", old), ("working tree", new)):
        print(f"{label:>20}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    if old == new:
        print("identical")
        return 0
    first = next(
        (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
        min(len(old), len(new)),
    )
    print(f"DIFFERENT from byte {first}: {old[first : first + 80]!r} / {new[first : first + 80]!r}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
