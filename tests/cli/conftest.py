"""Fixtures of the CLI tests: a policy file, and moto's simulated account."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.cli import POLICY


@pytest.fixture
def policy_file(tmp_path: Path) -> str:
    path = tmp_path / "nightly.yaml"
    path.write_text(POLICY)
    return str(path)


@pytest.fixture
def ec2(aws):
    return boto3.client("ec2", region_name="us-east-1")
