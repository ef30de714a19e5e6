"""A fleet's plan in wall time: ``smartvault plan --accounts`` over a simulated Organization.

    python bench/bench_fleet.py [--accounts 50] [--regions 2] [--concurrency 1 8]

Every account is a moto account reached through an assumed role (moto in process: the
figure is SmartVault's own work per shard plus moto's, on one core, since moto holds the
GIL; against AWS a shard waits on the network instead, which is what concurrency hides).
Each shard has two instances to back up. Prints seconds per run and per shard, and the
projection for a fleet of 100 accounts x 10 regions, locally and in the deployed map.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from click.testing import CliRunner
from moto import mock_aws

from smartvault.cli import cli

POLICY = """\
version: 1
policies:
  - name: nightly
    selector: {tags: {backup: "true"}}
    schedule: {expression: rate(1 day)}
"""
REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "eu-central-1", "ap-southeast-2",
           "us-east-2", "eu-west-2", "ap-northeast-1", "ca-central-1", "sa-east-1")  # fmt: skip


def seed(accounts: list[str], regions: tuple[str, ...]) -> None:
    for account in accounts:
        creds = boto3.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/SmartVaultShard", RoleSessionName="seed"
        )["Credentials"]
        for region in regions:
            ec2 = boto3.client(
                "ec2",
                region_name=region,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
            ec2.run_instances(
                ImageId="ami-12345678",
                MinCount=2,
                MaxCount=2,
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": "backup", "Value": "true"}]}
                ],
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--regions", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    accounts = [f"{100000000000 + n:012d}" for n in range(1, args.accounts + 1)]
    regions = REGIONS[: args.regions]
    shards = len(accounts) * len(regions)
    with tempfile.TemporaryDirectory() as folder, mock_aws():
        root = Path(folder)
        (root / "policies.yaml").write_text(POLICY)
        (root / "accounts.txt").write_text("\n".join(accounts) + "\n")
        seed(accounts, regions)
        flags = [arg for region in regions for arg in ("--region", region)]
        per_shard = {}
        for concurrency in args.concurrency:
            started = time.perf_counter()
            result = CliRunner().invoke(
                cli,
                [*flags, "plan", str(root / "policies.yaml"), "--format", "json",
                 "--accounts", str(root / "accounts.txt"),
                 "--max-concurrency", str(concurrency)],
            )  # fmt: skip
            seconds = time.perf_counter() - started
            assert result.exit_code == 0, result.output[-2000:]
            per_shard[concurrency] = seconds / shards
            print(
                f"{len(accounts)} accounts x {len(regions)} regions = {shards} shards, "
                f"--max-concurrency {concurrency}: {seconds:.1f} s ({seconds / shards:.3f} s "
                "per shard)"
            )
    best = min(per_shard.values())
    fleet = 100 * 10
    print(f"\n100 accounts x 10 regions = {fleet} shards, at {best:.3f} s of work per shard:")
    print(f"  local CLI, CPU-bound as measured here: {fleet * best / 60:.1f} min")
    for concurrency in (40, 100):
        waves = math.ceil(fleet / concurrency)
        print(
            f"  deployed map, MaxConcurrency {concurrency}: {waves} waves x (shard + ~1 s to "
            f"start a child execution) = {waves * (best + 1.0) / 60:.1f} min plus the listing"
        )


if __name__ == "__main__":
    main()
