"""Validated policy mappings become the frozen records of :mod:`smartvault.core.model`.

Only data that passed the schema and the checks comes here, so every key has its
documented type and nothing can fail. Pure: no files, no messages.
"""

from __future__ import annotations

from typing import Any

from smartvault.core.model import DEFAULT_RETENTION
from smartvault.core.model import DEFAULT_SAFETY
from smartvault.core.model import DEFAULT_TIMEOUT
from smartvault.core.model import CopyRule
from smartvault.core.model import Duration
from smartvault.core.model import Notify
from smartvault.core.model import Policy
from smartvault.core.model import Retention
from smartvault.core.model import RetentionRule
from smartvault.core.model import Safety
from smartvault.core.model import Schedule
from smartvault.core.model import Selector
from smartvault.core.model import SnapshotSettings
from smartvault.core.model import TagCondition
from smartvault.core.model import TagFilter
from smartvault.core.model import Verify
from smartvault.core.model import parse_timeout


def _tag_filter(raw: dict[str, Any] | None) -> TagFilter:
    conditions = []
    for key, value in (raw or {}).items():
        values = value if isinstance(value, list) else [value]
        # "*" anywhere means "present, with any value".
        conditions.append(TagCondition(key, () if "*" in values else tuple(values)))
    return TagFilter(tuple(conditions))


def _retention(raw: dict[str, Any] | None) -> Retention:
    if raw is None:
        return DEFAULT_RETENTION
    # A retention block means exactly what it says: nothing is inherited from the default.
    max_age = raw.get("max_age")
    return Retention(
        keep_last=raw.get("keep_last", 1),
        max_age=Duration.parse(max_age) if max_age is not None else None,
        hourly=raw.get("hourly", 0),
        daily=raw.get("daily", 0),
        weekly=raw.get("weekly", 0),
        monthly=raw.get("monthly", 0),
        yearly=raw.get("yearly", 0),
    )


def _verify(raw: dict[str, Any] | None) -> Verify | None:
    if raw is None:
        return None
    timeout = raw.get("timeout")
    return Verify(
        every=Duration.parse(raw["every"]),
        timeout=DEFAULT_TIMEOUT if timeout is None else parse_timeout(timeout),
    )


def _safety(raw: dict[str, Any] | None) -> Safety:
    if raw is None:
        return DEFAULT_SAFETY
    return Safety(
        max_delete_fraction=raw.get("max_delete_fraction", DEFAULT_SAFETY.max_delete_fraction),
        max_deletes=raw.get("max_deletes"),
    )


def build_policy(raw: dict[str, Any], filename: str, line: int) -> Policy:
    """The record of one policy mapping, every documented default filled in.

    ``filename`` and ``line`` (where the policy's name is written) are kept for
    messages and plans.
    """
    selector = raw["selector"]
    schedule = raw["schedule"]
    snapshot = raw.get("snapshot", {})
    copy_tags = snapshot.get("copy_tags", ())
    archive = raw.get("archive")
    notify = raw.get("notify")
    return Policy(
        name=raw["name"],
        file=filename,
        line=line,
        description=raw.get("description", ""),
        enabled=raw.get("enabled", True),
        resource=raw.get("resource", "instance"),
        regions=tuple(raw.get("regions", ())),
        selector=Selector(
            tags=_tag_filter(selector["tags"]),
            exclude_tags=_tag_filter(selector.get("exclude_tags")),
            instance_states=tuple(selector.get("instance_states", ("running", "stopped"))),
        ),
        schedule=Schedule(schedule["expression"], schedule.get("timezone", "UTC")),
        snapshot=SnapshotSettings(
            copy_tags=True if copy_tags is True else tuple(copy_tags or ()),
            tags=dict(snapshot.get("tags", {})),
            exclude_boot_volume=snapshot.get("exclude_boot_volume", False),
        ),
        retention=_retention(raw.get("retention")),
        retention_by_tag=tuple(
            RetentionRule(_tag_filter(rule["match"]), _retention(rule["retention"]))
            for rule in raw.get("retention_by_tag", ())
        ),
        retention_tag=raw.get("retention_tag"),
        archive_after=Duration.parse(archive["after"]) if archive else None,
        copies=tuple(
            CopyRule(c["region"], _retention(c.get("retention")), c.get("kms_key_id"))
            for c in raw.get("copies", ())
        ),
        notify=Notify(notify["sns_topic_arn"], tuple(notify.get("on", ("failure",))))
        if notify
        else None,
        verify=_verify(raw.get("verify")),
        safety=_safety(raw.get("safety")),
    )
