"""Policies as records: selectors, schedules, retention, copies, notifications."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import Literal

Tags = Mapping[str, str]
ResourceType = Literal["instance", "volume"]


# --- durations --------------------------------------------------------------

_DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})([hdw])$")
_UNIT_SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Duration:
    """A span written as ``Nh``, ``Nd`` or ``Nw`` (``7d``); keeps its text for messages."""

    text: str
    seconds: int

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``7d``; raise ``ValueError`` with a readable reason otherwise."""
        match = _DURATION_RE.match(text.strip())
        if match is None:
            raise ValueError(
                f"{text!r} is not a duration; write a positive whole number followed by "
                "h (hours), d (days) or w (weeks), for example 7d"
            )
        count, unit = match.groups()
        return cls(text=f"{count}{unit}", seconds=int(count) * _UNIT_SECONDS[unit])


# --- policies ---------------------------------------------------------------


@dataclass(frozen=True)
class TagCondition:
    """One key of a tag filter. ``values == ()`` means the key is present with any value."""

    key: str
    values: tuple[str, ...] = ()

    def matches(self, tags: Tags) -> bool:
        value = tags.get(self.key)
        if value is None:
            return False
        return not self.values or value in self.values


@dataclass(frozen=True)
class TagFilter:
    conditions: tuple[TagCondition, ...] = ()

    def matches_all(self, tags: Tags) -> bool:
        """True when every condition matches (``selector.tags``, ``retention_by_tag.match``)."""
        return all(c.matches(tags) for c in self.conditions)

    def matches_any(self, tags: Tags) -> bool:
        """True when any condition matches (``selector.exclude_tags``)."""
        return any(c.matches(tags) for c in self.conditions)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.conditions)


@dataclass(frozen=True)
class Selector:
    tags: TagFilter
    exclude_tags: TagFilter = TagFilter()
    instance_states: tuple[str, ...] = ("running", "stopped")

    def matches(self, tags: Tags) -> bool:
        return self.tags.matches_all(tags) and not self.exclude_tags.matches_any(tags)


@dataclass(frozen=True)
class Schedule:
    """An EventBridge ``cron(...)``/``rate(...)`` expression and its IANA time zone."""

    expression: str
    timezone: str = "UTC"


@dataclass(frozen=True)
class Retention:
    """How long to keep recovery points. A point is kept if ANY rule keeps it."""

    keep_last: int = 1
    max_age: Duration | None = None
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0


#: What a policy without a ``retention`` block keeps.
DEFAULT_RETENTION = Retention(keep_last=1, max_age=Duration.parse("7d"))


@dataclass(frozen=True)
class RetentionRule:
    """One ``retention_by_tag`` entry: the first whose ``match`` fits replaces ``retention``."""

    match: TagFilter
    retention: Retention


@dataclass(frozen=True)
class SnapshotSettings:
    #: tag keys copied from the resource; ``True`` copies all (never ``aws:*``)
    copy_tags: tuple[str, ...] | bool = ()
    #: extra tags; values may use ``{policy}``, ``{resource_id}``, ``{slot}``
    tags: Tags = field(default_factory=dict)
    exclude_boot_volume: bool = False


@dataclass(frozen=True)
class CopyRule:
    region: str
    retention: Retention = DEFAULT_RETENTION
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Notify:
    sns_topic_arn: str
    on: tuple[Literal["failure", "success", "always"], ...] = ("failure",)


# --- restore-test time limits ----------------------------------------------------

_TIMEOUT_RE = re.compile(r"^([1-9][0-9]{0,3})([mh])$")
#: the bounds of ``verify.timeout``: new volumes take seconds to minutes to become
#: ``available``, so less than a minute fails healthy restores; a test still waiting
#: after 12 hours has found a problem, and its volumes are billed while it waits
TIMEOUT_MIN = timedelta(minutes=1)
TIMEOUT_MAX = timedelta(hours=12)
DEFAULT_TIMEOUT = timedelta(minutes=30)


def parse_timeout(text: str) -> timedelta:
    """``30m`` or ``2h`` as a time limit; raise ``ValueError`` with a readable reason.

    Only minutes and hours: a restore test's limit is never days, and durations
    elsewhere (``Nh``, ``Nd``, ``Nw``) have no minutes.
    """
    match = _TIMEOUT_RE.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a time limit; write a positive whole number followed by "
            "m (minutes) or h (hours), for example 30m"
        )
    count, unit = match.groups()
    limit = timedelta(minutes=int(count)) if unit == "m" else timedelta(hours=int(count))
    if not TIMEOUT_MIN <= limit <= TIMEOUT_MAX:
        low, high = format_timeout(TIMEOUT_MIN), format_timeout(TIMEOUT_MAX)
        raise ValueError(f"{text!r} is outside {low} to {high}")
    return limit


def format_timeout(limit: timedelta) -> str:
    """``30m``, ``2h``, ``90m``: a whole number of hours when it is one, else minutes."""
    minutes = int(limit.total_seconds() // 60)
    seconds = int(limit.total_seconds()) % 60
    if seconds:
        return f"{int(limit.total_seconds())}s"
    return f"{minutes // 60}h" if minutes and minutes % 60 == 0 else f"{minutes}m"


@dataclass(frozen=True)
class Verify:
    """Restore testing: how often each lineage's newest recovery point is restored, and
    how long its test volumes may take to become ``available``."""

    every: Duration
    timeout: timedelta = DEFAULT_TIMEOUT


# --- the deletion circuit breaker ---------------------------------------------------


@dataclass(frozen=True)
class Safety:
    """How much one run may delete of a policy's recovery points in one region.

    When the planned deletions of one lineage exceed ``max_delete_fraction`` of its
    completed recovery points, or a policy's deletions in a region exceed
    ``max_deletes``, none of that policy's deletions there are planned (DESIGN §2).
    Steady state never comes near it: a daily policy keeping 7 days deletes one point of
    eight a day.
    """

    #: above 0, at most 1 (1: no lineage is ever held by its share)
    max_delete_fraction: float = 0.5
    #: recovery points per policy and region; None: no cap
    max_deletes: int | None = None


DEFAULT_SAFETY = Safety()


@dataclass(frozen=True)
class Policy:
    name: str
    schedule: Schedule
    selector: Selector
    #: where it was defined, for messages and the plan's ``policies`` list
    file: str = "<memory>"
    line: int = 0
    description: str = ""
    enabled: bool = True
    resource: ResourceType = "instance"
    #: empty: every region SmartVault is working in
    regions: tuple[str, ...] = ()
    snapshot: SnapshotSettings = SnapshotSettings()
    retention: Retention = DEFAULT_RETENTION
    retention_by_tag: tuple[RetentionRule, ...] = ()
    retention_tag: str | None = None
    archive_after: Duration | None = None
    copies: tuple[CopyRule, ...] = ()
    notify: Notify | None = None
    verify: Verify | None = None
    safety: Safety = DEFAULT_SAFETY

    def applies_to_region(self, region: str) -> bool:
        return not self.regions or region in self.regions


@dataclass(frozen=True)
class PolicySet:
    """Every policy of every loaded file, names unique, in file then document order."""

    policies: tuple[Policy, ...]
    files: tuple[str, ...] = ()

    def get(self, name: str) -> Policy | None:
        for policy in self.policies:
            if policy.name == name:
                return policy
        return None
