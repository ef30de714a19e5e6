"""What every command gets from the root group: the settings of its flags, and an engine."""

from __future__ import annotations

import getpass
import socket

import click

from smartvault.engine import Engine
from smartvault.settings import Settings


def current_settings() -> Settings:
    """The ``Settings`` the root group made of ``--region``, ``--profile``, ... ."""
    return click.get_current_context().ensure_object(Settings)


def make_engine() -> Engine:
    return Engine(current_settings())


def cli_actor() -> str:
    """Who acts, in every audit record a person's command writes: ``cli:user@host``."""
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"
