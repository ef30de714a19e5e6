"""Exceptions a person is meant to read.

Every :class:`SmartVaultError` is an *expected* failure: the CLI prints its
message and exits 1 without a traceback, the Lambda logs it and fails the
invocation. Anything else escaping is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in a policy file: ``file:line:column: message``.

    ``line`` and ``column`` are 1-based; 0 means "the whole file".
    """

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class SmartVaultError(Exception):
    """An expected failure, with a message that says what failed and what to do."""


class PolicyError(SmartVaultError):
    """One or more policy files are invalid. Carries every problem found."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class AwsError(SmartVaultError):
    """An AWS call failed in a way a person has to fix (credentials, region, access)."""


class AuditError(SmartVaultError):
    """The audit table cannot be read or written; nothing destructive is done without it."""


class AuditTableMissing(AuditError):
    """The audit table does not exist (in that region, under that name)."""

    def __init__(self, message: str, *, table: str, region: str) -> None:
        super().__init__(message)
        self.table = table
        self.region = region


class Ec2CallFailed(SmartVaultError):
    """One EC2 call of an action failed; its message says what and why.

    ``code`` is AWS's error code (``InvalidSnapshot.InUse``) or the kind of local failure
    (``DeadlineReached``), ``detail`` AWS's own message. Raised by :mod:`smartvault.aws.ec2`
    so that applying a plan never handles a botocore exception itself.
    """

    def __init__(self, message: str, code: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail or message


class Ec2OutcomeUnknown(Ec2CallFailed):
    """A create or copy whose answer was lost (a server error, a dropped connection):
    EC2 may have done it. Such a call is never sent again in the same run."""


class Ec2Throttled(Ec2CallFailed):
    """EC2 kept throttling a call through every attempt: nothing was done."""


class PlanFileError(SmartVaultError):
    """A saved plan cannot be read, or no longer matches the account."""


class ConfigError(SmartVaultError):
    """The command line or environment asks for something SmartVault cannot do."""
