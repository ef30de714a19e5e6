"""The EC2 calls of ``smartvault hold`` and ``release``: find a recovery point's snapshots,
and set or remove the two hold tags on them.

A person's calls, never the function's: the deployment role is denied both tag keys
(:mod:`smartvault.deploy.iam`). Only snapshots that are managed and really part of the
named point (:func:`~smartvault.core.model.read_recovery_point` agrees) are ever tagged,
so a hold can never reach someone else's snapshot. CreateTags and DeleteTags name an end
state, so they are retried like deletes (:mod:`smartvault.aws.calls`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from smartvault.aws.ec2 import Ec2Snapshots
from smartvault.core.model import ResourceType
from smartvault.core.model import Snapshot
from smartvault.core.model import is_managed
from smartvault.core.model import read_recovery_point
from smartvault.core.tags import TAG_HOLD
from smartvault.core.tags import TAG_HOLD_BY
from smartvault.core.tags import TAG_RECOVERY_POINT

#: EC2 takes at most this many resources in one CreateTags or DeleteTags call.
TAG_RESOURCES_MAX: Final = 1000


class Ec2Holds(Ec2Snapshots):
    """Hold calls in any region (see :class:`~smartvault.aws.calls.Ec2Calls`)."""

    def point_snapshots(
        self, region: str, recovery_point: str, resource_type: ResourceType | None
    ) -> list[Snapshot]:
        """The snapshots of ``recovery_point`` in ``region`` (originals and copies), by id:
        one DescribeSnapshots filtered by its ``smartvault:recovery-point`` tag (owner self),
        then only the managed ones that are part of it. ``resource_type`` is its policy's,
        None when the policy is not loaded."""
        found = self.find(region, f"tag:{TAG_RECOVERY_POINT}", [recovery_point])
        return sorted(
            (
                s
                for s in found
                if is_managed(s.tags)
                and s.tags.get(TAG_RECOVERY_POINT) == recovery_point
                and not isinstance(read_recovery_point(s, resource_type), str)
            ),
            key=_snapshot_id,
        )

    def hold(self, region: str, snapshot_ids: Sequence[str], reason: str, by: str) -> None:
        """CreateTags ``smartvault:hold=reason`` and ``smartvault:hold-by=by`` on the
        snapshots (a second hold replaces both values)."""
        ec2 = self._client(region)
        for chunk in _chunks(snapshot_ids):

            def call(chunk: list[str] = chunk) -> None:
                ec2.create_tags(
                    Resources=chunk,
                    Tags=[{"Key": TAG_HOLD, "Value": reason}, {"Key": TAG_HOLD_BY, "Value": by}],
                )

            self._repeatable(f"hold {', '.join(chunk)} in {region} (CreateTags)", call)

    def release(self, region: str, snapshot_ids: Sequence[str]) -> None:
        """DeleteTags of both hold keys, whatever their values, on the snapshots."""
        ec2 = self._client(region)
        for chunk in _chunks(snapshot_ids):

            def call(chunk: list[str] = chunk) -> None:
                ec2.delete_tags(Resources=chunk, Tags=[{"Key": TAG_HOLD}, {"Key": TAG_HOLD_BY}])

            self._repeatable(f"release {', '.join(chunk)} in {region} (DeleteTags)", call)


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + TAG_RESOURCES_MAX]) for i in range(0, len(ids), TAG_RESOURCES_MAX)]


def _snapshot_id(snapshot: Snapshot) -> str:
    return snapshot.snapshot_id
