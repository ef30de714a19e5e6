"""How fast the Lambda drains a deletion backlog under EC2's throttling, run by hand.

    python bench/bench_apply.py [--backlog 10000] [--scale 10] [--deadline 900]

The account is bench/fake_ec2.py (its own process): 200 instances, each with 7 recent
daily recovery points and ``backlog / 200`` older ones past the policy's ``max_age: 7d``,
plus 50 snapshots SmartVault does not manage. The audit table is a moto server (its own
process). The policy sets ``safety: {max_delete_fraction: 1}``: with the default of 0.5
the deletion circuit breaker would hold such a backlog (nearly every point of every
lineage is due) and a person would have to lift it with ``apply --allow-deletes``.

``lambda_entry.handler`` (not a dry run) runs in a fresh process per invocation, as Lambda
would, until a run plans no deletion. Time is scaled by ``--scale`` (default 10) so that
a 10,000-deletion backlog takes minutes, not an hour; every time constant that meets
EC2's buckets is scaled with it, so that the result reads in EC2 seconds:

- fake_ec2 refills every bucket ``scale`` times faster (50 deletions/s at 10);
- the context's ``get_remaining_time_in_millis()`` counts a 900 s deadline in scaled
  time (real seconds x scale), so SMARTVAULT_DEADLINE_MARGIN (30 s by default) and the
  time each request needs before the deadline are scaled seconds too, unchanged;
- SmartVault's own backoff between attempts (smartvault/aws/calls.py, through the
  ``sleep`` the engine is built with) waits seconds / scale: the child process sets the
  engine's default ``sleep``, no product switch;
- botocore's adaptive rate limiter is left alone: it measures the rate it achieves and
  paces to that, in real seconds, so it follows the scaled bucket by itself (its recovery
  after a throttle, in real seconds, is if anything slower than in EC2 time);
- request timeouts (B = margin / 5, real seconds) are not scaled: they are generous
  here, on 127.0.0.1, and never reached.

Reported per run and in all: deletions done, real and scaled seconds, deletions per scaled
second (overall, and steady-state after the first burst of 100) against the bucket's 5/s,
throttled calls, failed actions; then the checks: every deleted snapshot deleted exactly
once, the whole backlog gone and nothing else, a ``succeeded`` audit record for every
deletion, no record left ``pending``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_ec2 import DEFAULT_BUCKETS
from fake_ec2 import FakeEc2
from fake_ec2 import nightly_policy

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
TABLE = "smartvault-bench-audit"
INSTANCES = 200
KEPT = 7  # daily points younger than max_age: 7d
UNMANAGED = 50

POLICY = nightly_policy("{max_age: 7d}", safety="{max_delete_fraction: 1}")

HANDLER_RUN = r"""
import json, os, sys, time
scale = float(os.environ["BENCH_SCALE"])
deadline = float(os.environ["BENCH_DEADLINE"])
real_sleep = time.sleep

def scaled_sleep(seconds):
    real_sleep(seconds / scale)

# SmartVault's own waits (backoff between attempts) in scaled time: the engine hands its
# sleep to every EC2 and audit client it builds.
from smartvault import engine
engine.Engine.__init__.__kwdefaults__["sleep"] = scaled_sleep
import lambda_entry
from smartvault.lambda_app import RunFailed

t0 = time.monotonic()

class Context:
    function_name = "bench"
    def get_remaining_time_in_millis(self):
        return int((deadline - (time.monotonic() - t0) * scale) * 1000)

try:
    summary = lambda_entry.handler({}, Context())
except RunFailed as exc:
    summary = exc.summary
summary["real_seconds"] = time.monotonic() - t0
print(json.dumps(summary, default=str), file=sys.stderr)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("moto server did not start")


