"""Where and how SmartVault talks to AWS: built from flags (CLI) or the environment (Lambda).

The rules a setting must follow (a DynamoDB table name, an endpoint URL) are written
here once; the CLI turns a broken one into a usage error, the Lambda into a
:class:`ConfigError`, both before any AWS call. Imports nothing heavy, so code that
only needs a default (the deployment template) or a check (the CLI's flags) loads no
boto3.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from smartvault.core.audit_table import DEFAULT_AUDIT_TTL_DAYS
from smartvault.core.fleet import DEFAULT_SHARD_ROLE
from smartvault.core.fleet import role_name_problem
from smartvault.errors import ConfigError

DEFAULT_AUDIT_TABLE = "smartvault-audit"
#: seconds before the Lambda's deadline after which no new action starts
DEFAULT_DEADLINE_MARGIN = 30.0

#: DynamoDB's rule for table names.
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
#: S3's rule for (new) bucket names.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: A well-formed region name: the policy language's rule (its schema says the same).
REGION_NAME_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")


@dataclass(frozen=True)
class Settings:
    """Where and how to talk to AWS; built from flags (CLI) or the environment (Lambda)."""

    regions: tuple[str, ...] = ()
    profile: str | None = None
    endpoint_url: str | None = None
    audit_table: str = DEFAULT_AUDIT_TABLE
    verbose: bool = False
    #: days an audit record is kept before DynamoDB's TTL removes it
    audit_ttl_days: int = DEFAULT_AUDIT_TTL_DAYS
    #: where the audit table lives; default: the first region worked in
    audit_region: str | None = None
    #: a fleet's member-account role (the Lambda's ``SMARTVAULT_SHARD_ROLE``)
    shard_role: str = DEFAULT_SHARD_ROLE
    #: the S3 bucket a fleet's shard writes its plan and summary to; None: nowhere
    results_bucket: str | None = None


def table_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a DynamoDB table name, or ``None`` when it can."""
    if _TABLE_NAME.match(name):
        return None
    return "3 to 255 letters, digits, _ . or -"


def endpoint_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint (an http(s) URL with a host and a port
    from 1 to 65535), or ``None`` when it can."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or url != url.strip():
        return "an endpoint is an http:// or https:// URL with a host, e.g. http://127.0.0.1:5000"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        return "its port must be a number from 1 to 65535"
    if any(char.isspace() for char in url):
        return "it must not contain spaces"
    return None


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    """The Lambda's settings: ``SMARTVAULT_*`` variables, else the function's own region.

    A variable that is set but malformed raises :class:`ConfigError` rather than being
    ignored: the run must not quietly work somewhere else than configured.
    """
    # Commas and/or spaces: "us-east-1,eu-west-1", "us-east-1, eu-west-1", "us-east-1 eu-west-1".
    regions = tuple(dict.fromkeys(environ.get("SMARTVAULT_REGIONS", "").replace(",", " ").split()))
    if not regions:
        own = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        regions = (own,) if own else ()
    table = environ.get("SMARTVAULT_AUDIT_TABLE", "").strip() or DEFAULT_AUDIT_TABLE
    problem = table_name_problem(table)
    if problem:
        raise ConfigError(
            f"SMARTVAULT_AUDIT_TABLE={table!r} is not a DynamoDB table name: {problem}; "
            f"set it to e.g. {DEFAULT_AUDIT_TABLE}, or remove it"
        )
    return Settings(
        regions=regions,
        # The deployment template creates the table in the function's own region; a
        # fleet's hub stacks of other regions name the home region of theirs.
        audit_region=_matching(environ, "SMARTVAULT_AUDIT_REGION", REGION_NAME_RE, "us-east-1")
        or environ.get("AWS_REGION")
        or None,
        audit_table=table,
        audit_ttl_days=_positive_number(
            environ, "SMARTVAULT_AUDIT_TTL_DAYS", DEFAULT_AUDIT_TTL_DAYS, "days"
        ),
        shard_role=_shard_role(environ),
        results_bucket=_matching(
            environ, "SMARTVAULT_RESULTS_BUCKET", _BUCKET_NAME, "smartvault-fleet-results"
        ),
    )


def _matching(environ: Mapping[str, str], name: str, rule: re.Pattern[str], e_g: str) -> str | None:
    """``name``'s value when it follows ``rule``; None when unset; else a ConfigError."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    if not rule.match(text):
        raise ConfigError(f"{name}={text!r} is not valid: set it to e.g. {e_g}, or remove it")
    return text


def _shard_role(environ: Mapping[str, str]) -> str:
    name = environ.get("SMARTVAULT_SHARD_ROLE", "").strip() or DEFAULT_SHARD_ROLE
    problem = role_name_problem(name)
    if problem:
        raise ConfigError(
            f"SMARTVAULT_SHARD_ROLE: {problem}; set it to the member accounts' role, e.g. "
            f"{DEFAULT_SHARD_ROLE}, or remove it"
        )
    return name


def deadline_margin_seconds(environ: Mapping[str, str]) -> float:
    """``SMARTVAULT_DEADLINE_MARGIN``: seconds before the Lambda's deadline to start nothing new."""
    text = environ.get("SMARTVAULT_DEADLINE_MARGIN", "").strip()
    if not text:
        return DEFAULT_DEADLINE_MARGIN
    try:
        margin = float(text)
    except ValueError:
        margin = -1.0
    if not margin >= 0 or margin == float("inf"):  # also refuses nan
        raise ConfigError(
            f"SMARTVAULT_DEADLINE_MARGIN={text!r} is not a number of seconds: set it to e.g. "
            f"{DEFAULT_DEADLINE_MARGIN:g}, or remove it"
        )
    return margin


def _positive_number(environ: Mapping[str, str], name: str, default: int, unit: str) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not (text.isdigit() and int(text) > 0):
        raise ConfigError(
            f"{name}={text!r} is not a whole number of {unit}: set it to e.g. {default}, "
            "or remove it"
        )
    return int(text)
