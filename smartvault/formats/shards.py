"""What people and workflows write to name shards: an accounts file, a shard event."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence

from smartvault.core.fleet import Shard
from smartvault.core.fleet import account_problem
from smartvault.core.times import parse_iso_utc
from smartvault.errors import ConfigError


def parse_accounts(text: str, source: str) -> tuple[str, ...]:
    """The account ids of an accounts file: one per line, first on the line.

    Blank lines and ``#`` comments are skipped; what follows the id on its line is a
    comment too (``123456789012  payments-prod``), so the output of ``aws organizations
    list-accounts --query 'Accounts[].[Id,Name]' --output text`` works as it is. Raises
    :class:`ConfigError` naming ``source:line:column`` for anything else, for an id given
    twice, and for a file that lists none.
    """
    seen: dict[str, int] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        content = line.split("#", 1)[0]
        words = content.split()
        if not words:
            continue
        account = words[0].rstrip(",")
        column = len(content) - len(content.lstrip()) + 1
        problem = account_problem(account)
        if problem:
            problems.append(f"{source}:{number}:{column}: {problem}")
        elif account in seen:
            problems.append(
                f"{source}:{number}:{column}: account {account} is listed twice "
                f"(first on line {seen[account]})"
            )
        else:
            seen[account] = number
    if problems:
        raise ConfigError("\n".join(problems) + "\nlist one 12-digit account id per line")
    if not seen:
        raise ConfigError(
            f"{source}: lists no account: give one 12-digit account id per line "
            "(# starts a comment)"
        )
    return tuple(seen)


def shard_from_event(value: object, *, served: Sequence[str]) -> Shard:
    """The ``shard`` of a Lambda event: ``{"account", "region", "at"}``, every key checked.

    ``served`` are the regions the function works in: a shard elsewhere is refused (the
    fleet runs the function of each shard's own region, never across regions).
    """
    shape = '{"account": "123456789012", "region": "eu-west-1", "at": "2026-12-02T03:00:00Z"}'
    if not isinstance(value, Mapping):
        raise ConfigError(f'the event\'s "shard" must be a JSON object such as {shape}')
    keys = {"account", "region", "at"}
    unknown = sorted(str(k) for k in set(value) - keys)
    missing = sorted(keys - set(value))
    if unknown or missing:
        said = "; ".join(
            part
            for part in (
                f"unknown key(s) {', '.join(unknown)}" if unknown else "",
                f"missing {', '.join(missing)}" if missing else "",
            )
            if part
        )
        raise ConfigError(f'the event\'s "shard": {said}; it is {shape}')
    account, region, at = value["account"], value["region"], value["at"]
    if not isinstance(account, str) or account_problem(account):
        raise ConfigError(f'the shard\'s "account" {account!r}: give the 12-digit account id')
    if not isinstance(region, str) or region not in served:
        raise ConfigError(
            f"the shard's region {region!r} is not one this function works in "
            f"({', '.join(served) or 'none'}): the fleet runs the function of the shard's "
            "own region; check the hub stack of that region and SMARTVAULT_REGIONS"
        )
    when = parse_iso_utc(at) if isinstance(at, str) else None
    if when is None:
        raise ConfigError(
            f'the shard\'s "at" {at!r} is not an ISO 8601 time with a zone, such as '
            "2026-12-02T03:00:00Z"
        )
    return Shard(account, region, when)
