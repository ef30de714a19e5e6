"""The two retry rules every EC2 change and read of apply goes through.

- Calls that are safe to repeat (reads, deletes, tier changes to an absolute tier, tags)
  are retried on throttling, server errors and lost connections.
- Throttling is retried for as long as :data:`THROTTLED_WAIT_MAX` of backoff allows, not a
  number of attempts: a throttled call did nothing, and EC2's buckets always refill, so a
  delete must not fail because another tool shared the account's bucket for a minute.
  In the Lambda the run's deadline ends the waiting first (the request is then not sent).
  Server errors and lost connections keep :data:`MAX_ATTEMPTS`.
- Creates have no idempotency token (``CreateSnapshots``, ``CreateSnapshot``,
  ``CopySnapshot``, ``CreateVolume`` without a token): they are sent again only after a
  throttling answer, which means nothing was done. A server error or a lost answer raises
  :class:`~smartvault.errors.Ec2OutcomeUnknown` instead: EC2 may have made the resource,
  and only a look by its tags can tell.

The clients given are expected to send each request once (``AwsSession.ec2_for_changes``):
botocore's own retries would resend a create whose answer was lost.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from collections.abc import Iterable
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
from smartvault.aws.queries import FILTER_VALUES_MAX
from smartvault.aws.retry import Backoff
from smartvault.errors import Ec2CallFailed
from smartvault.errors import Ec2OutcomeUnknown
from smartvault.errors import Ec2Throttled

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

T = TypeVar("T")

#: Our own bound on attempts of one call after server errors and lost connections.
MAX_ATTEMPTS: Final = 5
#: Seconds of backoff one call may spend being throttled before it is given up on
#: (about 25 attempts at the 20 s cap). Far inside the hour after which a later run
#: closes a delete record left ``pending`` (:mod:`smartvault.apply.pending`).
THROTTLED_WAIT_MAX: Final = 300.0


class Ec2Calls:
    """EC2 calls in any region, through ``clients(region)``, which returns that region's
    client (:meth:`AwsSession.ec2_for_changes` makes each once, thread-safely).

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

    def _filtered(
        self,
        what: str,
        pages: Callable[[list[str]], Iterable[T]],
        values: Sequence[str],
    ) -> list[T]:
        """Everything ``pages(chunk)`` lists for each chunk of 200 filter ``values`` (EC2's
        filter limit); a chunk is read again whole if a page fails (reading is safe to
        repeat)."""
        found: list[T] = []
        for start in range(0, len(values), FILTER_VALUES_MAX):
            chunk = list(values[start : start + FILTER_VALUES_MAX])

            def read(chunk: list[str] = chunk) -> list[T]:
                return list(pages(chunk))

            found.extend(self._repeatable(what, read))
        return found

    def _repeatable(self, what: str, call: Callable[[], T]) -> T:
        """Call, retrying throttling (for :data:`THROTTLED_WAIT_MAX`), server errors and
        lost connections (:data:`MAX_ATTEMPTS` in all)."""
        failures = 0  # not throttling
        waited = 0.0  # backoff after throttling
        for attempt in itertools.count():
            try:
                return call()
            except ClientError as exc:
                throttled = is_throttling(exc)
                failures += not throttled
                if (
                    failures >= MAX_ATTEMPTS
                    or (throttled and waited >= THROTTLED_WAIT_MAX)
                    or not (throttled or is_server_error(exc))
                ):
                    code = error_code(exc)
                    limit = f" (throttled through {waited:.0f} s of backoff)" if throttled else ""
                    raise Ec2CallFailed(
                        f"could not {what}: {describe(exc)}{limit}",
                        code,
                        str(exc.response.get("Error", {}).get("Message") or code),
                    ) from exc
            except DeadlineReached as exc:  # trying again could only run past the deadline
                raise Ec2CallFailed(f"could not {what}: {exc}", "DeadlineReached") from exc
            except BotoCoreError as exc:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    name = type(exc).__name__
                    raise Ec2CallFailed(f"could not {what}: {name}: {exc}", name) from exc
            wait = self._backoff(attempt)
            waited += wait
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, what: str, call: Callable[[], T]) -> T:
        """Call; send again only after throttling (refused before anything was made), for
        :data:`THROTTLED_WAIT_MAX` of backoff."""
        throttled = ""
        waited = 0.0
        attempts = 0
        for attempt in itertools.count():
            attempts += 1
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
            if waited >= THROTTLED_WAIT_MAX:
                break
            wait = self._backoff(attempt)
            waited += wait
            self._sleep(wait)
        raise Ec2Throttled(
            f"EC2 kept throttling {what} through {attempts} attempts and {waited:.0f} s "
            f"of backoff ({throttled})"
        )


def tag_specification(resource_type: str, tags: Mapping[str, str]) -> list[Any]:
    """``TagSpecifications`` for one resource type: every tag set at creation."""
    return [
        {"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    ]
