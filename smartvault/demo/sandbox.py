"""The simulated account the demo runs in, and the walls around it.

For the length of the demo only: a fresh temporary folder, moto's account in this
process, fake credentials, and AWS configuration files inside that folder, so that
neither the operator's real credentials nor their ``~/.aws`` are ever read, and no
request leaves the process. On the way out everything is put back as it was and the
folder is removed; a second demo starts from nothing.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smartvault.demo.fleet import HOME_REGION

#: the variables the demo sets (or clears, when the value is None) while it runs
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "SMARTVAULT_AUDIT_TABLE",
)


def moto_missing() -> str | None:
    """What to do when moto is not installed, or None when it is."""
    # Found, not imported: moto reads MOTO_EC2_LOAD_DEFAULT_AMIS when it is imported.
    if importlib.util.find_spec("moto") is None:
        return (
            "the demo runs on a simulated AWS account (moto), which is not installed; "
            "install it with: pip install -e '.[demo]'"
        )
    return None


@contextmanager
def simulated_account() -> Iterator[Path]:
    """A temporary folder (yielded) and moto's empty account, until the block ends."""
    with tempfile.TemporaryDirectory(prefix="smartvault-demo-") as name:
        folder = Path(name)
        config = folder / "aws-config"
        credentials = folder / "aws-credentials"
        config.write_text(f"[default]\nregion = {HOME_REGION}\n")
        credentials.write_text(
            "[default]\naws_access_key_id = demo\naws_secret_access_key = demo\n"
        )
        values: dict[str, str | None] = dict.fromkeys(_CLEARED)
        values |= {
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": HOME_REGION,
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            # moto reads this when EC2 is first used: without it, it loads hundreds of
            # public AMIs the demo does not need (seconds of start-up)
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            # plan --compare runs git: no user or system configuration is read
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CEILING_DIRECTORIES": str(folder),
        }
        saved = {key: os.environ.get(key) for key in values}
        try:
            for key, value in values.items():
                _set(key, value)
            from moto import mock_aws

            with mock_aws():
                yield folder
        finally:
            for key, value in saved.items():
                _set(key, value)


def _set(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value
