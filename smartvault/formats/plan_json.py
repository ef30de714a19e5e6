"""The plan as JSON: write it and read it back.

The JSON is deterministic: equal plans give byte-identical text, so a saved plan
can be diffed, hashed and committed. Reading validates against
``schemas/plan.schema.json`` first and raises :class:`PlanFileError` with a
message a person can act on. ``plan_from_dict(plan_to_dict(p)) == p`` for every
plan whose datetimes are aware. Comparing two plans' actions is
:mod:`smartvault.core.plan_diff`: it needs the plans, not their JSON.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from importlib import resources
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from smartvault.core.model import Action
from smartvault.core.model import ArchiveAction
from smartvault.core.model import CopyAction
from smartvault.core.model import CreateAction
from smartvault.core.model import DeleteAction
from smartvault.core.model import HeldBy
from smartvault.core.model import HeldDelete
from smartvault.core.model import Kept
from smartvault.core.model import Orphan
from smartvault.core.model import Plan
from smartvault.core.model import PlanWarning
from smartvault.core.model import PolicyRegion
from smartvault.core.model import PolicySlot
from smartvault.core.model import Skipped
from smartvault.core.model import VerifyAction
from smartvault.core.times import format_time
from smartvault.core.times import parse_time
from smartvault.errors import PlanFileError
from smartvault.formats import json_text

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

    # plan --compare only: kept off the Lambda's import path
    from smartvault.core.compare import ComparedAction
    from smartvault.core.compare import Comparison
    from smartvault.core.compare import Resource

FORMAT_VERSION = 1


_SCHEMA_RESOURCE = ("schemas", "plan.schema.json")


# --- datetimes ------------------------------------------------------------------


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


# --- Plan -> dict -----------------------------------------------------------------


def _sorted_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {key: tags[key] for key in sorted(tags)}


def action_to_dict(action: Action) -> dict[str, Any]:
    """One action as JSON: ``type`` first, then where and what, then type-specific fields."""
    data: dict[str, Any] = {
        "type": action.type,
        "region": action.region,
        "policy": action.policy,
        "resource_id": action.resource_id,
        "resource_name": action.resource_name,
    }
    if isinstance(action, CreateAction):
        data["resource_type"] = action.resource_type
        data["volume_ids"] = list(action.volume_ids)
        data["recovery_point"] = action.recovery_point
        data["slot"] = format_time(action.slot)
        data["tags"] = _sorted_tags(action.tags)
        data["exclude_boot_volume"] = action.exclude_boot_volume
        data["retention"] = action.retention
        data["reason"] = action.reason
        if action.full_tag_values:
            data["full_tag_values"] = _sorted_tags(action.full_tag_values)
        return data
    data["recovery_point"] = action.recovery_point
    data["snapshot_ids"] = list(action.snapshot_ids)
    data["created_at"] = format_time(action.created_at)
    if isinstance(action, CopyAction):
        data["target_region"] = action.target_region
        data["kms_key_id"] = action.kms_key_id
    elif isinstance(action, VerifyAction):
        data["timeout_seconds"] = _whole_seconds(action.timeout)
    data["retention"] = action.retention
    data["reason"] = action.reason
    if isinstance(action, DeleteAction) and action.safety_lifted is not None:
        data["safety_lifted"] = held_by_to_dict(action.safety_lifted)
    return data


def held_by_to_dict(held_by: HeldBy) -> dict[str, Any]:
    """The ``safety`` rule that held (or, lifted, would have held) a deletion."""
    return {
        "rule": held_by.rule,
        "limit": held_by.limit,
        "deletes": held_by.deletes,
        "completed": held_by.completed,
        "resource_id": held_by.resource_id,
    }


def _held_by_from_dict(data: Mapping[str, Any]) -> HeldBy:
    return HeldBy(
        rule=data["rule"],
        limit=data["limit"],
        deletes=data["deletes"],
        completed=data["completed"],
        resource_id=data["resource_id"],
    )


def _whole_seconds(limit: timedelta) -> int:
    seconds, rest = divmod(limit, timedelta(seconds=1))
    if rest:  # policies give whole minutes: a fraction is a bug, never rounded away
        raise ValueError(f"restore-test timeout {limit!r} is not a whole number of seconds")
    return int(seconds)


class _Entries:
    """A list of the plan written as it is converted, one entry at a time."""

    def __init__(self, entries: Iterator[dict[str, Any]]) -> None:
        self.entries = entries


def _fields(plan: Plan) -> list[tuple[str, Any]]:
    """The plan's top-level fields in order (docs/plan-format.md); its long lists are
    :class:`_Entries`, converted only as they are consumed."""
    return [
        ("format_version", plan.format_version),
        ("at", format_time(plan.at)),
        ("generated_at", format_time(plan.generated_at)),
        ("account_id", plan.account_id),
        ("regions", list(plan.regions)),
        (
            "policies",
            [
                {
                    "name": p.name,
                    "file": p.file,
                    "slot": _optional_time(p.slot),
                    "selected": p.selected,
                    "excluded": p.excluded,
                    "regions": {
                        r.region: {"selected": r.selected, "excluded": r.excluded}
                        for r in p.regions
                    },
                }
                for p in plan.policies
            ],
        ),
        ("allow_deletes", list(plan.allow_deletes)),
        ("actions", _Entries(action_to_dict(a) for a in plan.actions)),
        (
            "held_deletes",
            _Entries(
                {**action_to_dict(h.action), "held_by": held_by_to_dict(h.held_by)}
                for h in plan.held_deletes
            ),
        ),
        (
            "kept",
            _Entries(
                {
                    "region": k.region,
                    "policy": k.policy,
                    "resource_id": k.resource_id,
                    "resource_name": k.resource_name,
                    "recovery_point": k.recovery_point,
                    "snapshot_ids": list(k.snapshot_ids),
                    "created_at": format_time(k.created_at),
                    "kept_by": list(k.kept_by),
                    "retention": k.retention,
                    "verified": _optional_time(k.verified),
                }
                for k in plan.kept
            ),
        ),
        (
            "skipped",
            _Entries(
                {
                    "region": s.region,
                    "policy": s.policy,
                    "resource_id": s.resource_id,
                    "resource_name": s.resource_name,
                    "recovery_point": s.recovery_point,
                    "snapshot_ids": list(s.snapshot_ids),
                    "retention": s.retention,
                    "reason": s.reason,
                }
                for s in plan.skipped
            ),
        ),
        (
            "orphans",
            _Entries(
                {
                    "region": o.region,
                    "policy": o.policy,
                    "recovery_point": o.recovery_point,
                    "snapshot_ids": list(o.snapshot_ids),
                    "created_at": format_time(o.created_at),
                }
                for o in plan.orphans
            ),
        ),
        (
            "warnings",
            [
                {
                    "message": w.message,
                    "policy": w.policy,
                    "resource_id": w.resource_id,
                    "region": w.region,
                }
                for w in plan.warnings
            ],
        ),
        ("summary", dict(plan.summary)),
    ]


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan in its JSON shape (docs/plan-format.md), ready for ``json.dumps``."""
    return {
        key: list(value.entries) if isinstance(value, _Entries) else value
        for key, value in _fields(plan)
    }


