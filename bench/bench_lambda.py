"""Cold-start cost of the Lambda handler, run by hand (not part of the test suite).

    python bench/bench_lambda.py [--snapshots 10000]

1. Import time: ``python -X importtime -c 'import lambda_entry'``, total and the part
   beyond boto3's own imports (best of 5 fresh interpreters).
2. Peak memory of one handler run (dry run) that reads and plans N managed snapshots
   (N/5 instances, five daily recovery points each). The account is a canned EC2/STS
   endpoint on 127.0.0.1 that serves pre-rendered API pages of 1,000 items, as EC2
   does (moto needs minutes to describe 10,000 tagged snapshots, past botocore's read
   timeout). The handler runs in its own process, so its peak resident set size is
   the handler's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from html import escape
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"

POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: cron(0 3 * * ? *)
    retention: {max_age: 7d, keep_last: 3}
"""

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


def import_times(runs: int = 5) -> tuple[float, float]:
    """(ms to import lambda_entry, ms to import boto3 alone), best of ``runs`` each."""

    def cumulative_ms(statement: str, module: str) -> float:
        best = float("inf")
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", statement],
                cwd=ROOT,
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


def _tags_xml(tags: dict[str, str]) -> str:
    items = "".join(
        f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>" for k, v in tags.items()
    )
    return f"<tagSet>{items}</tagSet>"


def canned_account(snapshots: int) -> dict[str, list[str]]:
    """Pre-rendered response pages (1,000 items each) per EC2 action."""
    instances = snapshots // 5
    today = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    if today > datetime.now(UTC):
        today -= timedelta(days=1)
    instance_items: list[str] = []
    snapshot_items: list[str] = []
    for n in range(instances):
        iid, vid = f"i-{n:017x}", f"vol-{n:017x}"
        instance_items.append(
            f"<item><instanceId>{iid}</instanceId><imageId>ami-12345678</imageId>"
            "<instanceState><code>16</code><name>running</name></instanceState>"
            "<placement><availabilityZone>us-east-1a</availabilityZone></placement>"
            "<rootDeviceName>/dev/xvda</rootDeviceName><blockDeviceMapping><item>"
            f"<deviceName>/dev/xvda</deviceName><ebs><volumeId>{vid}</volumeId>"
            "<status>attached</status></ebs></item></blockDeviceMapping>"
            + _tags_xml({"backup": "true", "Name": f"web-{n}"})
            + "</item>"
        )
        for days in range(5):
            slot = today - timedelta(days=days)
            tags = {
                "CreatedBy": "SmartVault",
                "InstanceId": iid,
                "Name": f"web-{n} nightly {slot:%Y-%m-%dT%H:%MZ}",
                "smartvault:policy": "nightly",
                "smartvault:recovery-point": f"nightly/{iid}/{slot:%Y%m%dT%H%MZ}",
                "smartvault:slot": f"{slot:%Y-%m-%dT%H:%M:%SZ}",
                "smartvault:devices": json.dumps({vid: "/dev/xvda"}, separators=(",", ":")),
            }
            snapshot_items.append(
                f"<item><snapshotId>snap-{n * 5 + days:017x}</snapshotId>"
                f"<volumeId>{vid}</volumeId><status>completed</status>"
                f"<startTime>{slot + timedelta(seconds=4):%Y-%m-%dT%H:%M:%S.000Z}</startTime>"
                f"<progress>100%</progress><ownerId>{ACCOUNT}</ownerId><volumeSize>8</volumeSize>"
                "<description>SmartVault</description><encrypted>false</encrypted>"
                "<storageTier>standard</storageTier>" + _tags_xml(tags) + "</item>"
            )

    def pages(action: str, set_name: str, items: list[str], wrap: bool) -> list[str]:
        out = []
        chunks = [items[i : i + 1000] for i in range(0, len(items), 1000)] or [[]]
        for i, chunk in enumerate(chunks):
            body = "".join(chunk)
            if wrap:  # instances come in reservations
                body = (
                    f"<item><reservationId>r-{i:017x}</reservationId><ownerId>{ACCOUNT}</ownerId>"
                    f"<instancesSet>{body}</instancesSet></item>"
                )
            token = f"<nextToken>{i + 1}</nextToken>" if i + 1 < len(chunks) else ""
            out.append(
                f'<{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                f"<requestId>bench</requestId><{set_name}>{body}</{set_name}>{token}"
                f"</{action}Response>"
            )
        return out

    return {
        "DescribeInstances": pages("DescribeInstances", "reservationSet", instance_items, True),
        "DescribeSnapshots": pages("DescribeSnapshots", "snapshotSet", snapshot_items, False),
        "DescribeImages": pages("DescribeImages", "imagesSet", [], False),
        "GetCallerIdentity": [
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<GetCallerIdentityResult><Arn>arn:aws:iam::{ACCOUNT}:user/bench</Arn>"
            f"<UserId>BENCH</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult>"
            "<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ],
    }


def serve(account: dict[str, list[str]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = parse_qs(self.rfile.read(length).decode())
            pages = account[form["Action"][0]]
            body = pages[int(form.get("NextToken", ["0"])[0])].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=10_000)
    args = parser.parse_args()

    total, boto3_ms = import_times()
    print(
        f"import lambda_entry: {total:.0f} ms in all; boto3 alone {boto3_ms:.0f} ms; "
        f"beyond boto3 {total - boto3_ms:.0f} ms (best of 5)"
    )
    server = serve(canned_account(args.snapshots))
    host, port = server.server_address[:2]
    try:
        policies = ROOT / "build" / "bench-policies"
        policies.mkdir(parents=True, exist_ok=True)
        (policies / "nightly.yaml").write_text(POLICY)
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
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
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
