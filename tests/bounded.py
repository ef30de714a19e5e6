"""Run a call that a regression could turn into a hang or a memory blow-up, safely.

The call runs in a thread, under a cap on the process's address space. If it is still
running after ``seconds``, each FIFO in ``fifos`` is opened for writing and closed,
which ends any read blocked on it, and the test fails; a call that allocates without
end gets a MemoryError instead of the machine's memory.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: Room for the call on top of what the process already maps.
HEADROOM = 1024**3


def _mapped_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def _memory_capped() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _mapped_bytes() + HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _unblock(fifo: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):  # nobody is reading it: nothing is blocked on it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def bounded(
    call: Callable[[], T], *, seconds: float = 10.0, fifos: Sequence[str | os.PathLike[str]] = ()
) -> T:
    """``call()``, or an AssertionError if it takes longer than ``seconds``."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the test's thread
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    with _memory_capped():
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            for fifo in fifos:
                _unblock(fifo)
            thread.join(seconds)
            raise AssertionError(f"still running after {seconds} s: it blocked or looped")
    if failure:
        raise failure[0]
    return outcome[0]
