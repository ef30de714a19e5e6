"""The EC2 snapshot calls that applying a plan makes, typed, retried and translated.

Every method takes the region it works in and returns model records or ids; every
failure is an :class:`~smartvault.errors.Ec2CallFailed`, so ``smartvault.apply`` never
sees botocore. Two retry rules, one backoff (:class:`~smartvault.aws.retry.Backoff`):

- Calls that are safe to repeat (reads, ``DeleteSnapshot``, ``ModifySnapshotTier`` to an
  absolute tier) are retried on throttling, server errors and lost connections.
- ``CreateSnapshots``, ``CreateSnapshot`` and ``CopySnapshot`` have no idempotency token:
  they are sent again only after a throttling answer, which means nothing was done. A
  server error or a lost answer raises :class:`~smartvault.errors.Ec2OutcomeUnknown`
  instead: EC2 may have made the snapshot, and only a look by its tags can tell.

The clients given are expected to send each request once (``AwsSession.ec2_for_changes``):
botocore's own retries would resend a create whose answer was lost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Final
from typing import TypeVar

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from smartvault.aws.errors import DeadlineReached
from smartvault.aws.errors import aws_message
from smartvault.aws.errors import describe
from smartvault.aws.errors import error_code
from smartvault.aws.errors import is_server_error
from smartvault.aws.errors import is_throttling
from smartvault.aws.inventory import snapshot_from_api
from smartvault.aws.retry import Backoff
from smartvault.core.model import Snapshot
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown
from smartvault.errors import Ec2Throttled

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

T = TypeVar("T")

#: Our own bound on attempts of one call, on top of botocore's adaptive retry mode.
MAX_ATTEMPTS: Final = 5
#: How many values one DescribeSnapshots filter takes (FilterLimitExceeded beyond).
FILTER_VALUES_MAX: Final = 200
PAGE_SIZE: Final = 1000
#: EC2's limit on a snapshot description.
DESCRIPTION_MAX: Final = 255


class Ec2Snapshots:
    """Snapshot calls in any region, through ``clients(region)``, which returns that
    region's client (:meth:`AwsSession.ec2_for_changes` makes each once, thread-safely).

    ``sleep`` waits between attempts, ``rng`` draws the jitter: both injected so that tests
    never wait and a deadline can cut a wait short.
    """

    def __init__(
        self,
        clients: Callable[[str], EC2Client],
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = clients
        self._sleep = sleep
        #: full jitter up to 20 s: EC2's token buckets refill within seconds
        self._backoff = Backoff(1.0, 20.0, rng or random.Random())

    # --- reads --------------------------------------------------------------------------

    def find(self, region: str, filter_name: str, values: Sequence[str]) -> list[Snapshot]:
        """This account's snapshots in ``region`` whose ``filter_name`` is any of ``values``
        (a ``tag:…`` or ``snapshot-id`` filter: an id that does not exist is no error)."""
        ec2 = self._client(region)
        found: list[Snapshot] = []
        for start in range(0, len(values), FILTER_VALUES_MAX):
            chunk = list(values[start : start + FILTER_VALUES_MAX])

            def listing(chunk: list[str] = chunk) -> list[Snapshot]:
                pages = ec2.get_paginator("describe_snapshots").paginate(
                    OwnerIds=["self"],
                    Filters=[{"Name": filter_name, "Values": chunk}],
                    PaginationConfig={"PageSize": PAGE_SIZE},
                )
                return [
                    snapshot_from_api(raw, region)
                    for page in pages
                    for raw in page.get("Snapshots", [])
                ]

            # A listing is read again whole if a page fails: reading is safe to repeat.
            found.extend(self._repeatable("read snapshots (DescribeSnapshots)", listing))
        return found

    def by_id(self, region: str, ids: Sequence[str]) -> dict[str, Snapshot]:
        """The snapshots of ``ids`` that exist in ``region``, by id."""
        return {s.snapshot_id: s for s in self.find(region, "snapshot-id", ids)}

    # --- changes that are safe to repeat -----------------------------------------------

    def delete(self, region: str, snapshot_id: str) -> None:
        ec2 = self._client(region)
        self._repeatable(
            f"delete {snapshot_id}", lambda: ec2.delete_snapshot(SnapshotId=snapshot_id)
        )

    def archive(self, region: str, snapshot_id: str) -> None:
        """Move to the archive tier. Safe to repeat: the call names an end state, and a
        repeat of one that landed is accepted again or answered ``IncorrectState``."""
        ec2 = self._client(region)
        self._repeatable(
            f"archive {snapshot_id}",
            lambda: ec2.modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive"),
        )

    # --- changes sent at most once ------------------------------------------------------

    def create_snapshots(
        self,
        region: str,
        instance_id: str,
        *,
        exclude_boot_volume: bool,
        description: str,
        tags: Mapping[str, str],
    ) -> tuple[str, ...]:
        """One crash-consistent recovery point of an instance; the new snapshot ids."""
        ec2 = self._client(region)

        def call() -> tuple[str, ...]:
            response = ec2.create_snapshots(
                InstanceSpecification={
                    "InstanceId": instance_id,
                    "ExcludeBootVolume": exclude_boot_volume,
                },
                Description=description[:DESCRIPTION_MAX],
                TagSpecifications=_tag_specification(tags),
            )
            return tuple(s["SnapshotId"] for s in response.get("Snapshots", []))

        return self._once(f"CreateSnapshots in {region}", call)

    def create_snapshot(
        self, region: str, volume_id: str, *, description: str, tags: Mapping[str, str]
    ) -> tuple[str, ...]:
        """One snapshot of a volume; its id (as a one-element tuple, like an instance's)."""
        ec2 = self._client(region)

        def call() -> tuple[str, ...]:
            single = ec2.create_snapshot(
                VolumeId=volume_id,
                Description=description[:DESCRIPTION_MAX],
                TagSpecifications=_tag_specification(tags),
            )
            return (single["SnapshotId"],)

        # Named as the instance call is, so that both say the same when throttled.
        return self._once(f"CreateSnapshots in {region}", call)

    def copy_snapshot(
        self,
        region: str,
        source_region: str,
        source_id: str,
        *,
        description: str,
        tags: Mapping[str, str],
        kms_key_id: str | None = None,
    ) -> str:
        """Copy ``source_region/source_id`` into ``region``; the new snapshot's id."""
        ec2 = self._client(region)
        kwargs: dict[str, Any] = {
            "SourceRegion": source_region,
            "SourceSnapshotId": source_id,
            "Description": description[:DESCRIPTION_MAX],
            "TagSpecifications": _tag_specification(tags),
        }
        if kms_key_id:
            kwargs["Encrypted"] = True
            kwargs["KmsKeyId"] = kms_key_id
        return self._once(
            f"CopySnapshot in {region}", lambda: ec2.copy_snapshot(**kwargs)["SnapshotId"]
        )

    # --- the two retry rules ------------------------------------------------------------

    def _repeatable(self, what: str, call: Callable[[], T]) -> T:
        """Call, retrying throttling, server errors and lost connections."""
        for attempt in range(MAX_ATTEMPTS):
            last = attempt + 1 == MAX_ATTEMPTS
            try:
                return call()
            except ClientError as exc:
                if last or not (is_throttling(exc) or is_server_error(exc)):
                    code = error_code(exc)
                    raise Ec2CallFailed(
                        f"could not {what}: {describe(exc)}",
                        code,
                        str(exc.response.get("Error", {}).get("Message") or code),
                    ) from exc
            except DeadlineReached as exc:  # trying again could only run past the deadline
                raise Ec2CallFailed(f"could not {what}: {exc}", "DeadlineReached") from exc
            except BotoCoreError as exc:
                if last:
                    name = type(exc).__name__
                    raise Ec2CallFailed(f"could not {what}: {name}: {exc}", name) from exc
            self._sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, what: str, call: Callable[[], T]) -> T:
        """Call; send again only after throttling (refused before anything was made)."""
        throttled = ""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return call()
            except ClientError as exc:
                if is_throttling(exc):
                    throttled = describe(exc)
                elif is_server_error(exc):
                    raise Ec2OutcomeUnknown(describe(exc), error_code(exc)) from exc
                else:
                    raise Ec2CallFailed(describe(exc), error_code(exc), aws_message(exc)) from exc
            except DeadlineReached as exc:  # never sent: known not to exist
                raise Ec2CallFailed(str(exc), "DeadlineReached") from exc
            except BotoCoreError as exc:
                raise Ec2OutcomeUnknown(f"{type(exc).__name__}: {exc}") from exc
            if attempt + 1 < MAX_ATTEMPTS:
                self._sleep(self._backoff(attempt))
        raise Ec2Throttled(
            f"EC2 kept throttling {what} after {MAX_ATTEMPTS} attempts ({throttled})"
        )


def _tag_specification(tags: Mapping[str, str]) -> list[Any]:
    return [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
