"""The composition root: what it does around the pure core."""

from __future__ import annotations

import gc

import pytest

from smartvault.engine import collector_paused


@pytest.mark.parametrize("enabled_before", [True, False])
def test_planning_pauses_the_garbage_collector_and_restores_it_even_on_error(
    enabled_before: bool,
) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled_before else gc.disable)()
        seen: list[bool] = []

        def plan_that_fails() -> None:
            with collector_paused():
                seen.append(gc.isenabled())
                raise RuntimeError("planning failed")

        with pytest.raises(RuntimeError):
            plan_that_fails()
        assert seen == [False]
        assert gc.isenabled() is enabled_before
    finally:
        (gc.enable if was else gc.disable)()
