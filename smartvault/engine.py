"""The one place where SmartVault is wired together.

The CLI and the Lambda handler both call into this module, so they can never
drift apart: load policies -> read the inventory -> plan [-> apply -> audit].
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_AUDIT_TABLE = "smartvault-audit"


@dataclass(frozen=True)
class Settings:
    """Where and how to talk to AWS; built from flags (CLI) or the environment (Lambda)."""

    regions: tuple[str, ...] = ()
    profile: str | None = None
    endpoint_url: str | None = None
    audit_table: str = DEFAULT_AUDIT_TABLE
    verbose: bool = False
