"""How a command ends when it does not succeed: every exit code is decided here.

0 success; 1 an expected failure (invalid policies, an AWS or audit problem, a failed
action, a refusal); 2 wrong usage (click's own), or with ``plan --detailed-exitcode``
"there are changes". A :class:`~smartvault.errors.SmartVaultError` from any command
becomes one readable message on stderr in :class:`SmartVaultGroup`, and nowhere else;
with ``-v`` it is raised instead, for its traceback.
"""

from __future__ import annotations

from typing import IO
from typing import Any

import click

from smartvault.cli.output import echo
from smartvault.errors import PolicyError
from smartvault.errors import SmartVaultError
from smartvault.settings import Settings

#: an expected failure: the command has said why
FAILED = 1
#: ``plan --detailed-exitcode``: the plan has changes
CHANGES = 2


class Failed(click.ClickException):
    """Ends a command with exit 1, showing ``message`` (if any) on stderr as it is."""

    exit_code = FAILED

    def __init__(self, message: str = "") -> None:
        super().__init__(message)

    def show(self, file: IO[Any] | None = None) -> None:
        if self.message:
            echo(self.message, err=True)


class SmartVaultGroup(click.Group):
    """The root group: every expected failure of every command is shown here."""

    def invoke(self, ctx: click.Context) -> Any:
        given = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:
            hint = _hint_global_option(exc, self, ctx, given)
            if hint is None:
                raise
            raise click.UsageError(hint, ctx=exc.ctx) from exc
        except PolicyError as exc:  # always a list of problems, never a traceback
            raise Failed(policy_problems(exc)) from exc
        except SmartVaultError as exc:
            settings = ctx.find_object(Settings)
            if settings is not None and settings.verbose:
                raise
            raise Failed(f"Error: {exc}") from exc


def _hint_global_option(
    exc: click.NoSuchOption, group: click.Group, ctx: click.Context, given: list[str]
) -> str | None:
    """``smartvault plan --region us-east-1``: the message that says where a global option
    goes, or None when ``exc`` is not about one."""
    name = exc.option_name
    option = next(
        (p for p in group.params if isinstance(p, click.Option) and name in p.opts),
        None,
    )
    if option is None or exc.ctx is None:
        return None
    written = [name]
    for i, arg in enumerate(given):
        if arg.startswith(f"{name}="):
            written = [arg]
            break
        if arg == name:
            if not option.is_flag and i + 1 < len(given):
                written.append(given[i + 1])
            break
    root = ctx.info_name or "smartvault"
    command = exc.ctx.command_path.removeprefix(root).strip()
    return (
        f"No such option: {name} for `{command}`. {name} is a global option: write it "
        f"before the command: {' '.join([root, *written, command])}"
    )


def policy_problems(exc: PolicyError) -> str:
    """Every problem, one a line, and what to do about them."""
    n = len(exc.problems)
    return "\n".join(
        [
            *(str(problem) for problem in exc.problems),
            f"{n} problem{'s' if n != 1 else ''} in the policies: fix "
            f"{'it' if n == 1 else 'them'} (see `smartvault validate`); nothing was done",
        ]
    )


class PlanCommand(click.Command):
    """With --detailed-exitcode, 2 means "changes": a usage error must then exit 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        detailed = "--detailed-exitcode" in args
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if detailed:
                raise _UsageFailed(exc.format_message(), ctx=exc.ctx) from exc
            raise


class _UsageFailed(click.UsageError):
    """A usage error under --detailed-exitcode: exit 1, since 2 means "changes" there."""

    exit_code = FAILED
