"""One JSON object per line: what the Lambda writes, and what CloudWatch Logs Insights reads."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TextIO

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class JsonLog:
    """Writes ``{"time", "level", "message", ...fields}`` lines at or above ``level``."""

    def __init__(
        self,
        level: str = "INFO",
        *,
        stream: TextIO | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        **context: Any,
    ) -> None:
        self._threshold = LEVELS.get(level.upper(), LEVELS["INFO"])
        self._stream = stream
        self._clock = clock
        self.context = dict(context)

    def __call__(self, level: str, message: str, **fields: Any) -> None:
        if LEVELS.get(level, 20) < self._threshold:
            return
        line = {
            "time": self._clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": level,
            "message": message,
            **self.context,
            **fields,
        }
        self._write(line)

    def metrics(self, document: Mapping[str, Any]) -> None:
        """One CloudWatch Embedded Metric Format document (:mod:`smartvault.core.metrics`)
        as a log line, whatever the level: CloudWatch Logs extracts its metrics, and the
        line keeps ``time``, ``level``, ``message`` and the context, for Logs Insights."""
        self._write(
            {
                "time": self._clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "level": "INFO",
                "message": "metrics",
                **self.context,
                **document,
            }
        )

    def _write(self, line: Mapping[str, Any]) -> None:
        stream = self._stream or sys.stdout
        stream.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
        stream.flush()
