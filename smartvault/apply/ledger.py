"""One run's ledger: what became of each action, what was not started, and why it stopped.

One :class:`RunLedger` is made per ``apply`` and shared by its steps (some of which run
on a thread pool, hence the lock). Results are kept by the action's index in the plan,
so the run result lists them in plan order whatever order they finished in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from smartvault.core.model import Action
from smartvault.core.report import ActionResult
from smartvault.core.report import RunResult


class RunLedger:
    """Results, actions not started, and the stop signal of one run."""

    def __init__(
        self,
        run_id: str,
        should_stop: Callable[[], bool] = lambda: False,
        on_result: Callable[[ActionResult], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self._should_stop = should_stop
        self._on_result = on_result
        self._results: dict[int, ActionResult] = {}
        self._not_started: dict[int, Action] = {}
        self._stop_reason = ""
        self._halted = threading.Event()
        self._lock = threading.Lock()

    def finish(self, index: int, result: ActionResult) -> None:
        with self._lock:
            self._results[index] = result
        if self._on_result is not None:
            self._on_result(result)

    def not_started(self, index: int, action: Action) -> None:
        with self._lock:
            self._not_started[index] = action

    def finished(self, index: int) -> bool:
        with self._lock:
            return index in self._results

    def stopping(self) -> bool:
        """True once the run must start nothing new: halted, or asked to stop."""
        if self._halted.is_set():
            return True
        if self._should_stop():
            with self._lock:
                if not self._stop_reason:
                    self._stop_reason = "asked to stop (time limit): the next run does the rest"
            return True
        return False

    def halt(self, reason: str) -> None:
        """Start nothing more: the audit log cannot be written."""
        with self._lock:
            if not self._halted.is_set():
                self._stop_reason = (
                    f"stopped: the audit log could not be written ({reason}); nothing more "
                    "was changed"
                )
                self._halted.set()

    def result(self, notes: tuple[str, ...] = ()) -> RunResult:
        with self._lock:
            not_started = tuple(self._not_started[i] for i in sorted(self._not_started))
            return RunResult(
                self.run_id,
                tuple(self._results[i] for i in sorted(self._results)),
                stopped_early=bool(not_started),
                not_started=not_started,
                stop_reason=self._stop_reason if not_started else "",
                notes=notes,
            )
