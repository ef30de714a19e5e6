"""AWS Lambda entry point: ``handler(event, context)`` over the same engine as the CLI.

Fired by EventBridge Scheduler with ``{"policies": [...], "dry_run": false}``, by a
plain EventBridge scheduled event, or by hand with ``{}`` (all policies). See
docs/deploy.md; the work is done in :mod:`smartvault.lambda_app`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from smartvault import lambda_app


def handler(event: Any, context: Any) -> dict[str, Any]:
    # The packaged policies sit beside this file in the deployment zip.
    return lambda_app.handle(
        event, context, environ=os.environ, packaged_policies=Path(__file__).parent / "policies"
    )