def steady_rate(seconds: list[float], burst: int) -> float:
    """Deletions per (real) second over the second half of a run's deletions (after the
    first ``burst`` at least, and the tokens that refilled while it was spent), or 0."""
    if len(seconds) <= 2 * burst:
        return 0.0
    after = sorted(seconds)[len(seconds) // 2 :]
    span = after[-1] - after[0]
    return (len(after) - 1) / span if span > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backlog", type=int, default=10_000, help="deletions due")
    parser.add_argument("--scale", type=float, default=10.0, help="bucket refill multiplier")
    parser.add_argument("--deadline", type=float, default=900.0, help="scaled seconds a run has")
    parser.add_argument("--max-runs", type=int, default=20)
    parser.add_argument(
        "--no-throttle", action="store_true", help="EC2 never throttles: what else limits"
    )
    args = parser.parse_args()

    old = -(-args.backlog // INSTANCES)
    backlog = old * INSTANCES
    spec = {
        "now": datetime.now(UTC).isoformat(),
        "policy": "nightly",
        "regions": {REGION: {"instances": INSTANCES, "points": KEPT + old, "unmanaged": UNMANAGED}},
    }
    burst, rate = DEFAULT_BUCKETS["mutating"]
    print(
        f"backlog {backlog:,} deletions (+{INSTANCES * KEPT:,} kept, {UNMANAGED} unmanaged); "
        f"scale {args.scale:g}; deadline {args.deadline:g} scaled s; "
        f"DeleteSnapshot bucket {burst:g} burst, {rate:g}/s"
    )
    moto, moto_url = start_moto()
    started = datetime.now(UTC)
    try:
        with (
            FakeEc2.start(spec, scale=args.scale, throttle=not args.no_throttle) as ec2,
            tempfile.TemporaryDirectory() as tmp,
        ):
            before = set(ec2.stats()["snapshot_ids"][REGION])
            policies = Path(tmp) / "policies"
            policies.mkdir()
            (policies / "nightly.yaml").write_text(POLICY)
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")},
                "AWS_ENDPOINT_URL_EC2": ec2.url,
                "AWS_ENDPOINT_URL_STS": ec2.url,
                "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": REGION,
                "SMARTVAULT_REGIONS": REGION,
                "SMARTVAULT_AUDIT_TABLE": TABLE,
                "SMARTVAULT_POLICY_PATH": str(policies),
                "SMARTVAULT_LOG_LEVEL": "ERROR",
                "BENCH_SCALE": str(args.scale),
                "BENCH_DEADLINE": str(args.deadline),
            }
            subprocess.run(
                [sys.executable, "-m", "smartvault", "audit", "init"],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            ec2.reset_stats()
            total_deleted = total_throttled = total_failed = 0
            total_real = 0.0
            runs = 0
            twice: list[str] = []
            print(
                f"{'run':>3} {'planned':>8} {'deleted':>8} {'real s':>7} {'scaled s':>9} "
                f"{'del/s':>6} {'steady':>6} {'throttled':>9} {'failed':>6} {'not started':>11}"
            )
            for runs in range(1, args.max_runs + 1):
                out = subprocess.run(
                    [sys.executable, "-c", HANDLER_RUN],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stderr
                summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
                stats = ec2.stats()
                ec2.reset_stats()
                twice.extend(stats["deleted_twice"])
                planned = summary["planned"]["delete"]
                deleted = len(stats["deleted"].get(REGION, []))
                real = summary["real_seconds"]
                failed = len(summary.get("failed", []))
                throttled = stats["throttled_total"]
                steady = steady_rate(stats["delete_seconds"], int(burst)) / args.scale
                total_deleted += deleted
                total_throttled += throttled
                total_failed += failed
                total_real += real
                print(
                    f"{runs:>3} {planned:>8,} {deleted:>8,} {real:>7.1f} {real * args.scale:>9.0f} "
                    f"{deleted / (real * args.scale):>6.2f} {steady:>6.2f} {throttled:>9,} "
                    f"{failed:>6} {summary.get('not_started', 0):>11,}"
                )
                if failed:
                    for failure in summary["failed"][:3]:
                        print(f"    failed: {failure['recovery_point']}: {failure['error']}")
                if planned == 0:
                    break
            print(
                f"all: {total_deleted:,} deleted in {runs} runs, {total_real:.1f} real s = "
                f"{total_real * args.scale:.0f} scaled s: "
                f"{total_deleted / (total_real * args.scale):.2f} deletions/s overall vs the "
                f"bucket's {rate:g}/s sustained; {total_throttled:,} throttled calls; "
                f"{total_failed} failed actions"
            )
            check(ec2, before, backlog, env, started, twice)
    finally:
        moto.terminate()
        moto.wait()


def check(
    ec2: FakeEc2,
    before: set[str],
    backlog: int,
    env: dict[str, str],
    started: datetime,
    called_twice: list[str],
) -> None:
    """Nothing lost, nothing deleted twice, every deletion audited, nothing left pending."""
    stats = ec2.stats()
    left = set(stats["snapshot_ids"][REGION])
    gone = before - left
    # Audit records, through SmartVault's own reader of the table.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        from smartvault.engine import Engine
        from smartvault.settings import settings_from_env

        engine = Engine(settings_from_env(os.environ))
        records = engine.audit_log().records.query(
            started - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1)
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    deletes = [r for r in records if r.action == "delete"]
    audited: list[str] = []
    for record in deletes:
        if record.outcome == "succeeded":
            audited.extend(s for s in record.details.get("deleted", "").split(",") if s)
    pending = [r for r in records if r.outcome == "pending"]
    twice = sorted(s for s in audited if audited.count(s) > 1) if len(audited) < 50_000 else []
    problems = []
    if len(gone) != backlog:
        problems.append(f"{len(gone):,} snapshots gone, the backlog is {backlog:,}")
    if len(left) != len(before) - backlog:
        problems.append(f"{len(left):,} snapshots left, expected {len(before) - backlog:,}")
    if set(audited) != gone:
        problems.append(
            f"{len(gone - set(audited)):,} deletions without a succeeded record, "
            f"{len(set(audited) - gone):,} records of deletions that did not happen"
        )
    if twice:
        problems.append(f"{len(set(twice))} snapshots in two succeeded records")
    if called_twice:
        problems.append(f"{len(called_twice)} snapshots sent DeleteSnapshot twice")
    if pending:
        problems.append(f"{len(pending)} audit records left pending")
    print(
        f"checks: {len(gone):,} deleted, {len(left):,} left; {len(audited):,} deletions in "
        f"{sum(r.outcome == 'succeeded' for r in deletes):,} succeeded delete records; "
        f"{len(pending)} pending; "
        + ("all good" if not problems else "PROBLEMS: " + "; ".join(problems))
    )


if __name__ == "__main__":
    main()
