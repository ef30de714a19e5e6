"""A fleet shard's results in S3: its JSON plan and its run's summary.

The workflow that runs a fleet passes on only a few fields per shard (a Step Functions
state holds at most 256 KiB, for every shard of a map together); the plan a person
reviews and the full summary are written here, one folder per shard and run
(:func:`smartvault.core.fleet.results_prefix`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from smartvault.aws.errors import translate_errors
from smartvault.aws.session import AwsSession
from smartvault.core.model import Plan


def write_results(
    session: AwsSession, bucket: str, prefix: str, plan: Plan, summary: Mapping[str, Any]
) -> dict[str, str | None]:
    """Write ``<prefix>plan.json`` and ``<prefix>result.json``; their ``s3://`` URIs.

    Raises :class:`~smartvault.errors.AwsError` naming the bucket and key. The plan is
    the same text as ``smartvault plan --format json`` (``apply --plan`` reads it).
    """
    from smartvault.formats import plan_json  # only a fleet's shard writes one

    pieces: list[str] = []
    plan_json.write(plan, pieces.append)
    region = session.regions()[0]
    s3 = session.client("s3", region)
    uris: dict[str, str | None] = {}
    for name, body in (
        ("plan", "".join(pieces)),
        ("result", json.dumps(summary, indent=2, default=str) + "\n"),
    ):
        key = f"{prefix}{name}.json"
        with translate_errors("s3", f"PutObject s3://{bucket}/{key}", region):
            s3.put_object(
                Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json"
            )
        uris[f"{name}_uri"] = f"s3://{bucket}/{key}"
    return uris
