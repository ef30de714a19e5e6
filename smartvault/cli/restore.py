"""``smartvault restore``: find a recovery point, say what restoring it does, then do it.

The decisions are :mod:`smartvault.core.restore`'s and the changes
:mod:`smartvault.apply.restore`'s; this module parses the flags, chooses the regions to
search, and prints. Without ``--yes`` nothing is written anywhere. docs/restore.md is
the runbook.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import TypeVar

import click

from smartvault.apply.restore import RestoreStep
from smartvault.apply.restore import Search
from smartvault.apply.restore import look
from smartvault.apply.restore import search
from smartvault.cli.context import cli_actor
from smartvault.cli.context import make_engine
from smartvault.cli.errors import Failed
from smartvault.cli.output import echo
from smartvault.cli.params import parse_span
from smartvault.cli.params import parse_time
from smartvault.cli.regions import policies_if_any
from smartvault.cli.regions import search_regions
from smartvault.core import restore as decide
from smartvault.core.model import Instance
from smartvault.core.model import PolicySet
from smartvault.core.model import RecoveryPointId
from smartvault.core.model.policy import ResourceType
from smartvault.core.model.restore import FoundPoint
from smartvault.core.model.restore import MadeVolume
from smartvault.core.model.restore import RestorePlan
from smartvault.core.model.restore import VolumePlan
from smartvault.core.times import iso_utc
from smartvault.engine import Engine

T = TypeVar("T")

DEFAULT_RESTORE_DAYS = 3
#: RestoreSnapshotTier takes 1 to 180 days for a temporary restore.
RESTORE_DAYS = click.IntRange(1, 180)


@click.command("restore")
@click.option("--instance", "instance_id", metavar="ID", help="The instance whose points to use.")
@click.option("--volume", "volume_id", metavar="ID", help="The volume whose points to use.")
@click.option(
    "--recovery-point",
    "recovery_point",
    metavar="RP",
    help="The recovery point to restore, as --list shows it (<policy>/<resource>/<slot>).",
)
@click.option("--list", "list_points", is_flag=True, help="List the recovery points, newest first.")
@click.option(
    "--before",
    callback=parse_time,
    metavar="TIME",
    help="With --instance/--volume: the newest completed point before this (ISO 8601; "
    "default: now).",
)
@click.option(
    "--region",
    "region",
    metavar="REGION",
    help="The region whose copy of the point to restore (default: the original's). Also searched.",
)
@click.option("--az", "zone", metavar="ZONE", help="Availability zone of the new volumes.")
@click.option(
    "--attach-to",
    "attach_to",
    metavar="ID",
    help="Attach the volumes to this instance (in the point's region) at their original "
    "device names. The root volume is made but never attached.",
)
@click.option("--force", is_flag=True, help="Attach to an instance that is running.")
@click.option("--yes", is_flag=True, help="Restore; without it, only say what would be done.")
@click.option(
    "--wait",
    callback=parse_span,
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="How long to wait for the new volumes to become available.",
)
@click.option(
    "--restore-days",
    type=RESTORE_DAYS,
    default=DEFAULT_RESTORE_DAYS,
    show_default=True,
    metavar="N",
    help="Days an archived snapshot stays restored to the standard tier.",
)
def restore_command(
    instance_id: str | None,
    volume_id: str | None,
    recovery_point: str | None,
    list_points: bool,
    before: datetime | None,
    region: str | None,
    zone: str | None,
    attach_to: str | None,
    force: bool,
    yes: bool,
    wait: timedelta,
    restore_days: int,
) -> None:
    """Restore a recovery point to new volumes like the originals.

    `smartvault restore --instance ID --list` lists the points (copies in other regions
    too). `smartvault restore --recovery-point RP` or `--instance ID [--before TIME]`
    shows what would be created and attached; add --yes to do it (needs the audit table).
    A recovery point in the archive tier is first brought back (hours); run the same
    command again when it is. See docs/restore.md.

    \b
    Examples:
      smartvault restore --instance i-0abc123 --list
      smartvault restore --recovery-point nightly/i-0abc123/20261201T0300Z --attach-to i-0rescue1
      smartvault restore --instance i-0abc123 --before 2026-11-30T12:00:00Z --yes
    """
    _check_usage(
        instance_id, volume_id, recovery_point, list_points, before, zone, attach_to, force, yes
    )
    resource_id = instance_id or volume_id
    if recovery_point is not None and resource_id is not None:
        _refuse(lambda: decide.check_resource(recovery_point, resource_id))
    engine = make_engine()
    if region is not None:
        engine.session.check_region(region)
    policies, policy_note = policies_if_any()
    regions = search_regions(engine, region, policies)
    resource_type = _resource_type(instance_id, volume_id, recovery_point, policies)
    ctx = engine.restore_context(cli_actor())
    found = search(
        ctx.ec2,
        regions,
        resource_type=resource_type,
        resource_id=None if recovery_point else resource_id,
        recovery_point=recovery_point,
    )
    if found.unreadable and len(found.unreadable) == len(found.regions):
        raise Failed(f"Error: no region could be searched: {found.unreadable[0][1]}")
    for where, why in found.unreadable:
        echo(f"warning: {where} could not be searched: {why}", err=True)
    now = engine.now()
    if list_points:
        _show_list(found, str(resource_id), now, policy_note)
        return
    point = _refuse(
        lambda: (
            decide.choose_by_id(found.points, recovery_point, region=region, searched=found.regions)
            if recovery_point
            else decide.choose_newest(
                found.points,
                str(resource_id),
                before=before or now,
                region=region,
                searched=found.regions,
            )
        )
    )
    looked = look(ctx, point, attach_to)
    plan = _refuse(
        lambda: decide.plan_restore(
            point,
            now=now,
            zones=looked.zones,
            originals=looked.originals,
            instance=looked.instance,
            target=decide.Target(zone=zone, attach_to=attach_to, force=force),
        )
    )
    again = _again(plan, zone, attach_to, force)
    _show_plan(plan)
    if plan.archived:
        _archived(engine, RestoreStep(ctx, on_progress=_progress), plan, yes, restore_days, again)
        return
    if not yes:
        echo(f"Nothing was done: run again with --yes to restore:\n  {again}")
        return
    engine.audit_log().check_writable()
    result = RestoreStep(ctx, on_progress=_progress).run(plan, wait=wait)
    if result.error:
        raise Failed(
            f"Error: restore of {plan.point.recovery_point} failed: {result.error}"
            + (f"; {result.audit_error}" if result.audit_error else "")
        )
    _show_done(plan, result.made, looked.instance, ctx.ledger.run_id)
    if result.audit_error:
        raise Failed(f"Error: the volumes were restored, but {result.audit_error}")


# --- flags --------------------------------------------------------------------------


def _check_usage(
    instance_id: str | None,
    volume_id: str | None,
    recovery_point: str | None,
    list_points: bool,
    before: datetime | None,
    zone: str | None,
    attach_to: str | None,
    force: bool,
    yes: bool,
) -> None:
    """Wrong usage exits 2, before any AWS call."""
    if instance_id and volume_id:
        raise click.UsageError("give --instance or --volume, not both")
    if not (instance_id or volume_id or recovery_point):
        raise click.UsageError("name what to restore: --recovery-point RP, or --instance ID")
    if list_points:
        if recovery_point:
            raise click.UsageError("--list lists a resource's points: use --instance ID --list")
        used = [
            flag
            for flag, value in (
                ("--before", before),
                ("--az", zone),
                ("--attach-to", attach_to),
                ("--force", force),
                ("--yes", yes),
            )
            if value
        ]
        if used:
            raise click.UsageError(f"--list only lists: leave out {', '.join(used)}")
    if recovery_point and before:
        raise click.UsageError("--before chooses a point by time: not with --recovery-point")
    if force and not attach_to:
        raise click.UsageError("--force is for --attach-to a running instance")


def _refuse(decision: Callable[[], T]) -> T:
    """The decision's value, or its refusal as one ``Error:`` line and exit 1."""
    try:
        return decision()
    except decide.Refused as exc:
        raise Failed(f"Error: {exc}") from exc


