"""The Lambda's deadline, and the rule that keeps every AWS request inside it.

Lambda stops a function at its deadline, wherever it is: a record left ``pending``, a
claim held, no notification. Checking the time only before each action is not enough,
because one action is several requests, each of which may hang for its timeouts and
then be retried. So, with ``M`` the margin (``SMARTVAULT_DEADLINE_MARGIN``):

- every request of the run may take at most ``B = M / 5`` seconds, and never less than
  2 s (its connect and read timeouts add up to ``B``);
- no new action starts when less than ``M`` remains;
- a request is only sent, or retried, while it can end and still leave time for what
  must follow it: an EC2 request needs ``4 B`` left (itself, the audit record of its
  result, the notification and the notification's audit record), an SNS publish
  ``2 B``, an audit write ``B``.

A request that is not sent fails at once with :class:`DeadlineReached`; nothing was
asked of AWS, so a create that was not sent is known not to exist. With the default
margin of 30 s each request has 6 s: far more than EC2 and DynamoDB take, but a
margin of 60 s or more suits an account whose snapshot pages are slow to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: Requests that must still fit after one of a service's requests, itself included.
_REQUESTS_NEEDED = {"ec2": 4, "sns": 2}
#: Share of a request's time given to connecting (the rest is for reading the answer).
_CONNECT_SHARE = 0.2


@dataclass(frozen=True)
class Deadline:
    """Seconds left before the run is stopped, and the margin that paces the end."""

    time_left: Callable[[], float]
    margin: float
    #: a request is never given less (a margin of 0 must not mean a timeout of 0)
    min_request_seconds: float = 2.0

    @property
    def request_seconds(self) -> float:
        """``B``: the longest one request (connect and read) may take."""
        return max(self.margin / 5, self.min_request_seconds)

    @property
    def connect_timeout(self) -> float:
        return self.request_seconds * _CONNECT_SHARE

    @property
    def read_timeout(self) -> float:
        return self.request_seconds - self.connect_timeout

    def needed(self, service: str) -> float:
        """Seconds that must be left to send a request to ``service``."""
        return _REQUESTS_NEEDED.get(service, 1) * self.request_seconds

    def stop_starting(self) -> bool:
        """True once no new action may start."""
        return self.time_left() < self.margin

    def bounded_sleep(self, sleep: Callable[[float], None] = time.sleep) -> Callable[[float], None]:
        """``sleep`` that never waits into the last request's time: a backoff near the
        deadline is cut short, and the request after it is then refused if it must be."""

        def wait(seconds: float) -> None:
            sleep(max(0.0, min(seconds, self.time_left() - self.request_seconds)))

        return wait
