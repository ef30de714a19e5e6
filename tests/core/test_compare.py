"""The comparison of two plans made over one inventory: pure, plans built by hand."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from smartvault.core.compare import Side
from smartvault.core.compare import compare
from smartvault.core.compare import impact
from smartvault.core.compare import lead
from smartvault.core.model import DeleteAction
from smartvault.core.model import HeldBy
from smartvault.core.model import HeldDelete
from smartvault.core.model import Orphan
from smartvault.core.model import Plan
from smartvault.core.model import PolicySet

AT = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
EMPTY = PolicySet(policies=())


def delete(rp: str, policy: str = "prod") -> DeleteAction:
    return DeleteAction(
        "us-east-1", policy, "i-1", f"{policy}/i-1/{rp}", ("snap-" + rp,), AT, "old"
    )


def plan(**fields: object) -> Plan:
    return Plan(at=AT, generated_at=AT, account_id="1", regions=("us-east-1",), **fields)  # type: ignore[arg-type]


def side(p: Plan, selected: frozenset[tuple[str, str, str]] = frozenset()) -> Side:
    return Side(p, selected, EMPTY)


def test_deletions_some_held_say_how_many_go_on_the_next_run_and_who_lifts_the_rest():
    held = HeldBy("max_deletes", 1, 2)
    now = plan(
        actions=(delete("a"),),
        held_deletes=(HeldDelete(delete("b"), held), HeldDelete(delete("c"), held)),
    )

    comparison = compare("main", "abc", side(now), side(plan()))

    assert lead(comparison) == (
        "this change deletes 3 recovery points that main keeps (1 on the next run, 2 held "
        "by safety: a person must run `smartvault apply --allow-deletes prod` to make them)"
    )


def test_a_deletion_in_both_plans_is_no_change_even_when_only_one_holds_it():
    held = HeldBy("max_deletes", 1, 2)
    now = plan(held_deletes=(HeldDelete(delete("a"), held),))
    then = plan(actions=(delete("a"),))

    comparison = compare("main", "abc", side(now), side(then))

    assert comparison.added == comparison.removed == ()
    assert comparison.changes_nothing
    assert lead(comparison) == (
        "this change does nothing that applying the policies at main would not do"
    )


def test_a_resource_another_policy_still_backs_up_is_moved_not_dropped():
    now = side(plan(), frozenset({("us-east-1", "web", "i-1")}))
    then = side(plan(), frozenset({("us-east-1", "web", "i-1"), ("us-east-1", "prod", "i-1")}))

    comparison = compare("main", "abc", now, then)

    assert comparison.stops_backing_up == ()
    assert comparison.moved == (("us-east-1", "prod", "i-1"),)
    assert (
        "policy `prod` no longer backs up instance i-1 in us-east-1; another policy still does"
        in impact(comparison)
    )


def test_orphans_a_policy_takes_up_again_are_reported():
    orphan = Orphan("us-east-1", "old", "old/i-1/20261201T0300Z", ("snap-1",), AT)

    comparison = compare("main", "abc", side(plan()), side(plan(orphans=(orphan,))))

    assert comparison.adopted == (orphan,)
    assert comparison.new_orphans == ()
    assert "1 orphaned recovery point at main belongs to a policy again" in impact(comparison)[0]
