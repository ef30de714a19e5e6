"""Shared fixtures. Tests never reach beyond this machine."""

from __future__ import annotations

import os
import socket

# moto reads these at import time: no default AMIs (10x faster, OwnerIds honoured).
os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import pytest
from click.testing import CliRunner
from moto import mock_aws


class TestReachedBeyondThisMachineError(RuntimeError):
    """A test tried to open a connection to a host other than loopback."""


_real_connect = socket.socket.connect


def _loopback_only_connect(self: socket.socket, address, *args, **kwargs):  # type: ignore[no-untyped-def]
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host in ("localhost", "::1") or host.startswith(("127.", "/"))
    ):
        raise TestReachedBeyondThisMachineError(f"test tried to connect to {address!r}")
    return _real_connect(self, address, *args, **kwargs)


@pytest.fixture(autouse=True)
def _fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, a default region, and a tripwire on non-loopback connections."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "SMARTVAULT_AUDIT_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setattr(socket.socket, "connect", _loopback_only_connect)


@pytest.fixture
def aws():
    """A simulated AWS account (moto, in process) for the length of one test.

    Clients made inside it, by the test or by SmartVault, talk to moto; nothing leaves the
    process. Property tests that need a fresh account per example enter ``mock_aws()``
    themselves: a fixture lasts for the whole test, not one example.
    """
    with mock_aws():
        yield


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
