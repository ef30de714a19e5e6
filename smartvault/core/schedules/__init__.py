"""EventBridge schedule expressions: ``cron(...)`` and ``rate(...)``, and when they fire.

Pure: standard library only, no clock reads. :func:`parse` turns an expression and an
IANA time zone into a :class:`Trigger` that answers three questions about any aware
instant: the latest firing at or before it (:meth:`~Trigger.slot`), the earliest firing
after it (:meth:`~Trigger.next_after`) and the latest firing strictly before it
(:meth:`~Trigger.previous`). Every answer is an aware UTC datetime.

The syntax is EventBridge's (six cron fields, ``?``, 1=SUN). Cron fields are read on the
wall clock of the time zone; when daylight saving time skips a wall time, a firing at that
time is skipped, and a wall time that happens twice fires once, at its first occurrence
(what EventBridge Scheduler documents). ``rate()`` fires at multiples of its interval since
the Unix epoch in UTC, whatever the time zone, so that every run agrees on the slots.
docs/schedules.md says all of this for operators.
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC
from datetime import tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError
from zoneinfo import available_timezones

from smartvault.core.schedules.base import UTC_KEYS
from smartvault.core.schedules.base import ScheduleError
from smartvault.core.schedules.base import Trigger
from smartvault.core.schedules.cron import CronTrigger
from smartvault.core.schedules.cron import cron_spec
from smartvault.core.schedules.cron import cron_trigger
from smartvault.core.schedules.rate import RateTrigger
from smartvault.core.schedules.rate import parse_rate

__all__ = ["CronTrigger", "RateTrigger", "ScheduleError", "Trigger", "parse"]


# --- parse -------------------------------------------------------------------------


def _zone(timezone: str) -> tzinfo:
    if timezone in UTC_KEYS:
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = sorted(available_timezones() | UTC_KEYS)
    close = [key for key in known if key.lower() == timezone.lower()] or difflib.get_close_matches(
        timezone, known, n=1, cutoff=0.8
    )
    hint = f"did you mean {close[0]}?" if close else "use an IANA name such as Europe/Berlin or UTC"
    raise ScheduleError(f"unknown time zone {timezone!r}; {hint}", field="timezone")


_FORM = re.compile(r"(cron|rate|at)\((.*)\)", re.DOTALL)
_LOOSE_FORM = re.compile(r"([A-Za-z]+)\s*\(", re.DOTALL)


def parse(expression: str, timezone: str = "UTC") -> Trigger:
    """Parse an EventBridge ``cron(...)`` or ``rate(...)`` expression for ``timezone``.

    Raises :class:`ScheduleError` with ``field="timezone"`` for an unknown IANA zone and
    ``field="expression"`` for anything wrong with the expression, including a cron that
    never fires. Results are cached: a trigger is immutable.
    """
    if not isinstance(expression, str):
        raise ScheduleError(f"the schedule expression must be text, got {expression!r}")
    if not isinstance(timezone, str):
        raise ScheduleError(f"the time zone must be text, got {timezone!r}", field="timezone")
    return _parse(expression.strip(), timezone.strip())


@lru_cache(maxsize=512)
def _parse(expression: str, timezone: str) -> Trigger:
    match = _FORM.fullmatch(expression)
    if match is None:
        _explain_form(expression)
    assert match is not None  # _explain_form always raises
    kind, body = match.groups()
    if "(" in body or ")" in body:
        raise ScheduleError(f"{kind}(...): unbalanced parentheses in {expression!r}")
    if kind == "at":
        raise ScheduleError(
            "at(...) one-time schedules are not supported; use cron(...) or rate(...)"
        )
    if kind == "rate":
        rate = parse_rate(expression, body, timezone)
        _zone(timezone)
        return rate
    spec = cron_spec(body)  # syntax first, then the zone, then "does it ever fire"
    return cron_trigger(expression, spec, timezone, _zone(timezone))


def _explain_form(expression: str) -> None:
    if expression == "":
        raise ScheduleError("the schedule expression is empty; write cron(...) or rate(...)")
    loose = _LOOSE_FORM.match(expression)
    if loose is not None and loose.group(1).lower() in ("cron", "rate", "at"):
        word = loose.group(1)
        if word != word.lower():
            raise ScheduleError(f"write {word.lower()}(...) in lower case, not {word}(...)")
        if loose.group(0) != f"{word}(":
            raise ScheduleError(f"no space is allowed between {word} and (")
        raise ScheduleError(f"{word}(...) must end with a closing parenthesis")
    raise ScheduleError(
        f"{expression!r} is not a schedule expression; write "
        "cron(minutes hours day-of-month month day-of-week year) or rate(value unit)"
    )
