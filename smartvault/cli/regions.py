"""The regions a command that looks for recovery points searches: every ``--region``,
and the copy regions of the policies in ./policies, so that a point's copies are found
too. Shared by ``restore`` and ``hold``/``release``.
"""

from __future__ import annotations

from smartvault.core.model import PolicySet
from smartvault.engine import Engine
from smartvault.errors import ConfigError
from smartvault.errors import PolicyError


def policies_if_any() -> tuple[PolicySet | None, str]:
    """./policies when it loads (for the copy regions, and a policy's resource type),
    else None and a note saying why; these commands never depend on it."""
    try:
        return Engine.load_policies(()), ""
    except (ConfigError, PolicyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"./policies not read ({first}), so no copy regions were added"


def search_regions(
    engine: Engine, region: str | None, policies: PolicySet | None
) -> tuple[str, ...]:
    """The global --region values (default: the profile's), a command's own ``region``,
    and the copy regions of the loaded policies, each once, in that order."""
    names = list(engine.session.regions())
    if region:
        names.append(region)
    for policy in policies.policies if policies else ():
        names.extend(rule.region for rule in policy.copies)
    return tuple(dict.fromkeys(names))
