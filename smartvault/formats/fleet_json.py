"""A fleet's plans as JSON: the fleet summary, then every shard with its plan.

``{"format_version": 1, "at", "summary": {shards by status, actions by type},
"shards": [{"account", "region", "status", "error", "counts", "plan"}]}``, shards in
fleet order (failed, changes, the rest); each ``plan`` is exactly what
``smartvault plan --format json`` gives for that account and region (null when it could
not be made), so ``apply --plan`` can take one as it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from smartvault.core.fleet import ShardRun
from smartvault.core.fleet import fleet_totals
from smartvault.core.times import iso_utc
from smartvault.formats.plan_json import plan_to_dict

FORMAT_VERSION = 1


def fleet_to_dict(runs: Sequence[ShardRun]) -> dict[str, Any]:
    at = next((r.shard.at for r in runs), None)
    return {
        "format_version": FORMAT_VERSION,
        "at": iso_utc(at) if at else None,
        "summary": fleet_totals(runs),
        "shards": [
            {
                "account": r.shard.account,
                "region": r.shard.region,
                "status": r.status,
                "error": r.error or None,
                "counts": r.counts,
                "plan": plan_to_dict(r.plan) if r.plan is not None else None,
            }
            for r in runs
        ],
    }


def dumps(runs: Sequence[ShardRun]) -> str:
    return json.dumps(fleet_to_dict(runs), indent=2, ensure_ascii=False) + "\n"
