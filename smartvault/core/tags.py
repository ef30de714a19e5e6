"""The tag keys SmartVault writes and reads, and the limits AWS puts on tags.

Pure, and the bottom of the core: it imports nothing of SmartVault's, so the records
(:mod:`smartvault.core.model`), the planner and the AWS side all take their keys from
here. What each key means is in docs/retention.md and DESIGN §1; which tags a new
snapshot gets is the planner's (:mod:`smartvault.core.planner.creates`).

AWS limits: a key holds 128 characters, a value 256, a resource 50 tags. A JSON value
that does not fit is cut to the whole entries that fit (:func:`fit_json`), so it stays
valid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

# --- the keys ---------------------------------------------------------------

TAG_CREATED_BY = "CreatedBy"
CREATED_BY_VALUE = "SmartVault"
TAG_INSTANCE_ID = "InstanceId"
TAG_NAME = "Name"
TAG_POLICY = "smartvault:policy"
TAG_RECOVERY_POINT = "smartvault:recovery-point"
TAG_SLOT = "smartvault:slot"
TAG_RESOURCE_TAGS = "smartvault:resource-tags"
TAG_DEVICES = "smartvault:devices"
#: on a cross-region copy of an instance snapshot: its source volume's device name (a
#: copy's VolumeId is arbitrary, so ``smartvault:devices`` cannot be looked up by it)
TAG_DEVICE = "smartvault:device"
TAG_SOURCE = "smartvault:source"
#: each volume's type, IOPS, throughput and tags at creation, as compact JSON keyed by
#: device name (instances) or volume id (volumes): what a restore rebuilds once the
#: volumes are gone (:mod:`smartvault.core.model.volumes`)
TAG_VOLUMES = "smartvault:volumes"
#: on a volume SmartVault restored: the recovery point it came from
TAG_RESTORED_FROM = "smartvault:restored-from"
#: on a restore test's volume: the recovery point under test (the only volumes the
#: deployment role may delete)
TAG_VERIFY = "smartvault:verify"
#: set on a managed snapshot after a restore test turned it into an available volume:
#: the ISO time of that test (the only tag ever added to an existing snapshot)
TAG_VERIFIED = "smartvault:verified"
#: a person's hold on a recovery point (the reason), and who set it
TAG_HOLD = "smartvault:hold"
TAG_HOLD_BY = "smartvault:hold-by"
#: Keys of a source snapshot that a cross-region copy never carries (:func:`copy_tags`).
_NOT_COPIED = frozenset({TAG_DEVICE, TAG_HOLD, TAG_HOLD_BY})
#: An entry in ``smartvault:resource-tags`` when the tags did not all fit in 256
#: characters: the recorded tags are incomplete and cannot choose a retention.
RESOURCE_TAGS_CUT = "smartvault:cut"

#: The prefix of SmartVault's own keys: a user tag under it is never written.
RESERVED_PREFIX = "smartvault:"
#: SmartVault's keys outside that prefix, by which it recognises its snapshots: a policy
#: may not write them either.
RESERVED_KEYS = frozenset({TAG_CREATED_BY, TAG_INSTANCE_ID})
#: AWS reserves this prefix for itself, in any case.
AWS_PREFIX = "aws:"

# --- AWS's limits -------------------------------------------------------------

#: AWS caps a tag value at 256 characters, a key at 128 and a resource at 50 tags.
TAG_VALUE_MAX = 256
TAG_KEY_MAX = 128
TAGS_PER_RESOURCE_MAX = 50


def aws_reserved(key: str) -> bool:
    """A key under ``aws:``, which no one but AWS may write."""
    # AWS reserves the prefix in any case (AWS:, Aws:): writing one fails the whole create.
    return key.lower().startswith(AWS_PREFIX)


def smartvault_reserved(key: str) -> bool:
    """A key SmartVault writes itself to recognise its snapshots: no policy may set it."""
    return key in RESERVED_KEYS or key.startswith(RESERVED_PREFIX)


# --- the tags SmartVault's safety rests on ----------------------------------------


def owned_tags(policy: str, recovery_point: str) -> dict[str, str]:
    """The three tags by which SmartVault knows a snapshot as its own and as part of a
    recovery point: forced onto every snapshot it makes, whatever else was planned."""
    return {
        TAG_CREATED_BY: CREATED_BY_VALUE,
        TAG_POLICY: policy,
        TAG_RECOVERY_POINT: recovery_point,
    }


def create_tags(planned: Mapping[str, str], policy: str, recovery_point: str) -> dict[str, str]:
    """The tags of a new snapshot: the planner's, with :func:`owned_tags` forced."""
    return {**planned, **owned_tags(policy, recovery_point)}


