"""A fleet from a person's terminal: every shard of some accounts and regions, a few at once.

Each shard (:class:`~smartvault.core.fleet.Shard`) is run by its own engine
(:meth:`Engine.for_shard <smartvault.engine.Engine.for_shard>`): the role of its account,
its one region, the fleet's single ``at``; the audit table and notifications stay with
the person's own credentials. A shard that fails (a role that cannot be assumed, an
account that throttles past every retry) is reported and the others go on: one account's
trouble never hides another's plan.

EC2's request limits are per account and region, so shards never compete for them; the
bound on shards at once is this machine's (threads, memory, connections).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from smartvault.core.fleet import Shard
from smartvault.core.fleet import ShardRun
from smartvault.core.fleet import fleet_order
from smartvault.core.model import PolicySet
from smartvault.engine import Engine
from smartvault.engine import RunRequest
from smartvault.engine import collector_paused
from smartvault.engine import new_run_id
from smartvault.errors import SmartVaultError

#: shards at once, unless told otherwise
DEFAULT_MAX_CONCURRENCY = 8


@dataclass(frozen=True)
class Fleet:
    """The shards to run, as whom, and how many at once."""

    shards: tuple[Shard, ...]
    role_name: str
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    def each(self, engine: Engine, work: Callable[[Engine, Shard], ShardRun]) -> list[ShardRun]:
        """``work`` on every shard's engine, at most :attr:`max_concurrency` at once; in
        fleet order (failed, changes, the rest). An expected failure of one shard is its
        ``error``; anything else stops the fleet, as it would stop one run."""

        def one(shard: Shard) -> ShardRun:
            try:
                return work(
                    engine.for_shard(shard, self.role_name, new_run_id(engine.now())), shard
                )
            except SmartVaultError as exc:
                return ShardRun(shard, error=str(exc))

        # Shards read side by side: pausing the collector per shard would race.
        with collector_paused(), ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            runs = list(pool.map(one, self.shards))
        return fleet_order(runs)


def plan_fleet(
    fleet: Fleet, engine: Engine, policies: PolicySet, allow_deletes: Sequence[str] = ()
) -> list[ShardRun]:
    """Every shard's plan of ``policies`` at its ``at``."""

    def plan(shard_engine: Engine, shard: Shard) -> ShardRun:
        return ShardRun(shard, plan=shard_engine.plan(policies, shard.at, allow_deletes))

    return fleet.each(engine, plan)


def apply_fleet(
    fleet: Fleet,
    engine: Engine,
    planned: Sequence[ShardRun],
    request: RunRequest,
) -> list[ShardRun]:
    """Apply each shard's plan as shown, after it is checked against the account again
    (as ``apply --plan`` checks a saved plan): a shard whose account changed meanwhile is
    refused whole, and the others go on. Shards whose plan has nothing to do, or could not
    be made, are not run again."""
    plans = {run.shard: run.plan for run in planned if run.plan is not None}
    todo = [run.shard for run in planned if run.plan is not None and run.plan.has_changes]
    kept = [run for run in planned if run.shard not in todo]

    def apply(shard_engine: Engine, shard: Shard) -> ShardRun:
        report = shard_engine.run(request.with_plan(plans[shard]))
        return ShardRun(shard, plan=report.plan, summary=report.summary())

    ran = Fleet(tuple(todo), fleet.role_name, fleet.max_concurrency).each(engine, apply)
    return fleet_order([*ran, *kept])
