"""aws.timestamps reads every timestamp to the same instant botocore's own parser does."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from botocore.utils import parse_timestamp as botocore_parse
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.aws.timestamps import parse_timestamp

# hypothesis takes naive bounds and adds the zone itself
moments = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001
    max_value=datetime(2999, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=500, deadline=None)
@given(moments, st.integers(min_value=0, max_value=6))
def test_ec2s_form_parses_to_botocores_instant(moment: datetime, digits: int) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    text += "Z"

    ours, theirs = parse_timestamp(text), botocore_parse(text)

    assert ours == theirs
    assert ours.utcoffset() == timedelta(0) == theirs.utcoffset()
    assert ours.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T03:00:04+02:00",  # an offset
        "2026-11-28T03:00:04.123456789Z",  # more digits than a datetime holds
        "2026-11-28 03:00:04Z",
        "Sat, 28 Nov 2026 03:00:04 GMT",  # RFC 822, as some services send
        "1764298804",  # epoch seconds as text
        1764298804,  # and as a number (JSON protocols)
        1764298804.5,
    ],
)
def test_every_other_form_is_botocores_own_parse(text: str | float) -> None:
    assert parse_timestamp(text) == botocore_parse(text)


def test_a_day_that_does_not_exist_fails_as_botocore_fails() -> None:
    with pytest.raises(ValueError, match="Invalid timestamp") as ours:
        parse_timestamp("2026-02-30T03:00:04.000Z")
    with pytest.raises(ValueError, match="Invalid timestamp") as theirs:
        botocore_parse("2026-02-30T03:00:04.000Z")

    assert str(ours.value) == str(theirs.value)


def test_a_sessions_clients_read_timestamps_with_it(aws) -> None:
    from smartvault.aws.session import AwsSession

    session = AwsSession(regions=["us-east-1"])
    ec2 = session.client("ec2", "us-east-1")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)
    ec2.create_snapshot(VolumeId=volume["VolumeId"])

    (snapshot,) = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]

    # botocore's own parser gives dateutil's tzutc() or tzlocal(); this one datetime.UTC
    assert snapshot["StartTime"].tzinfo is UTC
