"""``smartvault schema``: the policy JSON Schema, for editors and check-jsonschema."""

from __future__ import annotations

import json

import click

from smartvault.cli.output import echo
from smartvault.formats import policy


@click.command("schema")
def schema_command() -> None:
    """Print the policy JSON Schema (for editors and check-jsonschema).

    \b
    Examples:
      smartvault schema > policy.schema.json
    """
    echo(json.dumps(policy.policy_schema(), indent=2))