def copy_tags(
    source_tags: Mapping[str, str],
    policy: str,
    recovery_point: str,
    source: str,
    device: str | None = None,
) -> dict[str, str]:
    """The tags of a cross-region copy of the snapshot ``source`` (``<region>/<id>``).

    The source's tags (never ``aws:*``, which AWS reserves), :func:`owned_tags` forced,
    plus ``smartvault:source`` and, for an instance's snapshot, ``smartvault:device`` (see
    :func:`device_of`); never a hold (``smartvault:hold``, ``smartvault:hold-by``), which
    only a person sets. SmartVault's keys, ``InstanceId`` and ``Name`` come first; the
    others (copied user tags) in key order until EC2's 50-tag limit, which a source
    already at 50 would otherwise break on every run.
    """
    own = {**owned_tags(policy, recovery_point), TAG_SOURCE: source}
    if device:
        own[TAG_DEVICE] = device
    first = [
        k for k in source_tags if k.startswith(RESERVED_PREFIX) or k in (TAG_INSTANCE_ID, TAG_NAME)
    ]
    rest = sorted(k for k in source_tags if k not in first)
    tags: dict[str, str] = {}
    for key in [*first, *rest]:
        # A device tag is only ever this copy's own: one on the source is nobody's word.
        # A hold is a person's, set on the snapshots they held: the function may never
        # write one (its role is denied the hold keys), so a copy does not inherit it.
        if aws_reserved(key) or key in own or key in _NOT_COPIED:
            continue
        if len(tags) + len(own) >= TAGS_PER_RESOURCE_MAX:
            break
        tags[key] = source_tags[key]
    tags.update(own)
    return tags


def device_of(source_tags: Mapping[str, str], volume_id: str) -> str | None:
    """The device name the source snapshot's volume had, from its ``smartvault:devices``;
    None when the snapshot has no such tag, or it does not name the volume (it was cut to
    256 characters, or written by hand)."""
    text = source_tags.get(TAG_DEVICES)
    if not text:
        return None
    try:
        devices = json.loads(text)
    except ValueError:
        return None
    device = devices.get(volume_id) if isinstance(devices, dict) else None
    return device if isinstance(device, str) and device else None


# --- JSON values ----------------------------------------------------------------


def compact_json(value: Mapping[str, object]) -> str:
    """Compact JSON with sorted keys: the same mapping always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fit_json(
    value: Mapping[str, object], cut_marker: Mapping[str, object] | None = None
) -> tuple[str, str | None]:
    """The JSON text of ``value`` and, when it had to be cut, its whole text.

    ``cut_marker`` is an entry kept in a cut value, so a reader knows it is incomplete.
    """
    full = compact_json(value)
    if len(full) <= TAG_VALUE_MAX:
        return full, None
    # Drop whole entries, never cut inside one: a reader can still parse what is left.
    fitted: dict[str, object] = dict(cut_marker or {})
    for entry_key in sorted(value):
        candidate = {**fitted, entry_key: value[entry_key]}
        if len(compact_json(candidate)) <= TAG_VALUE_MAX:
            fitted = candidate
    return compact_json(fitted), full
