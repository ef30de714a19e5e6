"""What the CLI prints, and how: lines that outlive a closed pipe, colour, progress.

Every command prints through :func:`echo`, so ``smartvault apply --yes | head`` never
stops a backup run half-way.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from collections.abc import Iterator

import click

from smartvault.core.report import ActionResult

_CLOSED_STREAMS: set[object] = set()


def echo(message: str = "", *, nl: bool = True, err: bool = False) -> None:
    """``click.echo`` that outlives a reader who went away (``apply --yes | head``).

    A closed pipe must not stop a backup run half-way: once it is gone, what would
    have been printed there is dropped and the work goes on (errors still reach the
    other stream, and the audit log has every action).
    """
    stream = sys.stderr if err else sys.stdout
    if stream in _CLOSED_STREAMS:
        return
    try:
        click.echo(message, nl=nl, err=err)
    except BrokenPipeError:
        _CLOSED_STREAMS.add(stream)
        # Point the descriptor at /dev/null so that the interpreter's own flush at exit
        # does not fail again (and print "Exception ignored ...") either.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no real descriptor (e.g. under a test runner)
            pass


@contextlib.contextmanager
def echo_pieces(size: int = 1 << 16) -> Iterator[Callable[[str], None]]:
    """A writer for text made piece by piece (a large JSON plan): :func:`echo` in chunks
    of about ``size`` characters, so the whole text is never held at once."""
    pending: list[str] = []
    held = 0

    def out(piece: str) -> None:
        nonlocal held
        pending.append(piece)
        held += len(piece)
        if held >= size:
            echo("".join(pending), nl=False)
            pending.clear()
            held = 0

    yield out
    echo("".join(pending), nl=False)


def use_color() -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class Progress:
    """Counts on one line on a terminal; one plain line per action otherwise."""

    def __init__(self, tty: bool, total: int = 0) -> None:
        self._tty = tty
        self._total = total
        self._done = 0
        self._counts: dict[str, int] = {}

    def __call__(self, result: ActionResult) -> None:
        key = "failed" if result.needs_attention else f"{result.action.type}:{result.outcome}"
        self._counts[key] = self._counts.get(key, 0) + 1
        self._done += 1
        if self._tty:
            created = self._counts.get("create:succeeded", 0)
            deleted = self._counts.get("delete:succeeded", 0)
            failed = self._counts.get("failed", 0)
            skipped = sum(n for k, n in self._counts.items() if k.endswith(":skipped"))
            echo(
                f"\r{self._done}/{self._total} done: created {created}, deleted {deleted}, "
                f"skipped {skipped}, failed {failed}",
                nl=False,
            )
        else:
            action = result.action
            detail = result.error or result.reason
            echo(
                f"{result.outcome}: {action.type} {action.region} {action.recovery_point}"
                + (f" ({detail})" if detail else "")
            )

    def close(self) -> None:
        if self._tty and self._counts:
            echo()
