"""Waiting for new volumes: AWS makes them ``creating`` first (moto: ``available`` at
once), so these run against the in-memory EC2, which can stay ``creating``."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from smartvault.apply.waiting import wait_available
from smartvault.core.model import Snapshot
from tests.apply.fakes import FakeEc2
from tests.factories import REGION
from tests.factories import Clock

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def _world(**fields) -> tuple[FakeEc2, Clock, list[float]]:
    clock = Clock(NOW)
    ec2 = FakeEc2(now=clock, **fields)
    ec2.add(Snapshot("snap-1", REGION, "vol-1", "completed", NOW, volume_size_gib=8))
    return ec2, clock, []


def _make(ec2: FakeEc2) -> str:
    return ec2.create_volume(
        REGION, "snap-1", zone=f"{REGION}a", volume_type="gp3", tags={}, client_token="t"
    ).volume_id


def test_it_waits_until_available_and_says_how_long() -> None:
    ec2, clock, slept = _world(creating_for=3)
    volume_id = _make(ec2)
    waited = wait_available(
        ec2,
        REGION,
        [volume_id],
        until=NOW + timedelta(minutes=30),
        clock=clock,
        sleep=_sleeper(clock, slept),
    )
    assert waited.end == "available"
    assert waited.seconds == sum(slept) > 0
    assert slept == [2.0, 4.0, 8.0]


def test_it_never_waits_past_its_limit() -> None:
    ec2, clock, slept = _world(never_available={"snap-1"})
    volume_id = _make(ec2)
    waited = wait_available(
        ec2,
        REGION,
        [volume_id],
        until=NOW + timedelta(seconds=40),
        clock=clock,
        sleep=_sleeper(clock, slept),
    )
    assert waited.end == "timed_out"
    assert waited.not_available() == [volume_id]
    assert clock() == NOW + timedelta(seconds=40)


def test_it_stops_when_the_run_stops() -> None:
    ec2, clock, slept = _world(never_available={"snap-1"})
    volume_id = _make(ec2)
    waited = wait_available(
        ec2,
        REGION,
        [volume_id],
        until=NOW + timedelta(hours=1),
        clock=clock,
        sleep=_sleeper(clock, slept),
        stopping=lambda: len(slept) >= 2,
    )
    assert waited.end == "stopped"
    assert len(slept) == 2


def _sleeper(clock: Clock, slept: list[float]):
    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)

    return sleep
