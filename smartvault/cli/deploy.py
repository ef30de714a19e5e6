"""``smartvault deploy``: the CloudFormation template and the Lambda zip for the policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from smartvault import deploy as deploy_module
from smartvault.cli.context import current_settings
from smartvault.cli.context import make_engine
from smartvault.cli.output import echo
from smartvault.cli.params import policy_paths
from smartvault.deploy.fleet import DEFAULT_MAX_CONCURRENCY
from smartvault.deploy.fleet import DEFAULT_TOLERATED_FAILURE_PERCENTAGE
from smartvault.deploy.template import LAMBDA_PYTHON_VERSION
from smartvault.engine import Engine
from smartvault.errors import SmartVaultError

#: The folder that holds ``smartvault/`` and ``lambda_entry.py`` (a clone of the repository).
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


@click.group("deploy")
def deploy_group() -> None:
    """Run SmartVault on schedule in AWS: CloudFormation template and Lambda package.

    \b
    Examples:
      smartvault deploy package policies/ --out dist/smartvault.zip
      smartvault --region us-east-1 deploy template policies/ > dist/smartvault.yaml
      smartvault deploy template --fleet policies/ > dist/smartvault-hub.yaml
    """


def _shard_list(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    bucket, _, key = value.removeprefix("s3://").partition("/")
    if not value.startswith("s3://") or not bucket or not key:
        raise click.BadParameter(f"{value!r}: give s3://BUCKET/KEY of a JSON file")
    return (bucket, key)


def _check_catch_up(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        deploy_module.check_catch_up(value)
    except SmartVaultError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@deploy_group.command("template")
@policy_paths
@click.option(
    "--catch-up",
    "catch_up",
    default=deploy_module.DEFAULT_CATCH_UP,
    show_default=True,
    metavar="EXPRESSION",
    callback=_check_catch_up,
    help="The catch-up schedule (UTC): runs every policy to finish what the last runs "
    "left, such as failed creates and copies.",
)
@click.option(
    "--no-catch-up",
    is_flag=True,
    help="No catch-up schedule: a failed create waits for the policy's next slot.",
)
@click.option(
    "--fleet",
    is_flag=True,
    help="Print the fleet's hub template instead: one stack per region in the hub account, "
    "with the function, the workflow over the member accounts and the StackSet of their "
    "role. See docs/fleet.md.",
)
@click.option(
    "--shard-list",
    metavar="s3://BUCKET/KEY",
    callback=_shard_list,
    help="With --fleet: read the shards from this JSON file, a list of "
    '{"account": ..., "region": ...}, instead of listing the Organization\'s accounts.',
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(1, 10_000),
    default=DEFAULT_MAX_CONCURRENCY,
    show_default=True,
    help="With --fleet: shards run at once (each is one function invocation at a time).",
)
@click.option(
    "--tolerated-failure-percentage",
    type=click.IntRange(0, 100),
    default=DEFAULT_TOLERATED_FAILURE_PERCENTAGE,
    show_default=True,
    help="With --fleet: the share of shards that may fail before the run counts as failed.",
)
def deploy_template(
    paths: tuple[str, ...],
    catch_up: str,
    no_catch_up: bool,
    fleet: bool,
    shard_list: tuple[str, str] | None,
    max_concurrency: int,
    tolerated_failure_percentage: int,
) -> None:
    """Print the CloudFormation template for the policies (makes no AWS call).

    PATHS are policy files or directories (default: ./policies). The --region
    options become the regions the function works in and is watched in (one set of
    alarms per policy and region); a policy that could never run in them is a warning
    (on stderr).

    With --fleet it prints the hub template of a fleet across an AWS Organization
    instead: the function, its table and alarms, the StackSet of the member-account
    role and the workflow that runs every account, for one region (one --region at
    most); deploy one hub stack per region in the hub account (docs/fleet.md).

    \b
    Examples:
      smartvault --region us-east-1 --region eu-west-1 deploy template policies/ > smartvault.yaml
      smartvault deploy template --catch-up 'rate(30 minutes)' > smartvault.yaml
      smartvault --region eu-west-1 deploy template --fleet policies/ > hub-eu-west-1.yaml
    """
    context = click.get_current_context()

    def given(name: str) -> bool:
        return context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE

    if no_catch_up and given("catch_up"):
        raise click.UsageError("give --catch-up EXPRESSION or --no-catch-up, not both")
    fleet_only = [
        f"--{n.replace('_', '-')}"
        for n in ("shard_list", "max_concurrency", "tolerated_failure_percentage")
        if given(n)
    ]
    if fleet_only and not fleet:
        raise click.UsageError(f"{', '.join(fleet_only)}: only with --fleet")
    if fleet and (no_catch_up or given("catch_up")):
        raise click.UsageError(
            "--fleet has no catch-up schedule: its tick (at most hourly) finishes what "
            "the last runs left; leave out --catch-up and --no-catch-up"
        )
    settings = current_settings()
    if fleet and len(settings.regions) > 1:
        raise click.UsageError(
            "--fleet makes one hub stack per region (its function works in its own region): "
            "give one --region, and run `deploy template --fleet` once per region"
        )
    policies = Engine.load_policies(paths)
    session = make_engine().session
    for region in settings.regions:  # a typo here would only fail in the deployed function
        session.check_region(region)
    if fleet:
        text, warnings = deploy_module.hub_template_text(
            policies,
            region=settings.regions[0] if settings.regions else None,
            shard_list=shard_list,
            max_concurrency=max_concurrency,
            tolerated_failure_percentage=tolerated_failure_percentage,
        )
    else:
        text, warnings = deploy_module.cloudformation_template(
            policies, regions=settings.regions or None, catch_up=None if no_catch_up else catch_up
        )
    for warning in warnings:
        echo(f"warning: {warning}", err=True)
    echo(text, nl=False)


@deploy_group.command("package")
@policy_paths
@click.option(
    "--out",
    required=True,
    metavar="FILE.zip",
    type=click.Path(dir_okay=False, writable=True),
    help="Where to write the deployment zip.",
)
@click.option(
    "--no-vendor",
    is_flag=True,
    help="Leave out the third-party libraries (for inspecting the zip).",
)
@click.option(
    "--no-bytecode",
    is_flag=True,
    help="Leave out the compiled modules (every cold start then compiles them, ~0.1 s).",
)
def deploy_package(paths: tuple[str, ...], out: str, no_vendor: bool, no_bytecode: bool) -> None:
    """Build the Lambda deployment zip: SmartVault, its handler, policies and libraries.

    PATHS are the policy files or directories to package (default: ./policies).

    \b
    Examples:
      smartvault deploy package policies/ --out dist/smartvault.zip
      smartvault deploy package --out /tmp/inspect.zip --no-vendor
    """
    policies = Engine.load_policies(paths)
    info = deploy_module.build_package(
        Path(out),
        project_root=_PROJECT_ROOT,
        policy_paths=[Path(f) for f in policies.files],
        vendor=not no_vendor,
        bytecode=not no_bytecode,
    )
    echo(f"wrote {info.path} ({info.size:,} bytes, {info.entries} files, sha256 {info.sha256})")
    if not no_bytecode and not info.bytecode:
        echo(
            f"note: no Python {LAMBDA_PYTHON_VERSION} here to compile the modules with, so the "
            "zip holds sources only and every cold start compiles them (about 0.1 s); install "
            f"python{LAMBDA_PYTHON_VERSION} and build again to save that",
            err=True,
        )
