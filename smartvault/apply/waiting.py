"""Waiting for new volumes to become ``available``, within a time limit and a run's stop.

EC2 makes a volume from a snapshot in state ``creating`` and reports ``available`` after
seconds to minutes (longer for large volumes; moto at once). Restores and restore tests
both wait here: never past ``until``, never once the run is stopping, and never for a
volume that went to ``error``, which will not recover.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from typing import Literal

from smartvault.apply.ports import Volumes
from smartvault.core.model import Volume
from smartvault.errors import Ec2CallFailed

#: The first pause between two looks, and the longest: a look is one DescribeVolumes call.
FIRST_POLL_S: Final = 2.0
LONGEST_POLL_S: Final = 15.0

WaitEnd = Literal["available", "error", "timed_out", "stopped", "unreadable"]


@dataclass(frozen=True)
class Waited:
    """How a wait ended, the volumes as last seen, and how long it took."""

    end: WaitEnd
    volumes: dict[str, Volume]
    seconds: float
    #: for ``error`` and ``unreadable``: what EC2 said
    detail: str = ""

    def not_available(self) -> list[str]:
        return sorted(v for v, volume in self.volumes.items() if volume.state != "available")


def wait_available(
    volumes: Volumes,
    region: str,
    volume_ids: Sequence[str],
    *,
    until: datetime,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    stopping: Callable[[], bool] = lambda: False,
) -> Waited:
    """Look at ``volume_ids`` until every one is ``available``, one is in ``error``,
    ``until`` has passed or ``stopping()`` says so. A volume not listed yet (EC2 lists a
    new one after a moment) counts as still ``creating``."""
    started = clock()
    pause = FIRST_POLL_S
    seen: dict[str, Volume] = {}
    while True:
        try:
            seen = {v.volume_id: v for v in volumes.volumes(region, "volume-id", volume_ids)}
        except Ec2CallFailed as exc:
            return Waited("unreadable", seen, _seconds(started, clock()), str(exc))
        elapsed = _seconds(started, clock())
        broken = sorted(v for v, volume in seen.items() if volume.state == "error")
        if broken:
            return Waited("error", seen, elapsed, f"{', '.join(broken)} went to state error")
        if all(v in seen and seen[v].state == "available" for v in volume_ids):
            return Waited("available", seen, elapsed)
        now = clock()
        if now >= until:
            return Waited("timed_out", seen, elapsed)
        if stopping():
            return Waited("stopped", seen, elapsed)
        sleep(min(pause, max((until - now).total_seconds(), 0.0)))
        pause = min(pause * 2, LONGEST_POLL_S)


def _seconds(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0)
