"""Flag values that cannot be: durations and times are usage errors, never tracebacks."""

from __future__ import annotations

import pytest

from tests.cli import run


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "list", "--since", "100000d"),
        ("apply", "--yes", "--max-duration", "99999999999999999999d"),
    ],
    ids=["since", "max-duration"],
)
def test_an_absurd_duration_is_a_usage_error_not_a_traceback(runner, ec2, args):
    result = run(runner, *args)

    assert result.exit_code == 2
    assert "is too long; at most 3660d" in result.output


@pytest.mark.parametrize(
    "at",
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "3000-01-01T00:00:00Z",
        "1969-12-31",
    ],
    ids=["past-year-9999", "before-year-1", "year-3000", "before-1970"],
)
def test_an_at_outside_the_years_slots_can_count_is_a_usage_error(runner, policy_file, at):
    result = run(runner, "plan", "--at", at, policy_file)

    assert result.exit_code == 2
    assert "outside the years 1970 to 2999" in result.output
    assert "Traceback" not in result.output