def write(plan: Plan, out: Callable[[str], object]) -> None:
    """Write the plan's JSON text (exactly :func:`dumps`'s) to ``out`` piece by piece.

    Each action and kept entry is converted and written in turn, never the whole
    document at once: a plan of 100,000 recovery points is written without holding
    its text, or a dict of it, in memory.
    """
    out("{")
    for i, (key, value) in enumerate(_fields(plan)):
        out(("," if i else "") + "\n" + json_text.INDENT + json_text.encode(key) + ": ")
        if not isinstance(value, _Entries):
            out(json_text.encode(value, 1))
            continue
        first = True
        for entry in value.entries:
            out(("[" if first else ",") + "\n" + json_text.INDENT * 2)
            out(json_text.encode(entry, 2))
            first = False
        out("[]" if first else "\n" + json_text.INDENT + "]")
    out("\n}\n")


def dumps(plan: Plan) -> str:
    """The plan as JSON text: two-space indent, fixed key order, UTF-8, trailing newline
    (``json.dumps(plan_to_dict(plan), indent=2, ensure_ascii=False)`` and a newline).

    Equal plans give byte-identical text (tag maps are written sorted by key).
    """
    parts: list[str] = []
    write(plan, parts.append)
    return "".join(parts)


def _compared(change: ComparedAction) -> dict[str, Any]:
    data = action_to_dict(change.action)
    held = change.held_by
    data["held_by"] = None if held is None else held_by_to_dict(held)
    return data


def _resources(resources: Iterable[Resource]) -> list[dict[str, Any]]:
    return [
        {
            "region": r.region,
            "resource_id": r.resource_id,
            "resource_name": r.resource_name,
            "policies": list(r.policies),
        }
        for r in resources
    ]


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    """``plan --compare REF``'s ``compare`` object (docs/plan-format.md)."""
    from smartvault.core.compare import lead  # only plan --compare: off the Lambda's path

    return {
        "ref": comparison.ref,
        "commit": comparison.commit,
        "added": [_compared(c) for c in comparison.added],
        "removed": [_compared(c) for c in comparison.removed],
        "impact": {
            "lead": lead(comparison),
            "deletes_kept_by_ref": len(comparison.deletes_added),
            "held": sum(1 for c in comparison.deletes_added if c.held_by is not None),
            "keeps_deleted_by_ref": len(comparison.deletes_removed),
            "stops_backing_up": _resources(comparison.stops_backing_up),
            "starts_backing_up": _resources(comparison.starts_backing_up),
            "new_orphans": [
                {
                    "region": o.region,
                    "policy": o.policy,
                    "recovery_point": o.recovery_point,
                    "snapshot_ids": list(o.snapshot_ids),
                    "created_at": format_time(o.created_at),
                }
                for o in comparison.new_orphans
            ],
            "policies_added": list(comparison.policies_added),
            "policies_removed": list(comparison.policies_removed),
            "policies_renamed": [{"from": old, "to": new} for old, new in comparison.renamed],
            "policies_changed": [
                {"name": c.name, "fields": list(c.changed)} for c in comparison.policies_changed
            ],
            "missing_at_ref": list(comparison.missing_at_ref),
        },
    }


