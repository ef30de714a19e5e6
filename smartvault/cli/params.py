"""Turning flag text into values: regions, table names, endpoints, times and durations.

Each callback raises :class:`click.BadParameter`, so a malformed flag is a usage error
(exit 2) that names the flag, before anything else is done.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import click

from smartvault.settings import endpoint_url_problem
from smartvault.settings import table_name_problem

#: ``PATHS``: the policy files or directories a command reads (default: ./policies).
policy_paths = click.argument("paths", nargs=-1, type=click.Path())

#: ``--allow-deletes POLICY``: a person's second key for deletions ``safety`` holds.
allow_deletes_option = click.option(
    "--allow-deletes",
    "allow_deletes",
    multiple=True,
    metavar="POLICY",
    help="Lift the deletion circuit breaker (the policy's safety rules) of POLICY for this "
    "run only: its deletions are planned however many they are, and their audit records "
    "say so. Repeat for several policies. Review the plan first.",
)

_SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Ten years: far beyond the audit records' lifetime (400 days), and one Query per day.
_MAX_SPAN_DAYS = 3660
_MAX_SPAN_SECONDS = _MAX_SPAN_DAYS * 86400

#: ``--at`` lies in these years: EBS snapshots did not exist before, and a look further
#: ahead than this is a typo (and would leave the range slot arithmetic can represent).
_AT_YEARS = range(1970, 3000)


def split_regions(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """``--region a --region b`` or ``--region a,b``; spaces around names are dropped."""
    names = [name.strip() for item in value for name in item.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


def check_table_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = table_name_problem(value)
    if problem:
        raise click.BadParameter(f"{value!r} is not a DynamoDB table name: {problem}")
    return value


def check_endpoint_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    problem = endpoint_url_problem(value) if value else None
    if problem:
        raise click.BadParameter(f"{value!r} is not an endpoint URL: {problem}")
    return value


def parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """ISO 8601; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time; write e.g. 2026-11-30T03:00:00Z"
        ) from None
    except OverflowError:  # the zone moves it past year 1 or 9999
        moment = datetime.min.replace(tzinfo=UTC)
    if moment.year not in _AT_YEARS:
        raise click.BadParameter(
            f"{value!r} lies outside the years {_AT_YEARS.start} to {_AT_YEARS.stop - 1}; "
            "write a time in them, e.g. 2026-11-30T03:00:00Z"
        )
    return moment


class Span(timedelta):
    """A duration that remembers how it was written (``30m``), to be shown the same way."""

    as_written: str

    def __new__(cls, seconds: int, as_written: str) -> Span:
        span = super().__new__(cls, seconds=seconds)
        span.as_written = as_written
        return span


def parse_span(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """``90s``, ``45m``, ``2h``, ``7d``, ``1w``."""
    if value is None:
        return None
    text = value.strip()
    count, unit = text[:-1], text[-1:]
    if not (count.isdigit() and int(count) > 0 and unit in _SPAN_UNITS):
        raise click.BadParameter(f"{value!r} is not a duration; write e.g. 45m, 2h or 7d")
    seconds = int(count) * _SPAN_UNITS[unit]
    if seconds > _MAX_SPAN_SECONDS:
        raise click.BadParameter(f"{value!r} is too long; at most {_MAX_SPAN_DAYS}d")
    return Span(seconds, f"{int(count)}{unit}")


def span_text(span: timedelta | None) -> str:
    """A duration as ``parse_span`` reads it: as it was written, else in its largest whole
    unit (``1m``, ``2h``)."""
    if isinstance(span, Span):
        return span.as_written
    seconds = int(span.total_seconds()) if span else 0
    for unit, size in sorted(_SPAN_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