def _resource_type(
    instance_id: str | None,
    volume_id: str | None,
    recovery_point: str | None,
    policies: PolicySet | None,
) -> ResourceType | None:
    if instance_id:
        return "instance"
    if volume_id:
        return "volume"
    rp = RecoveryPointId.parse(recovery_point or "")
    policy = policies.get(rp.policy) if rp and policies else None
    return policy.resource if policy else None


def _again(plan: RestorePlan, zone: str | None, attach_to: str | None, force: bool) -> str:
    """The command that restores exactly this point, in this region, again."""
    words = [
        "smartvault",
        "restore",
        "--recovery-point",
        plan.point.recovery_point,
        "--region",
        plan.region,
    ]
    if zone:
        words += ["--az", zone]
    if attach_to:
        words += ["--attach-to", attach_to]
    if force:
        words.append("--force")
    words.append("--yes")
    return shlex.join(words)


def _progress(line: str) -> None:
    echo(line, err=True)


# --- output -------------------------------------------------------------------------


def _show_list(found: Search, resource_id: str, now: datetime, policy_note: str) -> None:
    if not found.points:
        echo(f"No recovery points of {resource_id} in {', '.join(found.regions)}.")
    for point in found.points:
        echo(
            "  ".join(
                [
                    iso_utc(point.created_at),
                    point.policy,
                    point.region,
                    _origin(point),
                    point.state,
                    decide.tier_text(point, now),
                    f"verified: {point.verified or 'no'}",
                    f"held: {point.held or 'no'}",
                    point.recovery_point,
                ]
            )
        )
    echo(
        f"Searched {', '.join(found.regions)} (the --region values and the copy regions of "
        "./policies); search another with `smartvault --region REGION restore ...`."
    )
    if policy_note:
        echo(f"Note: {policy_note}.")


