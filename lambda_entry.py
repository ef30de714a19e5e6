"""AWS Lambda entry point: ``handler(event, context)`` over the same engine as the CLI.

Fired by EventBridge Scheduler with ``{"policies": [...], "dry_run": false}``, by a
plain EventBridge scheduled event, or by hand with ``{}`` (all policies). See
docs/deploy.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from smartvault import engine
from smartvault.deadline import Deadline
from smartvault.errors import SmartVaultError
from smartvault.logs import JsonLog
from smartvault.settings import deadline_margin_seconds
from smartvault.settings import settings_from_env


def handler(event: Any, context: Any) -> dict[str, Any]:
    env = os.environ
    log = JsonLog(env.get("SMARTVAULT_LOG_LEVEL", "INFO"))
    try:
        request = engine.LambdaRequest.from_event(event)
        settings = settings_from_env(env)
        policy_path = env.get("SMARTVAULT_POLICY_PATH") or str(Path(__file__).parent / "policies")
        margin = deadline_margin_seconds(env)
        # Called by hand (``handler({}, None)``) there is no deadline to watch.
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return engine.run_scheduled(
            settings,
            [policy_path],
            request,
            actor=f"lambda:{getattr(context, 'function_name', 'local')}",
            deadline=Deadline(lambda: remaining() / 1000, margin) if callable(remaining) else None,
            log=log,
        )
    except SmartVaultError as exc:
        log("ERROR", "run failed before applying anything", error=str(exc))
        raise
