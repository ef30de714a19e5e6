"""The plan's warnings: each said once, and listed in one order whatever found them first.

Pure. A warning names what it is about (policy, region, resource) when it is about one;
the plan lists them by those, then by message.
"""

from __future__ import annotations

from smartvault.core.model import PlanWarning


class Warnings:
    """Collects warnings once each; the plan lists them sorted."""

    def __init__(self) -> None:
        self._seen: set[PlanWarning] = set()

    def add(
        self,
        message: str,
        *,
        policy: str | None = None,
        resource_id: str | None = None,
        region: str | None = None,
    ) -> None:
        self._seen.add(PlanWarning(message, policy, resource_id, region))

    def sorted(self) -> tuple[PlanWarning, ...]:
        return tuple(
            sorted(
                self._seen,
                key=lambda w: (w.policy or "", w.region or "", w.resource_id or "", w.message),
            )
        )