def _origin(point: FoundPoint) -> str:
    if not point.is_copy:
        return "original"
    region = point.sources[0].partition("/")[0]
    ids = ",".join(s.partition("/")[2] for s in point.sources)
    return f"copy of {region}/{ids}"


def _show_plan(plan: RestorePlan) -> None:
    point = plan.point
    echo(
        f"Restore {point.recovery_point} ({point.region}, {_origin(point)}, created "
        f"{iso_utc(point.created_at)}) to {len(plan.volumes)} new volume(s) in {plan.zone} "
        f"({plan.zone_note}):"
    )
    for volume in plan.volumes:
        echo(f"  {_volume_line(volume)}")
        echo(f"      settings: {volume.settings_note}")
        echo(f"      tags: {', '.join(f'{k}={v}' for k, v in sorted(volume.tags.items()))}")
        echo(f"      {_attach_line(volume, plan.attach_to)}")


def _volume_line(volume: VolumePlan) -> str:
    parts = [f"from {volume.snapshot_id}: {volume.size_gib} GiB {volume.volume_type}"]
    if volume.iops is not None:
        parts.append(f"{volume.iops} IOPS")
    if volume.throughput is not None:
        parts.append(f"{volume.throughput} MiB/s")
    parts.append(
        f"encrypted (KMS key {volume.kms_key_id or 'the snapshot key'})"
        if volume.encrypted
        else "not encrypted"
    )
    parts.append(f"zone {volume.zone}")
    parts.append(f"original device {volume.device or 'not recorded'}")
    return ", ".join(parts)


def _attach_line(volume: VolumePlan, attach_to: str | None) -> str:
    if volume.root:
        return (
            f"root volume ({volume.device}): made, never attached by SmartVault; "
            "docs/restore.md has the root-volume procedure"
        )
    if attach_to and volume.attach_device:
        note = f" ({volume.attach_note})" if volume.attach_note else ""
        return f"attach to {attach_to} at {volume.attach_device}{note}"
    return "not attached (no --attach-to)"


def _show_done(
    plan: RestorePlan, made: Sequence[MadeVolume], target: Instance | None, run_id: str
) -> None:
    volumes = {v.snapshot_id: v for v in plan.volumes}
    echo(f"Restored {plan.point.recovery_point} in {plan.region} (audit run {run_id}):")
    for item in made:
        spec = volumes[item.snapshot_id]
        if item.device:
            echo(
                f"  {item.volume_id} from {item.snapshot_id}: attached to {plan.attach_to} "
                f"at {item.device}"
            )
            continue
        what = "root volume, not attached" if spec.root else "not attached"
        echo(
            f"  {item.volume_id} from {item.snapshot_id}: {what}; to attach it as a data "
            f"volume: aws ec2 attach-volume --region {plan.region} --volume-id "
            f"{item.volume_id} --instance-id {plan.attach_to or 'INSTANCE'} --device "
            f"{decide.free_device(target, [m.device for m in made if m.device])}"
        )
    echo("Next: mount them (docs/restore.md, 'Mount the volumes').")


def _archived(
    engine: Engine, step: RestoreStep, plan: RestorePlan, yes: bool, days: int, again: str
) -> None:
    n = len(plan.archived)
    listed = ", ".join(plan.archived)
    if not yes:
        echo(
            f"{n} snapshot(s) of {plan.point.recovery_point} are in the archive tier ({listed}). "
            f"With --yes SmartVault asks EC2 to restore them to the standard tier for {days} "
            "days (RestoreSnapshotTier; --restore-days), which takes hours, and creates no "
            "volume yet.\nNothing was done: run again with --yes to start that."
        )
        return
    engine.audit_log().check_writable()
    thawed = step.bring_back(plan, days)
    if thawed.error:
        raise Failed(f"Error: {thawed.error}")
    for snapshot_id, hours in thawed.hours:
        took = f"about {hours} hours" if hours is not None else "a time AWS did not say"
        echo(f"{snapshot_id}: restoring from the archive tier for {days} days; AWS says {took}")
    for snapshot_id in thawed.already:
        echo(f"{snapshot_id}: already being restored from the archive tier")
    echo(f"No volume was made yet. When they are back (see --list), run:\n  {again}")
    if thawed.audit_error:
        raise Failed(f"Error: {thawed.audit_error}")
