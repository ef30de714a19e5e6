"""The one home of how SmartVault writes and reads a time: always UTC, always with a zone.

- :func:`iso_utc`: to the second, ``2026-11-28T03:00:00Z``; tags, messages, plans for people.
- :func:`format_time` / :func:`parse_time`: the plan JSON's form, exact to the microsecond.
- :func:`format_timestamp` / :func:`parse_timestamp`: the audit log's fixed-width form,
  which sorts as text.
- :func:`parse_iso_utc`: any ISO 8601 time with a zone (a tag someone may have written).
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime


def iso_utc(moment: datetime) -> str:
    """``2026-11-28T03:00:00Z``: how SmartVault writes a time in tags and plans."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text: str) -> datetime | None:
    """An ISO 8601 time with a zone (``Z`` or an offset), as an aware UTC time; else None.

    A time without a zone is refused: which instant it names is a guess.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``: ``2026-11-28T17:00:02Z``.

    Sub-second digits appear only when non-zero: three for whole milliseconds (what
    EC2 reports for ``StartTime``), six otherwise, so every aware datetime
    survives a round trip exactly. A naive datetime is a bug and raises ``ValueError``.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r} in a plan: plans hold aware UTC times")
    utc = value.astimezone(UTC).replace(tzinfo=None)
    if utc.microsecond == 0:
        timespec = "seconds"
    elif utc.microsecond % 1000 == 0:
        timespec = "milliseconds"
    else:
        timespec = "microseconds"
    return utc.isoformat(timespec=timespec) + "Z"


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`: an aware UTC datetime."""
    problem = f"{text!r} is not a UTC time like 2026-11-28T17:00:02Z"
    if not text.endswith("Z"):
        raise ValueError(problem)
    try:
        parsed = datetime.fromisoformat(text[:-1])
    except ValueError:
        raise ValueError(problem) from None
    if parsed.tzinfo is not None:
        raise ValueError(problem)
    return parsed.replace(tzinfo=UTC)


def format_timestamp(timestamp: datetime) -> str:
    """ISO 8601 UTC with microseconds and ``Z``: fixed width, so it sorts as text."""
    return as_utc(timestamp).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is a bug and raises ``ValueError``."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: SmartVault only uses aware UTC times")
    return moment.astimezone(UTC)
