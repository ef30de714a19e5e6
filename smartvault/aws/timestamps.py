"""A faster timestamp parser for botocore, for the one form AWS's APIs send.

botocore turns every timestamp of a reply into a ``datetime`` with dateutil's general
parser: about 40 µs each, which is a fifth of the time of reading 100,000 snapshots
(each ``DescribeSnapshots`` item has a ``StartTime``). EC2 sends them as
``2026-11-28T03:00:04.000Z``, always: this reads that form with one regular expression
and hands anything else (epoch numbers, offsets, RFC 822 dates) to botocore's own
parser, so every value parses to the same instant as before. The result is aware and
in UTC (botocore's is in ``tzutc()`` or, on a machine whose local zone is UTC, in
``tzlocal()``: the same instant, the same offset).

Installed on each botocore session through its documented extension point
(``response_parser_factory.set_parser_defaults``) by :mod:`smartvault.aws.session`.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from typing import Any

from botocore.utils import parse_timestamp as botocore_parse_timestamp

# EC2's form: seconds, optional fraction (1–6 digits, as a datetime holds), then Z.
_ISO_UTC = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")


def parse_timestamp(value: Any) -> datetime:
    """``value`` as an aware datetime: EC2's ISO 8601 UTC form here, anything else as
    botocore parses it."""
    if isinstance(value, str):
        m = _ISO_UTC.fullmatch(value)
        if m is not None:
            year, month, day, hour, minute, second, fraction = m.groups()
            try:
                return datetime(
                    int(year),
                    int(month),
                    int(day),
                    int(hour),
                    int(minute),
                    int(second),
                    int(fraction.ljust(6, "0")) if fraction else 0,
                    tzinfo=UTC,
                )
            except ValueError:
                pass  # not a real date (a 30 February): botocore says what is wrong
    parsed: datetime = botocore_parse_timestamp(value)
    return parsed
