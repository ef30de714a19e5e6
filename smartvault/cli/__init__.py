"""The ``smartvault`` command: flags in, the engine called, output on the terminal.

The root group makes the ``Settings`` every command shares; each command lives in its
own module as a few lines of wiring, with its parsing and formatting beside it, and
every failure becomes an exit code in :mod:`smartvault.cli.errors`.
"""

from __future__ import annotations

import click

from smartvault import __version__
from smartvault.cli.apply import apply_command
from smartvault.cli.audit import audit_group
from smartvault.cli.coverage import coverage_command
from smartvault.cli.demo import demo_command
from smartvault.cli.deploy import deploy_group
from smartvault.cli.errors import SmartVaultGroup
from smartvault.cli.holds import hold_command
from smartvault.cli.holds import release_command
from smartvault.cli.params import check_endpoint_url
from smartvault.cli.params import check_table_name
from smartvault.cli.params import split_regions
from smartvault.cli.plan import plan_command
from smartvault.cli.restore import restore_command
from smartvault.cli.schema import schema_command
from smartvault.cli.validate import validate_command
from smartvault.cli.verify import verify_command
from smartvault.settings import DEFAULT_AUDIT_TABLE
from smartvault.settings import Settings


@click.group(cls=SmartVaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smartvault")
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="REGION",
    callback=split_regions,
    help="AWS region to work in (repeatable, or comma-separated). Default: the profile's "
    "or AWS_DEFAULT_REGION. The audit table lives in the first one.",
)
@click.option("--profile", metavar="NAME", help="AWS named profile to use.")
@click.option(
    "--endpoint-url",
    metavar="URL",
    callback=check_endpoint_url,
    help="Send AWS calls to this endpoint (a local simulator). boto3 also reads AWS_ENDPOINT_URL.",
)
@click.option(
    "--audit-table",
    envvar="SMARTVAULT_AUDIT_TABLE",
    default=DEFAULT_AUDIT_TABLE,
    show_default=True,
    metavar="NAME",
    callback=check_table_name,
    help="DynamoDB table that holds the audit log, in the first --region "
    "(env SMARTVAULT_AUDIT_TABLE).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show details, and tracebacks on errors.")
@click.pass_context
def cli(
    ctx: click.Context,
    regions: tuple[str, ...],
    profile: str | None,
    endpoint_url: str | None,
    audit_table: str,
    verbose: bool,
) -> None:
    """SmartVault: declarative backup policies for Amazon EBS.

    Policies are YAML files (default: ./policies). Check them with `smartvault
    validate`, review what they would do with `smartvault plan`, create the audit
    table once with `smartvault audit init`, then carry the plan out with
    `smartvault apply`.

    Exit codes: 0 success; 1 invalid policies, an AWS or audit problem, or a failed
    action; 2 wrong usage; 3 (apply) stopped with work remaining.
    """
    ctx.obj = Settings(
        regions=regions,
        profile=profile,
        endpoint_url=endpoint_url,
        audit_table=audit_table,
        verbose=verbose,
    )


for _command in (
    validate_command,
    schema_command,
    plan_command,
    apply_command,
    restore_command,
    hold_command,
    release_command,
    verify_command,
    coverage_command,
    demo_command,
    audit_group,
    deploy_group,
):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="smartvault")
