"""How close to the Lambda's deadline a run ends when EC2 stops answering; run by hand.

    python bench/bench_deadline.py [--left 35] [--margin 30]

Two instances are due. Every CreateSnapshots is sent to a proxy on 127.0.0.1 that
never answers it (everything else goes on to moto); from the moment the first one
stalls, the function has ``--left`` seconds. The handler runs with the Lambda's
settings (``SMARTVAULT_DEADLINE_MARGIN`` = ``--margin``) and the figure printed is when
it returned, relative to the deadline: negative means in time. In AWS a run that is
still busy at its deadline is killed there, its record pending and its claim held.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    MOTO_EC2_LOAD_DEFAULT_AMIS="false",
)

import boto3  # noqa: E402  (after the environment moto reads at import)
from moto.server import ThreadedMotoServer  # noqa: E402

from tests.moto_helpers import launch  # noqa: E402
from tests.stalling import stalling_proxy  # noqa: E402

POLICY = """\
version: 1
policies:
  - name: nightly
    selector:
      tags: {backup: "true"}
    schedule:
      expression: rate(1 day)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--left", type=float, default=35.0, help="seconds left at the stall")
    parser.add_argument("--margin", type=float, default=30.0, help="SMARTVAULT_DEADLINE_MARGIN")
    args = parser.parse_args()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    upstream = f"http://{host}:{port}"
    launch(boto3.client("ec2", region_name="us-east-1", endpoint_url=upstream), 2)
    from smartvault.engine import Engine
    from smartvault.settings import Settings

    Engine(
        Settings(regions=("us-east-1",), endpoint_url=upstream, audit_table="audit")
    ).audit_log().ensure_table()
    policy = Path(os.environ.get("TMPDIR", "/tmp")) / "smartvault-bench-deadline.yaml"
    policy.write_text(POLICY)
    deadline: list[float] = []

    def stalls(body: bytes) -> bool:
        if b"Action=CreateSnapshots" not in body:
            return False
        if not deadline:
            deadline.append(time.monotonic() + args.left)
        return True

    class Context:
        function_name = "bench"

        def get_remaining_time_in_millis(self) -> int:
            return int(((deadline[0] - time.monotonic()) if deadline else 600.0) * 1000)

    with stalling_proxy(upstream, stalls) as proxy:
        os.environ.update(
            AWS_ENDPOINT_URL=proxy,
            SMARTVAULT_POLICY_PATH=str(policy),
            SMARTVAULT_REGIONS="us-east-1",
            SMARTVAULT_AUDIT_TABLE="audit",
            SMARTVAULT_DEADLINE_MARGIN=str(args.margin),
            SMARTVAULT_LOG_LEVEL="ERROR",
        )
        import lambda_entry

        summary = lambda_entry.handler({}, Context())
        ended = time.monotonic()
    server.stop()
    print(f"outcomes: {summary['outcomes']}")
    print(
        f"returned {ended - deadline[0]:+.1f} s from the deadline (negative: in time); "
        f"{args.left:g} s were left when the first create stalled, margin {args.margin:g} s"
    )


if __name__ == "__main__":
    main()
