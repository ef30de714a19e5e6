"""A fake EC2 + STS endpoint, with EC2's request throttling, for benchmarks (stdlib only).

It speaks the EC2 Query protocol (form-encoded POST, XML replies) well enough for
SmartVault's Lambda handler to plan and apply against it, and it runs in its own process
so that it never shares a GIL with the code being measured::

    with FakeEc2.start(spec, scale=10) as ec2:
        os.environ["AWS_ENDPOINT_URL_EC2"] = ec2.url
        ...
        print(ec2.stats())

or from a shell (prints the URL as its first line, serves until killed)::

    python bench/fake_ec2.py --spec account.json [--scale S] [--no-throttle]

The account spec is a plain dict (JSON)::

    {"account": "123456789012", "now": "2026-12-02T12:00:00Z", "policy": "nightly",
     "regions": {"us-east-1": {"instances": 100, "volumes_per_instance": 1,
                               "points": 7, "unmanaged": 10, "amis": 0}},
     "buckets": {"mutating": [100, 5.0]}}

Each instance has ``volumes_per_instance`` gp3 volumes and tags ``backup=true`` and
``Name``; ``points`` SmartVault recovery points per instance, daily at 03:00 UTC going
back from ``now`` (one snapshot per volume, tagged as SmartVault tags them); ``unmanaged``
snapshots without ``CreatedBy``; ``amis`` AMIs, each owning the oldest snapshot of one
instance (DeleteSnapshot answers ``InvalidSnapshot.InUse``). ``buckets`` overrides the
token buckets below (``[burst, refill per second]``, before ``scale``).

The region of a request is read from its SigV4 credential scope, so one endpoint serves
every region, each with its own state and buckets. Every item's XML is rendered once
(again only when its tags change), so reads stay fast at 100,000 snapshots.

Throttling follows EC2's token buckets per region and action class; ``scale`` multiplies
every refill rate (scale 10: 50 deletions a second sustained). Past a bucket the answer
is HTTP 503 ``RequestLimitExceeded``, which botocore and SmartVault treat as throttling.
``GET /_fake/stats`` and ``POST /_fake/reset-stats`` serve :meth:`FakeEc2.stats` and
:meth:`FakeEc2.reset_stats`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from html import escape
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
DEFAULT_ACCOUNT = "123456789012"


def nightly_policy(retention: str, *, safety: str | None = None) -> str:
    """The policy file that manages a fake account's recovery points (policy ``nightly``,
    instances tagged ``backup=true``, daily at 03:00 UTC) with ``retention`` (YAML flow)."""
    extra = f"\n    safety: {safety}" if safety else ""
    return (
        "version: 1\npolicies:\n  - name: nightly\n    selector:\n"
        '      tags: {backup: "true"}\n    schedule:\n      expression: cron(0 3 * * ? *)\n'
        f"    retention: {retention}{extra}\n"
    )


#: (burst, refill per second) per action class, as EC2 documents them (see
#: /work/shared/notes/aws-and-moto-facts.md); ``scale`` multiplies the refill rates.
DEFAULT_BUCKETS: dict[str, tuple[float, float]] = {
    "describe": (100, 20.0),  # Describe* with filters or MaxResults
    "describe-unfiltered": (50, 10.0),  # DescribeInstances/Snapshots/Volumes without either
    "mutating": (100, 5.0),  # CreateSnapshot(s), DeleteSnapshot, CreateVolume
    "tags": (100, 10.0),  # CreateTags, DeleteTags
    "other-mutating": (50, 5.0),  # CopySnapshot, ModifySnapshotTier
}
_CLASS_OF = {
    "CreateSnapshot": "mutating",
    "CreateSnapshots": "mutating",
    "DeleteSnapshot": "mutating",
    "CreateVolume": "mutating",
    "CreateTags": "tags",
    "DeleteTags": "tags",
    "CopySnapshot": "other-mutating",
    "ModifySnapshotTier": "other-mutating",
}
#: (minimum, maximum) of MaxResults; above the maximum EC2 returns the maximum.
_MAX_RESULTS = {
    "DescribeInstances": (5, 1000),
    "DescribeVolumes": (5, 500),
    "DescribeSnapshots": (5, 1000),
    "DescribeImages": (1, 1000),
}
_SCOPE_RE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/")


class Ec2Error(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# --- token buckets ------------------------------------------------------------------


class Bucket:
    """EC2's token bucket: ``burst`` tokens, refilled at ``rate`` a second."""

    def __init__(self, burst: float, rate: float, clock: Callable[[], float]) -> None:
        self.burst, self.rate, self._clock = burst, rate, clock
        self.tokens = burst
        self.stamp = clock()

    def take(self) -> bool:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# --- items --------------------------------------------------------------------------


