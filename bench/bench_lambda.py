"""Cold-start cost of the Lambda handler, run by hand (not part of the test suite).

    python bench/bench_lambda.py [--snapshots 10000]

1. Import time: ``python -X importtime -c 'import lambda_entry'``, total and the part
   beyond boto3's own imports (best of 5 fresh interpreters), twice: from the sources
   (what a cold start costs when nothing is compiled, as with ``PYTHONDONTWRITEBYTECODE``
   or a zip without bytecode) and from a copy compiled as ``smartvault deploy package``
   ships it (hash-based bytecode). boto3's own modules are compiled in both, as in the
   Lambda runtime.
2. Peak memory of one handler run (dry run) that reads and plans N managed snapshots
   (N/5 instances, five daily recovery points each). The account is bench/fake_ec2.py,
   a fake EC2/STS endpoint on 127.0.0.1 in its own process that serves pre-rendered
   items in pages of up to 1,000, as EC2 does (moto needs minutes to describe 10,000
   tagged snapshots, past botocore's read timeout); its throttling is off here. The
   handler runs in its own process, so its peak resident set size is the handler's
   alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


from fake_ec2 import FakeEc2
from fake_ec2 import nightly_policy

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"

POLICY = nightly_policy("{max_age: 7d, keep_last: 3}")

HANDLER_RUN = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import lambda_entry
class Context:
    function_name = "bench"
    def get_remaining_time_in_millis(self):
        return 900_000
summary = lambda_entry.handler({"dry_run": True}, Context())
elapsed = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = {"peak_mb": peak_mb, "seconds": elapsed, "planned": summary["planned"]}
print(json.dumps(out), file=sys.stderr)
"""


def import_times(runs: int = 5, root: Path = ROOT) -> tuple[float, float]:
    """(ms to import lambda_entry from ``root``, ms to import boto3 alone), best of ``runs``."""

    def cumulative_ms(statement: str, module: str) -> float:
        best = float("inf")
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", statement],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stderr
            for line in out.splitlines():
                m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line)
                if m and m.group(2) == module:
                    best = min(best, int(m.group(1)) / 1000)
        return best

    return cumulative_ms("import lambda_entry", "lambda_entry"), cumulative_ms(
        "import boto3", "boto3"
    )


def compiled_copy(into: Path) -> Path:
    """``smartvault/`` and ``lambda_entry.py`` copied below ``into`` and compiled as the
    deployment package compiles them."""
    shutil.copytree(
        ROOT / "smartvault", into / "smartvault", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(ROOT / "lambda_entry.py", into / "lambda_entry.py")
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
         str(into / "smartvault"), str(into / "lambda_entry.py")],
        check=True,
    )  # fmt: skip
    return into


def account_spec(snapshots: int) -> dict[str, object]:
    """N/5 instances with five daily recovery points each, for bench/fake_ec2.py."""
    return {
        "account": ACCOUNT,
        "now": datetime.now(UTC).isoformat(),
        "policy": "nightly",
        "regions": {REGION: {"instances": snapshots // 5, "points": 5}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=10_000)
    args = parser.parse_args()

    total, boto3_ms = import_times()
    print(
        f"import lambda_entry from source: {total:.0f} ms in all; boto3 alone {boto3_ms:.0f} ms; "
        f"beyond boto3 {total - boto3_ms:.0f} ms (best of 5)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-lambda-") as tmp:
        total, boto3_ms = import_times(root=compiled_copy(Path(tmp)))
    print(
        f"import lambda_entry compiled, as packaged: {total:.0f} ms in all; boto3 alone "
        f"{boto3_ms:.0f} ms; beyond boto3 {total - boto3_ms:.0f} ms (best of 5)"
    )
    with FakeEc2.start(account_spec(args.snapshots), throttle=False) as ec2:
        policies = ROOT / "build" / "bench-policies"
        policies.mkdir(parents=True, exist_ok=True)
        (policies / "nightly.yaml").write_text(POLICY)
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": ec2.url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "SMARTVAULT_REGIONS": REGION,
            "SMARTVAULT_POLICY_PATH": str(policies),
            "SMARTVAULT_LOG_LEVEL": "ERROR",
        }
        out = subprocess.run(
            [sys.executable, "-c", HANDLER_RUN],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        result = json.loads(out.strip().splitlines()[-1])
        print(
            f"handler dry run over {args.snapshots:,} managed snapshots: "
            f"{result['seconds']:.2f} s, peak RSS {result['peak_mb']:.0f} MB; "
            f"planned {result['planned']}"
        )


if __name__ == "__main__":
    main()
