"""What a restore needs to rebuild a volume that is gone: its type, performance and tags.

A snapshot records its size, encryption and KMS key itself; EC2 keeps nothing of the
volume's type, IOPS, throughput or tags. The create step reads them just before it
makes a recovery point and writes them in ``smartvault:volumes`` (compact JSON, keyed by
device name for an instance, by volume id for a volume), so a restore can make volumes
like the originals after the originals, and the instance, are gone. Cross-region copies
carry the tag with the source's other tags, and their ``smartvault:device`` finds the
entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from smartvault.core.tags import RESOURCE_TAGS_CUT
from smartvault.core.tags import aws_reserved
from smartvault.core.tags import fit_json


@dataclass(frozen=True)
class VolumeSpec:
    """A volume's type, provisioned performance and tags, as read when it was backed up."""

    volume_type: str
    #: provisioned IOPS (io1, io2, gp3); None where the type has none to set
    iops: int | None = None
    #: provisioned throughput in MiB/s (gp3); None otherwise
    throughput: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        value: dict[str, object] = {"type": self.volume_type}
        if self.iops is not None:
            value["iops"] = self.iops
        if self.throughput is not None:
            value["throughput"] = self.throughput
        if self.tags:
            value["tags"] = dict(sorted(self.tags.items()))
        return value


def encode_volume_specs(specs: Mapping[str, VolumeSpec]) -> tuple[str, str | None]:
    """The ``smartvault:volumes`` value for ``specs`` (device name or volume id -> spec),
    and the whole text when it had to be cut to 256 characters (whole entries are left
    out, and ``smartvault:cut`` says so). ``aws:*`` tags are never recorded: no one but
    AWS may write them, so a restore could not set them again."""
    value = {
        key: VolumeSpec(
            spec.volume_type,
            spec.iops,
            spec.throughput,
            {k: v for k, v in spec.tags.items() if not aws_reserved(k)},
        ).as_json()
        for key, spec in sorted(specs.items())
    }
    return fit_json(value, {RESOURCE_TAGS_CUT: "1"})


def decode_volume_specs(text: str | None) -> dict[str, VolumeSpec]:
    """The specs a ``smartvault:volumes`` value records; entries that do not read as one
    (written by hand, or cut) are left out, never guessed."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    specs: dict[str, VolumeSpec] = {}
    for key, entry in raw.items():
        spec = _spec(entry)
        if spec is not None and key != RESOURCE_TAGS_CUT:
            specs[key] = spec
    return specs


def _spec(entry: object) -> VolumeSpec | None:
    if not isinstance(entry, dict):
        return None
    volume_type = entry.get("type")
    if not isinstance(volume_type, str) or not volume_type:
        return None
    iops = entry.get("iops")
    throughput = entry.get("throughput")
    tags = entry.get("tags", {})
    if not _whole_or_none(iops) or not _whole_or_none(throughput) or not isinstance(tags, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        return None
    return VolumeSpec(volume_type, iops, throughput, tags)


def _whole_or_none(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
