"""``smartvault hold`` and ``smartvault release``: a person's hold on a recovery point.

A hold is two tags on every snapshot of the point, in every region searched (the
``--region`` values and the copy regions of ./policies, as ``restore`` searches):
``smartvault:hold`` (the reason) and ``smartvault:hold-by`` (who). The planner keeps a
held point whatever its retention says (docs/retention.md, "Holds"). The changes and
their audit records are :mod:`smartvault.apply.holds`'s; this module checks the
arguments, chooses the regions and prints.
"""

from __future__ import annotations

import click

from smartvault.apply.holds import Changed
from smartvault.apply.holds import Found
from smartvault.apply.holds import Verb
from smartvault.apply.holds import change
from smartvault.apply.holds import find
from smartvault.cli.context import cli_actor
from smartvault.cli.context import make_engine
from smartvault.cli.errors import Failed
from smartvault.cli.output import echo
from smartvault.cli.regions import policies_if_any
from smartvault.cli.regions import search_regions
from smartvault.core.model import RecoveryPointId
from smartvault.core.tags import TAG_VALUE_MAX
from smartvault.engine import Engine
from smartvault.errors import AwsError

_RP_HELP = "The recovery point, as `smartvault restore --instance ID --list` shows it."


def _recovery_point(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if RecoveryPointId.parse(value) is None:
        raise click.BadParameter(
            f"{value!r} is not a recovery point id: it reads <policy>/<resource-id>/<slot>, "
            "the slot in UTC as YYYYMMDDTHHMMZ (e.g. nightly/i-0abc123/20261120T0300Z); "
            "`smartvault restore --instance ID --list` lists them"
        )
    return value


def _reason(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    text = value.strip()
    if not text:
        raise click.BadParameter("give the reason for the hold, e.g. --reason 'INC-1234'")
    if len(text) > TAG_VALUE_MAX:
        raise click.BadParameter(
            f"{len(text)} characters: a tag value holds at most {TAG_VALUE_MAX}; "
            "put the details in your ticket and name it here"
        )
    return text


@click.command("hold")
@click.argument("recovery_point", metavar="RP", callback=_recovery_point)
@click.option(
    "--reason",
    required=True,
    callback=_reason,
    metavar="TEXT",
    help="Why it is held (at most 256 characters): shown by restore --list and audited.",
)
def hold_command(recovery_point: str, reason: str) -> None:
    """Hold a recovery point: keep it whatever its retention says, until released.

    Tags every snapshot of RP, and of its copies in the copy regions of ./policies,
    smartvault:hold=TEXT and smartvault:hold-by=<your identity>. Holding a held point
    again replaces its reason. Audited (needs the audit table).

    \b
    Examples:
      smartvault hold nightly/i-0abc123/20261120T0300Z --reason "INC-1234 investigation"
      smartvault --region eu-west-1 hold nightly/vol-0def456/20261101T0000Z --reason legal
    """
    engine = make_engine()
    found = _find(engine, recovery_point)
    by = _who(engine)
    earlier = found.reasons()
    if earlier:
        echo(f"{recovery_point} was already held ({'; '.join(earlier)}): the reason is replaced.")
    changed = _change(engine, "hold", found, recovery_point, reason=reason, by=by)
    total = sum(len(c.snapshot_ids) for c in changed if c.outcome == "succeeded")
    echo(
        f"Held {recovery_point}: {total} snapshot(s) in {_regions_of(changed)} "
        f"(reason: {reason}; by {by}). It is kept past every retention rule until "
        f"`smartvault release {recovery_point}`."
    )
    _end(changed, found)


@click.command("release")
@click.argument("recovery_point", metavar="RP", callback=_recovery_point)
def release_command(recovery_point: str) -> None:
    """Release a held recovery point: remove its hold tags, in every region searched.

    The next run's retention then decides whether the point is deleted. A point that is
    not held is left as it is (nothing is written, not even an audit record). Audited
    (needs the audit table).

    \b
    Examples:
      smartvault release nightly/i-0abc123/20261120T0300Z
      smartvault --region us-east-1 --region us-west-2 release nightly/i-0abc123/20261120T0300Z
    """
    engine = make_engine()
    found = _find(engine, recovery_point)
    if not found.held:
        echo(
            f"{recovery_point} is not held (searched {', '.join(found.regions)}): "
            "nothing was changed."
        )
        _end([], found)
        return
    changed = _change(engine, "release", found, recovery_point)
    total = sum(len(c.snapshot_ids) for c in changed if c.outcome == "succeeded")
    echo(
        f"Released {recovery_point}: {total} snapshot(s) in {_regions_of(changed)}. The next "
        "run's retention decides whether it is deleted: `smartvault plan` shows what it will do."
    )
    _end(changed, found)


# --- steps ---------------------------------------------------------------------------


def _find(engine: Engine, recovery_point: str) -> Found:
    """The point's snapshots in every region searched, after the audit table proved
    writable (nothing is changed without it); exit 1 when there are none."""
    engine.audit_log().check_writable()
    policies, note = policies_if_any()
    rp = RecoveryPointId.parse(recovery_point)
    policy = policies.get(rp.policy) if rp and policies else None
    regions = search_regions(engine, None, policies)
    found = find(engine.hold_tags(), regions, recovery_point, policy.resource if policy else None)
    if found.unreadable and len(found.unreadable) == len(found.regions):
        raise Failed(f"Error: no region could be searched: {found.unreadable[0][1]}")
    for where, why in found.unreadable:
        echo(f"warning: {where} could not be searched: {why}", err=True)
    if not found.snapshots:
        raise Failed(
            f"Error: no snapshot of recovery point {recovery_point} in "
            f"{', '.join(found.regions)} (the --region values and the copy regions of "
            "./policies"
            + (f"; {note}" if note else "")
            + "): list a resource's points with `smartvault restore --instance ID --list` "
            "(or --volume ID), or search another region with `smartvault --region REGION ...`"
        )
    return found


def _who(engine: Engine) -> str:
    """Who sets the hold: the caller's identity ARN, else the CLI actor; 256 characters."""
    try:
        arn = engine.session.caller_arn()
    except AwsError:
        arn = None
    return (arn or cli_actor())[:TAG_VALUE_MAX]


def _change(
    engine: Engine,
    verb: Verb,
    found: Found,
    recovery_point: str,
    *,
    reason: str = "",
    by: str = "",
) -> list[Changed]:
    ctx = engine.restore_context(cli_actor())
    changed = change(ctx, engine.hold_tags(), verb, found, recovery_point, reason=reason, by=by)
    done = "held" if verb == "hold" else "released"
    for item in changed:
        ids = ", ".join(item.snapshot_ids)
        if item.outcome == "succeeded":
            echo(f"  {item.region}: {done} {ids}")
        else:
            echo(f"  {item.region}: NOT {done} ({ids}): {item.error}")
        if item.audit_error:
            echo(f"  {item.region}: {item.audit_error}", err=True)
    echo(f"Audit run {ctx.ledger.run_id} (`smartvault audit list --run-id {ctx.ledger.run_id}`).")
    return changed


def _regions_of(changed: list[Changed]) -> str:
    regions = [c.region for c in changed if c.outcome == "succeeded"]
    return ", ".join(regions) if regions else "no region"


def _end(changed: list[Changed], found: Found) -> None:
    """Exit 1 when a region failed, its record is incomplete, or a region was unread."""
    failed = [c.region for c in changed if c.outcome != "succeeded" or c.audit_error]
    if failed:
        raise Failed(
            f"Error: not done in {', '.join(failed)} (see above): run the same command again"
        )
    if found.unreadable:
        raise Failed(
            f"Error: {', '.join(r for r, _ in found.unreadable)} could not be searched: copies "
            "there were not changed; run the same command again when it can be read"
        )