def dumps_compared(plan: Plan, comparison: Comparison) -> str:
    """:func:`dumps`, with ``compare`` last: what ``plan --compare REF --format json`` prints.

    A plan made without ``--compare`` has no ``compare`` key: its text is :func:`dumps`'.
    """
    data = {**plan_to_dict(plan), "compare": comparison_to_dict(comparison)}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- dict -> Plan -----------------------------------------------------------------


@functools.cache
def plan_schema() -> dict[str, Any]:
    """The plan JSON Schema (Draft 2020-12) shipped in ``smartvault/schemas``."""
    text = resources.files("smartvault").joinpath(*_SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    # imported here: writing and rendering plans (the Lambda's path) never pays for it
    from jsonschema import Draft202012Validator

    return Draft202012Validator(plan_schema())


def _where(path: Iterable[str | int]) -> str:
    where = ""
    for part in path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}"
    return where.removeprefix(".")


def _describe(error: ValidationError) -> str:
    if error.validator == "enum":
        allowed: Any = error.validator_value
        choices = ", ".join(str(choice) for choice in allowed)
        message = f"{error.instance!r} is not one of {choices}"
    elif error.validator == "pattern":
        message = f"{error.instance!r} is not a UTC time like 2026-11-28T17:00:02Z"
    elif error.validator == "const":
        message = f"{error.instance!r} should be {error.validator_value!r}"
    else:
        message = error.message
    where = _where(error.absolute_path)
    return f"{where}: {message}" if where else message


def _schema_problems(data: object) -> list[str]:
    errors = sorted(
        _validator().iter_errors(data),
        key=lambda e: (tuple(str(p) for p in e.absolute_path), e.message),
    )
    return [_describe(e) for e in errors]


def _not_a_plan(source: str, problems: Sequence[str]) -> PlanFileError:
    shown = "; ".join(problems[:3])
    more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
    return PlanFileError(f"{source} is not a SmartVault plan: {shown}{more}")


def _check_version(data: object, source: str) -> None:
    if not isinstance(data, dict):
        return
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise PlanFileError(
            f"{source} was written by a newer SmartVault (plan format_version {version}; "
            f"this version reads format_version {FORMAT_VERSION}): upgrade SmartVault, "
            "or make the plan again with this version"
        )


def _check_older(data: object, source: str) -> None:
    """A plan written before policies had counts and lines had names and rules: say so."""
    if not isinstance(data, dict):
        return
    policies, actions = data.get("policies"), data.get("actions")
    lacks = (
        isinstance(policies, list)
        and any(isinstance(p, dict) and "regions" not in p for p in policies)
    ) or (
        isinstance(actions, list)
        and any(isinstance(a, dict) and "retention" not in a for a in actions)
    )
    if lacks:
        raise PlanFileError(
            f"{source} was written by an older SmartVault (its policies have no selected "
            "counts, or its actions no retention): make the plan again with "
            "`smartvault plan --out FILE`"
        )


def _action_from_dict(data: Mapping[str, Any]) -> Action:
    kind = data["type"]
    common: dict[str, Any] = {
        "region": data["region"],
        "policy": data["policy"],
        "resource_id": data["resource_id"],
        "recovery_point": data["recovery_point"],
        "reason": data["reason"],
        "resource_name": data["resource_name"],
        "retention": data["retention"],
    }
    if kind == "create":
        return CreateAction(
            **common,
            resource_type=data["resource_type"],
            slot=parse_time(data["slot"]),
            volume_ids=tuple(data["volume_ids"]),
            tags=dict(data["tags"]),
            exclude_boot_volume=data["exclude_boot_volume"],
            full_tag_values=dict(data.get("full_tag_values", {})),
        )
    common["snapshot_ids"] = tuple(data["snapshot_ids"])
    common["created_at"] = parse_time(data["created_at"])
    if kind == "copy":
        return CopyAction(
            **common, target_region=data["target_region"], kms_key_id=data["kms_key_id"]
        )
    if kind == "archive":
        return ArchiveAction(**common)
    if kind == "verify":
        return VerifyAction(**common, timeout=timedelta(seconds=data["timeout_seconds"]))
    lifted = data.get("safety_lifted")
    return DeleteAction(
        **common, safety_lifted=None if lifted is None else _held_by_from_dict(lifted)
    )


