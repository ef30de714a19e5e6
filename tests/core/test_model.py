"""The shared vocabulary: recovery-point ids and UTC times."""

from __future__ import annotations

import pytest

from smartvault.core.model import RecoveryPointId
from smartvault.core.model import is_managed
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