def _tags_xml(tags: Mapping[str, str]) -> str:
    items = "".join(
        f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>" for k, v in tags.items()
    )
    return f"<tagSet>{items}</tagSet>"


def _stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S.000Z}"


@dataclass
class Item:
    """One resource: its id, its tags (for filters), and its XML (rendered once)."""

    id: str
    tags: dict[str, str]
    render: Callable[[Item], str]
    fields: dict[str, Any] = field(default_factory=dict)
    _xml: str | None = None

    @property
    def xml(self) -> str:
        if self._xml is None:
            self._xml = self.render(self)
        return self._xml

    def retag(self, tags: Mapping[str, str]) -> None:
        self.tags.update(tags)
        self._xml = None


def _render_snapshot(item: Item) -> str:
    f = item.fields
    return (
        f"<item><snapshotId>{item.id}</snapshotId><volumeId>{f['volume']}</volumeId>"
        f"<status>completed</status><startTime>{_stamp(f['start'])}</startTime>"
        f"<progress>100%</progress><ownerId>{f['owner']}</ownerId>"
        f"<volumeSize>{f.get('size', 8)}</volumeSize>"
        f"<description>{escape(f.get('description', ''))}</description>"
        f"<encrypted>false</encrypted><storageTier>{f.get('tier', 'standard')}</storageTier>"
        + _tags_xml(item.tags)
        + "</item>"
    )


def _render_volume(item: Item) -> str:
    f = item.fields
    return (
        f"<item><volumeId>{item.id}</volumeId><size>8</size><snapshotId/>"
        f"<availabilityZone>{f['az']}</availabilityZone><status>in-use</status>"
        f"<createTime>{_stamp(f['created'])}</createTime><attachmentSet><item>"
        f"<volumeId>{item.id}</volumeId><instanceId>{f['instance']}</instanceId>"
        f"<device>{f['device']}</device><status>attached</status>"
        f"<attachTime>{_stamp(f['created'])}</attachTime>"
        "<deleteOnTermination>true</deleteOnTermination></item></attachmentSet>"
        "<volumeType>gp3</volumeType><iops>3000</iops><throughput>125</throughput>"
        "<encrypted>false</encrypted><multiAttachEnabled>false</multiAttachEnabled>"
        + _tags_xml(item.tags)
        + "</item>"
    )


def _render_instance(item: Item) -> str:
    f = item.fields
    devices = "".join(
        f"<item><deviceName>{device}</deviceName><ebs><volumeId>{vid}</volumeId>"
        f"<status>attached</status><attachTime>{_stamp(f['launched'])}</attachTime>"
        "<deleteOnTermination>true</deleteOnTermination></ebs></item>"
        for vid, device in f["volumes"].items()
    )
    return (
        f"<item><reservationId>r-{item.id[2:]}</reservationId><ownerId>{f['owner']}</ownerId>"
        f"<groupSet/><instancesSet><item><instanceId>{item.id}</instanceId>"
        "<imageId>ami-12345678</imageId><instanceState><code>16</code><name>running</name>"
        "</instanceState><instanceType>t3.micro</instanceType>"
        f"<launchTime>{_stamp(f['launched'])}</launchTime>"
        f"<placement><availabilityZone>{f['az']}</availabilityZone></placement>"
        "<rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName>"
        f"<blockDeviceMapping>{devices}</blockDeviceMapping>"
        + _tags_xml(item.tags)
        + "</item></instancesSet></item>"
    )