def _build(data: Mapping[str, Any]) -> Plan:
    return Plan(
        format_version=data["format_version"],
        at=parse_time(data["at"]),
        generated_at=parse_time(data["generated_at"]),
        account_id=data["account_id"],
        regions=tuple(data["regions"]),
        policies=tuple(
            PolicySlot(
                name=p["name"],
                file=p["file"],
                slot=None if p["slot"] is None else parse_time(p["slot"]),
                regions=tuple(
                    PolicyRegion(region, counts["selected"], counts["excluded"])
                    for region, counts in sorted(p["regions"].items())
                ),
            )
            for p in data["policies"]
        ),
        # Plans saved before the deletion circuit breaker have neither key.
        allow_deletes=tuple(data.get("allow_deletes", ())),
        actions=tuple(_action_from_dict(a) for a in data["actions"]),
        held_deletes=tuple(
            HeldDelete(cast("DeleteAction", _action_from_dict(h)), _held_by_from_dict(h["held_by"]))
            for h in data.get("held_deletes", ())
        ),
        kept=tuple(
            Kept(
                region=k["region"],
                policy=k["policy"],
                resource_id=k["resource_id"],
                recovery_point=k["recovery_point"],
                snapshot_ids=tuple(k["snapshot_ids"]),
                created_at=parse_time(k["created_at"]),
                kept_by=tuple(k["kept_by"]),
                verified=None if k["verified"] is None else parse_time(k["verified"]),
                resource_name=k["resource_name"],
                retention=k["retention"],
            )
            for k in data["kept"]
        ),
        skipped=tuple(
            Skipped(
                region=s["region"],
                policy=s["policy"],
                resource_id=s["resource_id"],
                recovery_point=s["recovery_point"],
                snapshot_ids=tuple(s["snapshot_ids"]),
                reason=s["reason"],
                resource_name=s["resource_name"],
                retention=s["retention"],
            )
            for s in data["skipped"]
        ),
        orphans=tuple(
            Orphan(
                region=o["region"],
                policy=o["policy"],
                recovery_point=o["recovery_point"],
                snapshot_ids=tuple(o["snapshot_ids"]),
                created_at=parse_time(o["created_at"]),
            )
            for o in data["orphans"]
        ),
        warnings=tuple(
            PlanWarning(
                message=w["message"],
                policy=w["policy"],
                resource_id=w["resource_id"],
                region=w["region"],
            )
            for w in data["warnings"]
        ),
    )


def plan_from_dict(data: object, *, source: str = "plan.json") -> Plan:
    """Validate ``data`` against the plan schema and build the :class:`Plan` it describes.

    Raises :class:`PlanFileError` naming ``source`` and the first problems found: a
    newer ``format_version``, schema violations (``actions[3].type: 'remove' is not
    one of create, delete, archive, copy, verify``), impossible times, or a ``summary`` that
    does not match the plan's contents.
    """
    _check_version(data, source)
    _check_older(data, source)
    problems = _schema_problems(data)
    if problems:
        raise _not_a_plan(source, problems)
    valid = cast("dict[str, Any]", data)  # the schema says it is an object
    try:
        plan = _build(valid)
    except ValueError as exc:  # a time that matches the pattern but is no date (month 13)
        raise _not_a_plan(source, [str(exc)]) from exc
    if valid["summary"] != plan.summary:
        raise _not_a_plan(
            source,
            [f"summary {valid['summary']} does not match its contents {plan.summary}"],
        )
    for number, (entry, slot) in enumerate(zip(valid["policies"], plan.policies, strict=True)):
        if (entry["selected"], entry["excluded"]) != (slot.selected, slot.excluded):
            raise _not_a_plan(
                source,
                [
                    f"policies[{number}]: selected {entry['selected']} and excluded "
                    f"{entry['excluded']} do not match the sums of its regions "
                    f"({slot.selected} and {slot.excluded})"
                ],
            )
    return plan


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads(text: str | bytes, source: str = "plan.json") -> Plan:
    """Read a plan from JSON text (as written by :func:`dumps`); see :func:`plan_from_dict`."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlanFileError(
            f"{source} is not valid JSON ({exc}); make it again with `smartvault plan --out FILE`"
        ) from exc
    except RecursionError:
        # A plan nests four levels deep; json gives up on thousands, and so do we.
        raise PlanFileError(
            f"{source} nests values too deeply to be a plan; "
            "make it again with `smartvault plan --out FILE`"
        ) from None
    return plan_from_dict(data, source=source)
