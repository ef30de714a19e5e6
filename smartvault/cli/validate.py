"""``smartvault validate``: every problem of the policy files, located, as text or JSON."""

from __future__ import annotations

import json

import click

from smartvault.cli.errors import Failed
from smartvault.cli.output import echo
from smartvault.cli.params import policy_paths
from smartvault.core.model import PolicySet
from smartvault.engine import DEFAULT_POLICY_PATHS
from smartvault.errors import PolicyError
from smartvault.formats import policy


@click.command("validate")
@policy_paths
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: an array of {file, line, column, message}.",
)
def validate_command(paths: tuple[str, ...], fmt: str) -> None:
    """Check policy files (default: ./policies) and report every problem found.

    Each problem is one line, file:line:column: message. Exits 1 if any is found.

    \b
    Examples:
      smartvault validate
      smartvault validate policies/nightly.yaml --format json
    """
    try:
        policies = policy.load_policies(paths or DEFAULT_POLICY_PATHS)
    except PolicyError as exc:
        _show_problems(exc, fmt)
        raise Failed from exc
    _show_ok(policies, fmt)


def _show_problems(exc: PolicyError, fmt: str) -> None:
    if fmt == "json":
        items = [
            {"file": p.file, "line": p.line, "column": p.column, "message": p.message}
            for p in exc.problems
        ]
        echo(json.dumps(items, indent=2))
        return
    for problem in exc.problems:
        echo(str(problem), err=True)
    n = len(exc.problems)
    echo(f"{n} problem{'s' if n != 1 else ''} found", err=True)


def _show_ok(policies: PolicySet, fmt: str) -> None:
    if fmt == "json":
        echo("[]")
        return
    n_pol, n_files = len(policies.policies), len(policies.files)
    pol_word = "policy" if n_pol == 1 else "policies"
    file_word = "file" if n_files == 1 else "files"
    echo(f"ok: {n_pol} {pol_word} in {n_files} {file_word}")