def _render_image(item: Item) -> str:
    f = item.fields
    return (
        f"<item><imageId>{item.id}</imageId><imageLocation>{f['owner']}/{item.id}</imageLocation>"
        f"<imageState>available</imageState><imageOwnerId>{f['owner']}</imageOwnerId>"
        "<isPublic>false</isPublic><architecture>x86_64</architecture>"
        f"<imageType>machine</imageType><name>{item.id}-golden</name>"
        "<rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName>"
        "<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs>"
        f"<snapshotId>{f['snapshot']}</snapshotId><volumeSize>8</volumeSize>"
        "<deleteOnTermination>true</deleteOnTermination><volumeType>gp3</volumeType>"
        "</ebs></item></blockDeviceMapping>" + _tags_xml(item.tags) + "</item>"
    )


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Region:
    """One region's resources, in id order of creation."""

    name: str
    instances: dict[str, Item] = field(default_factory=dict)
    volumes: dict[str, Item] = field(default_factory=dict)
    snapshots: dict[str, Item] = field(default_factory=dict)
    images: dict[str, Item] = field(default_factory=dict)
    #: snapshot id -> the AMI that uses it
    in_use: dict[str, str] = field(default_factory=dict)


_IDS = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{next(_IDS):017x}"


def last_slot(now: datetime) -> datetime:
    """The last 03:00 UTC at or before ``now``."""
    slot = now.astimezone(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def build_region(name: str, spec: Mapping[str, Any], account: Mapping[str, Any]) -> Region:
    """Every item of one region of the account spec."""
    owner = str(account.get("account", DEFAULT_ACCOUNT))
    policy = str(account.get("policy", "nightly"))
    now = datetime.fromisoformat(str(account.get("now") or datetime.now(UTC).isoformat()))
    region = Region(name)
    az = f"{name}a"
    launched = now - timedelta(days=400)
    per_instance = int(spec.get("volumes_per_instance", 1))
    for n in range(int(spec.get("instances", 0))):
        iid = _new_id("i")
        label = f"web-{n}"
        volumes: dict[str, str] = {}
        for v in range(per_instance):
            vid = _new_id("vol")
            device = "/dev/xvda" if v == 0 else f"/dev/sd{chr(ord('f') + v - 1)}"
            volumes[vid] = device
            region.volumes[vid] = Item(
                vid,
                {"backup": "true", "Name": label},
                _render_volume,
                {"az": az, "created": launched, "instance": iid, "device": device},
            )
        region.instances[iid] = Item(
            iid,
            {"backup": "true", "Name": label},
            _render_instance,
            {"owner": owner, "az": az, "launched": launched, "volumes": volumes},
        )
        specs = {
            device: {"iops": 3000, "tags": {"Name": label}, "throughput": 125, "type": "gp3"}
            for device in volumes.values()
        }
        for day in range(int(spec.get("points", 0))):
            slot = last_slot(now) - timedelta(days=day)
            tags = {
                "CreatedBy": "SmartVault",
                "InstanceId": iid,
                "smartvault:policy": policy,
                "smartvault:recovery-point": f"{policy}/{iid}/{slot:%Y%m%dT%H%MZ}",
                "smartvault:slot": f"{slot:%Y-%m-%dT%H:%M:%SZ}",
                "smartvault:resource-tags": "{}",
                "smartvault:devices": _compact(volumes),
                "Name": f"{label} {policy} {slot:%Y-%m-%dT%H:%MZ}",
                "smartvault:volumes": _compact(specs),
            }
            for vid in volumes:
                sid = _new_id("snap")
                region.snapshots[sid] = Item(
                    sid,
                    dict(tags),
                    _render_snapshot,
                    {"volume": vid, "start": slot + timedelta(seconds=4), "owner": owner},
                )
    for n in range(int(spec.get("unmanaged", 0))):
        sid = _new_id("snap")
        region.snapshots[sid] = Item(
            sid,
            {"Name": f"manual-{n}"},
            _render_snapshot,
            {"volume": "vol-ffffffff", "start": now - timedelta(days=30), "owner": owner},
        )
    oldest: dict[str, str] = {}  # instance id -> its oldest snapshot
    for sid, item in region.snapshots.items():
        if "InstanceId" in item.tags:
            oldest[item.tags["InstanceId"]] = sid
    for iid in list(oldest)[: int(spec.get("amis", 0))]:
        ami = _new_id("ami")
        region.images[ami] = Item(ami, {}, _render_image, {"owner": owner, "snapshot": oldest[iid]})
        region.in_use[oldest[iid]] = ami
    return region


# --- the request's parameters -------------------------------------------------------


def _numbered(form: Mapping[str, str], prefix: str) -> list[str]:
    """``Prefix.1``, ``Prefix.2``, … in order."""
    out = []
    for n in itertools.count(1):
        value = form.get(f"{prefix}.{n}")
        if value is None:
            return out
        out.append(value)
    return out  # pragma: no cover


def _filters(form: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    out = []
    for n in itertools.count(1):
        name = form.get(f"Filter.{n}.Name")
        if name is None:
            return out
        out.append((name, _numbered(form, f"Filter.{n}.Value")))
    return out  # pragma: no cover


def _pattern(value: str) -> re.Pattern[str] | str:
    """An EC2 filter value: ``*`` any characters, ``?`` one, ``\\*`` ``\\?`` ``\\\\`` themselves.
    A plain string when it has no wildcard (compared as is, quickly)."""
    if "*" not in value and "?" not in value:
        return value.replace("\\\\", "\\")
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.S)


def _matches(patterns: list[re.Pattern[str] | str], text: str | None) -> bool:
    if text is None:
        return False
    return any(p == text if isinstance(p, str) else p.fullmatch(text) for p in patterns)


def _apply_filters(
    items: Iterator[Item] | list[Item],
    filters: list[tuple[str, list[str]]],
    fields: Mapping[str, Callable[[Item], str | None]],
) -> list[Item]:
    checks: list[Callable[[Item], bool]] = []
    for name, values in filters:
        patterns = [_pattern(v) for v in values]
        if name.startswith("tag:"):
            key = name[4:]
            checks.append(lambda i, k=key, p=patterns: _matches(p, i.tags.get(k)))
        elif name == "tag-key":
            checks.append(lambda i, p=patterns: any(_matches(p, k) for k in i.tags))
        elif name in fields:
            get = fields[name]
            checks.append(lambda i, g=get, p=patterns: _matches(p, g(i)))
        else:
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
    return [i for i in items if all(check(i) for check in checks)]


def _token(offset: int, query: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{query}".encode()).decode()


def _page(action: str, form: Mapping[str, str], items: list[Item], query: str) -> tuple[str, str]:
    """(the items' XML of this page, the nextToken element or '')."""
    lowest, highest = _MAX_RESULTS[action]
    size = len(items)
    if "MaxResults" in form:
        try:
            size = int(form["MaxResults"])
        except ValueError:
            raise Ec2Error("InvalidParameterValue", "MaxResults must be a number") from None
        if size < lowest:
            raise Ec2Error(
                "InvalidParameterValue",
                f"Value ( {size} ) for parameter maxResults is invalid. "
                f"Expecting a value greater than {lowest - 1}.",
            )
        size = min(size, highest)
    start = 0
    if form.get("NextToken"):
        try:
            offset, asked = base64.urlsafe_b64decode(form["NextToken"]).decode().split(":", 1)
            start = int(offset)
        except ValueError:
            raise Ec2Error("InvalidParameterValue", "Invalid value for 'nextToken'") from None
        if asked != query:
            raise Ec2Error("InvalidParameterValue", "The token does not match the request")
    chunk = items[start : start + size] if size else items[start:]
    end = start + len(chunk)
    token = f"<nextToken>{_token(end, query)}</nextToken>" if end < len(items) else ""
    return "".join(i.xml for i in chunk), token


# --- the server ---------------------------------------------------------------------


class Account:
    """Every region's state, the buckets and the counters; thread-safe."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        *,
        scale: float = 1.0,
        throttle: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owner = str(spec.get("account", DEFAULT_ACCOUNT))
        self.spec = spec
        self.regions = {
            name: build_region(name, region_spec, spec)
            for name, region_spec in spec.get("regions", {}).items()
        }
        self.buckets_spec = {
            **DEFAULT_BUCKETS,
            **{k: (float(v[0]), float(v[1])) for k, v in spec.get("buckets", {}).items()},
        }
        self.scale = scale
        self.throttle = throttle
        self._clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}
        for region in self.regions.values():  # rendered once, before the first request
            for store in (region.instances, region.volumes, region.snapshots, region.images):
                for item in store.values():
                    _ = item.xml
        self.lock = threading.Lock()
        #: bumped by every call that is not a Describe: a cached listing is then stale
        self.changes = 0
        #: region -> (query, changes, the filtered snapshots) of its latest listing: EC2
        #: pages one listing; filtering every item again for each page would be quadratic
        self._listings: dict[str, tuple[str, int, list[Item]]] = {}
        self.reset_stats()

    def reset_stats(self) -> None:
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.delete_calls: Counter[str] = Counter()
        self.deleted: dict[str, list[str]] = {}
        #: seconds since the stats were reset, of each delete that EC2 made
        self.delete_seconds: list[float] = []
        self.created: dict[str, list[str]] = {}
        self.started = self._clock()

    def region(self, name: str) -> Region:
        if name not in self.regions:
            self.regions[name] = Region(name)
        return self.regions[name]

    def admit(self, region: str, action: str, form: Mapping[str, str]) -> bool:
        """Count the call; False when its bucket is empty (and count that)."""
        self.calls[action] += 1
        if not self.throttle or not action.startswith(
            ("Describe", "Create", "Delete", "Copy", "Modify")
        ):
            return True
        kind = _CLASS_OF.get(action, "")
        if not kind:
            filtered = "MaxResults" in form or "Filter.1.Name" in form
            unfiltered = action in ("DescribeInstances", "DescribeSnapshots", "DescribeVolumes")
            kind = "describe-unfiltered" if unfiltered and not filtered else "describe"
        bucket = self._buckets.get((region, kind))
        if bucket is None:
            burst, rate = self.buckets_spec[kind]
            bucket = self._buckets[(region, kind)] = Bucket(burst, rate * self.scale, self._clock)
        if bucket.take():
            return True
        self.throttled[action] += 1
        return False

    def stats(self) -> dict[str, Any]:
        return {
            "seconds": self._clock() - self.started,
            "scale": self.scale,
            "calls": dict(self.calls),
            "throttled": dict(self.throttled),
            "throttled_total": sum(self.throttled.values()),
            "snapshots_left": {n: len(r.snapshots) for n, r in self.regions.items()},
            "deleted": {n: sorted(ids) for n, ids in self.deleted.items()},
            "created": {n: sorted(ids) for n, ids in self.created.items()},
            "delete_seconds": self.delete_seconds,
            "delete_calls": sum(self.delete_calls.values()),
            "deleted_twice": sorted(s for s, n in self.delete_calls.items() if n > 1),
            "snapshot_ids": {n: sorted(r.snapshots) for n, r in self.regions.items()},
        }

    # --- actions ---------------------------------------------------------------------

    def handle(self, region_name: str, action: str, form: Mapping[str, str]) -> str:
        method = getattr(self, f"_do_{action}", None)
        if method is None:
            raise Ec2Error(
                "InvalidAction", f"The action {action} is not valid for this web service."
            )
        if not action.startswith("Describe"):
            self.changes += 1
        body: str = method(self.region(region_name), form)
        return (
            f'<{action}Response xmlns="{NS}"><requestId>fake</requestId>{body}</{action}Response>'
        )

    def _owner_self(self, form: Mapping[str, str], key: str) -> None:
        owners = _numbered(form, key)
        if owners and any(o not in ("self", self.owner) for o in owners):
            raise Ec2Error("InvalidParameterValue", "only this account's resources are served")

    def _do_DescribeInstances(self, region: Region, form: Mapping[str, str]) -> str:
        ids = _numbered(form, "InstanceId")
        if ids and "MaxResults" in form:
            raise Ec2Error("InvalidParameterCombination", "InstanceIds and MaxResults")
        items = (
            [region.instances[i] for i in ids if i in region.instances]
            if ids
            else list(region.instances.values())
        )
        missing = [i for i in ids if i not in region.instances]
        if missing:
            raise Ec2Error(
                "InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist"
            )
        items = _apply_filters(
            items,
            _filters(form),
            {"instance-id": lambda i: i.id, "instance-state-name": lambda i: "running"},
        )
        xml, token = _page("DescribeInstances", form, items, _query(form))
        return f"<reservationSet>{xml}</reservationSet>{token}"

    def _do_DescribeVolumes(self, region: Region, form: Mapping[str, str]) -> str:
        ids = _numbered(form, "VolumeId")
        items = (
            [region.volumes[i] for i in ids if i in region.volumes]
            if ids
            else list(region.volumes.values())
        )
        items = _apply_filters(
            items,
            _filters(form),
            {"volume-id": lambda i: i.id, "attachment.instance-id": lambda i: i.fields["instance"]},
        )
        xml, token = _page("DescribeVolumes", form, items, _query(form))
        return f"<volumeSet>{xml}</volumeSet>{token}"

    def _do_DescribeSnapshots(self, region: Region, form: Mapping[str, str]) -> str:
        self._owner_self(form, "Owner")
        ids = _numbered(form, "SnapshotId")
        if ids and "MaxResults" in form:
            raise Ec2Error(
                "InvalidParameterCombination",
                "The parameter snapshotSet cannot be used with the parameter maxResults",
            )
        missing = [i for i in ids if i not in region.snapshots]
        if missing:
            raise Ec2Error(
                "InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist."
            )
        filters = _filters(form)
        for _, values in filters:
            if len(values) > 200:
                raise Ec2Error("FilterLimitExceeded", "The maximum number of filter values is 200")
        query = _query(form)
        cached = self._listings.get(region.name)
        if form.get("NextToken") and cached is not None and cached[:2] == (query, self.changes):
            xml, token = _page("DescribeSnapshots", form, cached[2], query)
            return f"<snapshotSet>{xml}</snapshotSet>{token}"
        by_id = next((values for name, values in filters if name == "snapshot-id"), None)
        if ids:
            items = [region.snapshots[i] for i in ids]
        elif by_id is not None and not any("*" in v or "?" in v for v in by_id):
            wanted = set(by_id)
            items = [s for sid, s in region.snapshots.items() if sid in wanted]
        else:
            items = list(region.snapshots.values())
        items = _apply_filters(
            items,
            filters,
            {
                "snapshot-id": lambda i: i.id,
                "volume-id": lambda i: i.fields["volume"],
                "status": lambda i: "completed",
                "owner-id": lambda i: self.owner,
                "storage-tier": lambda i: i.fields.get("tier", "standard"),
            },
        )
        self._listings[region.name] = (query, self.changes, items)
        xml, token = _page("DescribeSnapshots", form, items, query)
        return f"<snapshotSet>{xml}</snapshotSet>{token}"

    def _do_DescribeImages(self, region: Region, form: Mapping[str, str]) -> str:
        self._owner_self(form, "Owner")
        items = _apply_filters(
            list(region.images.values()), _filters(form), {"image-id": lambda i: i.id}
        )
        xml, token = _page("DescribeImages", form, items, _query(form))
        return f"<imagesSet>{xml}</imagesSet>{token}"

    def _do_DeleteSnapshot(self, region: Region, form: Mapping[str, str]) -> str:
        sid = form.get("SnapshotId", "")
        self.delete_calls[sid] += 1
        if sid in region.in_use:
            raise Ec2Error(
                "InvalidSnapshot.InUse",
                f"The snapshot {sid} is currently in use by {region.in_use[sid]}",
            )
        if region.snapshots.pop(sid, None) is None:
            raise Ec2Error("InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.")
        self.deleted.setdefault(region.name, []).append(sid)
        self.delete_seconds.append(self._clock() - self.started)
        return "<return>true</return>"

    def _tag_specs(self, form: Mapping[str, str]) -> dict[str, str]:
        tags: dict[str, str] = {}
        for n in itertools.count(1):
            kind = form.get(f"TagSpecification.{n}.ResourceType")
            if kind is None:
                return tags
            if kind == "snapshot":
                for m in itertools.count(1):
                    key = form.get(f"TagSpecification.{n}.Tag.{m}.Key")
                    if key is None:
                        break
                    tags[key] = form.get(f"TagSpecification.{n}.Tag.{m}.Value", "")
        return tags  # pragma: no cover

    def _new_snapshot(
        self, region: Region, volume: str, description: str, tags: dict[str, str]
    ) -> Item:
        sid = _new_id("snap")
        item = Item(
            sid,
            tags,
            _render_snapshot,
            {
                "volume": volume,
                "start": datetime.now(UTC),
                "owner": self.owner,
                "description": description,
            },
        )
        region.snapshots[sid] = item
        self.created.setdefault(region.name, []).append(sid)
        return item

    def _do_CreateSnapshots(self, region: Region, form: Mapping[str, str]) -> str:
        iid = form.get("InstanceSpecification.InstanceId", "")
        instance = region.instances.get(iid)
        if instance is None:
            raise Ec2Error("InvalidInstanceID.NotFound", f"The instance ID '{iid}' does not exist")
        exclude_boot = form.get("InstanceSpecification.ExcludeBootVolume") == "true"
        tags = self._tag_specs(form)
        made = [
            self._new_snapshot(region, vid, form.get("Description", ""), dict(tags))
            for vid, device in instance.fields["volumes"].items()
            if not (exclude_boot and device == "/dev/xvda")
        ]
        items = "".join(
            f"<item><snapshotId>{s.id}</snapshotId><volumeId>{s.fields['volume']}</volumeId>"
            f"<state>completed</state><startTime>{_stamp(s.fields['start'])}</startTime>"
            f"<progress>100%</progress><ownerId>{self.owner}</ownerId><volumeSize>8</volumeSize>"
            f"<description>{escape(s.fields['description'])}</description>"
            f"<encrypted>false</encrypted>{_tags_xml(s.tags)}</item>"
            for s in made
        )
        return f"<snapshotSet>{items}</snapshotSet>"

    def _do_CreateSnapshot(self, region: Region, form: Mapping[str, str]) -> str:
        vid = form.get("VolumeId", "")
        if vid not in region.volumes:
            raise Ec2Error("InvalidVolume.NotFound", f"The volume '{vid}' does not exist.")
        s = self._new_snapshot(region, vid, form.get("Description", ""), self._tag_specs(form))
        return (
            f"<snapshotId>{s.id}</snapshotId><volumeId>{vid}</volumeId><status>completed</status>"
            f"<startTime>{_stamp(s.fields['start'])}</startTime><progress>100%</progress>"
            f"<ownerId>{self.owner}</ownerId><volumeSize>8</volumeSize>"
            f"<description>{escape(s.fields['description'])}</description>"
            f"<encrypted>false</encrypted>{_tags_xml(s.tags)}"
        )

    def _do_CreateTags(self, region: Region, form: Mapping[str, str]) -> str:
        tags = {}
        for n in itertools.count(1):
            key = form.get(f"Tag.{n}.Key")
            if key is None:
                break
            tags[key] = form.get(f"Tag.{n}.Value", "")
        for rid in _numbered(form, "ResourceId"):
            for store in (region.snapshots, region.volumes, region.instances, region.images):
                if rid in store:
                    store[rid].retag(tags)
                    break
            else:
                raise Ec2Error("InvalidID", f"The ID '{rid}' is not valid")
        return "<return>true</return>"

    def _do_ModifySnapshotTier(self, region: Region, form: Mapping[str, str]) -> str:
        sid = form.get("SnapshotId", "")
        item = region.snapshots.get(sid)
        if item is None:
            raise Ec2Error("InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.")
        item.fields["tier"] = form.get("StorageTier", "archive")
        item.retag({})
        return (
            f"<snapshotId>{sid}</snapshotId>"
            f"<tieringStartTime>{_stamp(datetime.now(UTC))}</tieringStartTime>"
        )


def _query(form: Mapping[str, str]) -> str:
    """What makes a request the same listing (the token must come back to it)."""
    keys = sorted(k for k in form if k not in ("NextToken", "MaxResults", "Version"))
    return str(abs(hash(tuple((k, form[k]) for k in keys))))


def _error_xml(code: str, message: str) -> str:
    return (
        f"<Response><Errors><Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        "</Error></Errors><RequestID>fake</RequestID></Response>"
    )


def _sts_identity(owner: str) -> str:
    return (
        f'<GetCallerIdentityResponse xmlns="{STS_NS}">'
        f"<GetCallerIdentityResult><Arn>arn:aws:iam::{owner}:user/bench</Arn>"
        f"<UserId>BENCH</UserId><Account>{owner}</Account></GetCallerIdentityResult>"
        "<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    )


def make_server(account: Account, port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 answering for ``account`` (not yet serving)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections

        def _send(self, status: int, body: str, kind: str = "text/xml") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/_fake/stats":
                with account.lock:
                    body = json.dumps(account.stats())
                self._send(200, body, "application/json")
            else:
                self._send(404, _error_xml("NotFound", self.path))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length).decode()
            if self.path == "/_fake/reset-stats":
                with account.lock:
                    account.reset_stats()
                self._send(200, "{}", "application/json")
                return
            form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            action = form.get("Action", "")
            scope = _SCOPE_RE.search(self.headers.get("Authorization", ""))
            region, service = (scope.group(1), scope.group(2)) if scope else ("us-east-1", "ec2")
            if service == "sts" or action == "GetCallerIdentity":
                if action != "GetCallerIdentity":
                    self._send(400, _error_xml("InvalidAction", action))
                else:
                    with account.lock:
                        account.calls[action] += 1  # a call like any other: counted
                    self._send(200, _sts_identity(account.owner))
                return
            with account.lock:
                if not account.admit(region, action, form):
                    status, body = (
                        503,
                        _error_xml("RequestLimitExceeded", "Request limit exceeded."),
                    )
                else:
                    try:
                        status, body = 200, account.handle(region, action, form)
                    except Ec2Error as exc:
                        status, body = exc.status, _error_xml(exc.code, exc.message)
            self._send(status, body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


# --- the handle a bench script holds --------------------------------------------------


class FakeEc2:
    """A running fake endpoint in a child process: ``url``, ``stats()``, ``reset_stats()``."""

    def __init__(self, process: subprocess.Popen[str], url: str, spec_file: str) -> None:
        self._process = process
        self.url = url
        self._spec_file = spec_file

    @classmethod
    def start(
        cls, spec: Mapping[str, Any], *, scale: float = 1.0, throttle: bool = True
    ) -> FakeEc2:
        """Start the endpoint (generating every item) and wait until it serves."""
        handle, path = tempfile.mkstemp(prefix="fake-ec2-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(spec, out)
        command = [sys.executable, os.path.abspath(__file__), "--spec", path, "--scale", str(scale)]
        if not throttle:
            command.append("--no-throttle")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            process.kill()
            os.unlink(path)
            raise RuntimeError(f"fake_ec2 did not start (it printed {url!r})")
        return cls(process, url, path)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_fake/stats", timeout=30) as reply:
            result: dict[str, Any] = json.load(reply)
        return result

    def reset_stats(self) -> None:
        request = urllib.request.Request(f"{self.url}/_fake/reset-stats", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        if os.path.exists(self._spec_file):
            os.unlink(self._spec_file)

    def __enter__(self) -> FakeEc2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake EC2 + STS endpoint with throttling")
    parser.add_argument("--spec", required=True, help="the account spec (JSON file)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every refill rate")
    parser.add_argument("--no-throttle", action="store_true", help="never refuse a call")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.spec) as source:
        spec = json.load(source)
    account = Account(spec, scale=args.scale, throttle=not args.no_throttle)
    server = make_server(account, args.port)
    host, port = server.server_address[:2]
    print(f"http://{host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
