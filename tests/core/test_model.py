"""The shared vocabulary: recovery-point ids, UTC times and restore-test time limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartvault.core.model import RecoveryPointId
from smartvault.core.model import format_timeout
from smartvault.core.model import is_managed
from smartvault.core.model import parse_timeout
from smartvault.core.times import parse_iso_utc
from tests.factories import utc


def test_a_recovery_point_id_is_formatted_in_utc_to_the_minute() -> None:
    slot = utc(2026, 11, 28, 3, 30)
    assert RecoveryPointId.format("prod-nightly", "i-0abc", slot) == (
        "prod-nightly/i-0abc/20261128T0330Z"
    )


def test_a_recovery_point_id_parses_back_into_its_parts() -> None:
    rp = RecoveryPointId.parse("prod-nightly/vol-0abc/20261128T0330Z")
    assert rp == RecoveryPointId("prod-nightly", "vol-0abc", utc(2026, 11, 28, 3, 30))
    assert str(rp) == "prod-nightly/vol-0abc/20261128T0330Z"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nightly/i-0abc",
        "nightly/i-0abc/20261128T0330Z/x",
        "nightly//20261128T0330Z",
        "/i-0abc/20261128T0330Z",
        "Nightly/i-0abc/20261128T0330Z",
        "nightly/i 0abc/20261128T0330Z",
        "nightly/i-0abc/2026-11-28T03:30Z",
        "nightly/i-0abc/20261128T0330",
        "nightly/i-0abc/20261131T0330Z",
        "nightly/i-0abc/20261128T2430Z",
        "nightly/i-0abc/20261128T0330Z\n",
    ],
)
def test_anything_smartvault_does_not_write_is_not_a_recovery_point_id(text: str) -> None:
    assert RecoveryPointId.parse(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T03:00:00Z", utc(2026, 11, 28, 3)),
        ("2026-11-28T04:00:00+01:00", utc(2026, 11, 28, 3)),
        ("2026-11-28T03:00:00", None),
        ("yesterday", None),
    ],
    ids=["z", "offset", "no zone", "not a time"],
)
def test_iso_times_parse_to_utc_only_with_a_zone(text: str, expected) -> None:
    assert parse_iso_utc(text) == expected


@pytest.mark.parametrize(
    ("tags", "managed"),
    [
        ({"CreatedBy": "SmartVault", "smartvault:policy": "nightly"}, True),
        ({"CreatedBy": "SmartVault"}, False),
        ({"CreatedBy": "SmartVault", "smartvault:policy": ""}, False),
        ({"CreatedBy": "smartvault", "smartvault:policy": "nightly"}, False),
        ({"smartvault:policy": "nightly"}, False),
    ],
    ids=["managed", "no-policy", "empty-policy", "other-case", "no-created-by"],
)
def test_a_snapshot_is_managed_only_with_both_of_smartvaults_tags(tags, managed):
    assert is_managed(tags) is managed


@pytest.mark.parametrize(
    ("text", "minutes", "shown"),
    [
        ("1m", 1, "1m"),
        ("30m", 30, "30m"),
        ("60m", 60, "1h"),
        ("90m", 90, "90m"),
        ("12h", 720, "12h"),
    ],
)
def test_a_restore_test_time_limit_is_minutes_or_hours(text: str, minutes: int, shown: str) -> None:
    limit = parse_timeout(text)
    assert limit == timedelta(minutes=minutes)
    assert format_timeout(limit) == shown
    assert parse_timeout(format_timeout(limit)) == limit


@pytest.mark.parametrize("text", ["0m", "30", "30s", "1d", "721m", "13h", "-5m", "1.5h", ""])
def test_a_time_limit_outside_1m_to_12h_or_in_other_units_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a time limit|is outside 1m to 12h"):
        parse_timeout(text)


def test_a_time_limit_with_seconds_is_shown_in_seconds() -> None:
    assert format_timeout(timedelta(seconds=90)) == "90s"
